"""Cross-device reproducibility, pinned: these roots were computed on an NVIDIA H100 (torch 2.11 CUDA)
by ``python -m protocol.train_cli train SPEC --steps N --device cuda --json`` and agree with that
host's CPU (RepOps' C++ loops and its torch kernels alike) and with the development CPU
(docs/TRAINING.md). Any machine that runs this suite checks
its own training bits against the GPU's. A change to any op's definition changes these roots: that is
a protocol change, to be re-measured on the device and announced with a new ``repops_version``.
"""

from __future__ import annotations

import pytest
import torch

from protocol.spec import load_spec
from protocol.train import train

H100_ROOTS = {
    ("digits-mlp", 20): (
        "0xac88962e5eb140565176f63d6043986fe5104cdc6917157339a270a00fac520d",
        "0xe0ff83139b874cfce8ee2c8c744ef85bd880b77b28d16e36765cc67f10ba4c22",
    ),
    ("tiny-gpt", 3): (
        "0xc000261fd1a6070380e8ffa83d52e053cae4aae825c9a9610cbaa88f11cae763",
        "0xaecefe5a6cba918fd526911d85613cad286ae793bdbc40821ea3e4406bdfedd7",
    ),
}


@pytest.mark.parametrize(("name", "steps"), sorted(H100_ROOTS))
def test_train_roots_equal_the_h100_roots(name: str, steps: int) -> None:
    result = train(load_spec(name).with_steps(steps), progress=False)
    trace_root, final_root = H100_ROOTS[(name, steps)]
    assert "0x" + result.final_state_root.hex() == final_root
    assert "0x" + result.trace_root.hex() == trace_root


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("name", "steps"), sorted(H100_ROOTS))
def test_cuda_train_roots_equal_the_h100_roots(name: str, steps: int) -> None:
    """On a GPU machine: CUDA training (replayed CUDA graphs, the CUDA fast path) gives these roots."""
    result = train(load_spec(name).with_steps(steps), device="cuda", progress=False)
    trace_root, final_root = H100_ROOTS[(name, steps)]
    assert "0x" + result.final_state_root.hex() == final_root
    assert "0x" + result.trace_root.hex() == trace_root
