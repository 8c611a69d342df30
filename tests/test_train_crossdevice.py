"""Cross-device reproducibility, pinned: these roots were computed on an NVIDIA H100 (torch 2.11 CUDA)
by ``python -m protocol.train_cli train SPEC --steps N --device cuda --json`` and agree with that
host's CPU and with the development CPU (docs/TRAINING.md). Any machine that runs this suite checks
its own training bits against the GPU's. A change to any op's definition changes these roots: that is
a protocol change, to be re-measured on the device and announced with a new ``repops_version``.
"""

from __future__ import annotations

import pytest

from protocol.spec import load_spec
from protocol.train import train

H100_ROOTS = {
    ("digits-mlp", 20): (
        "0x99c7c90cd845b4202453810e38477a4d48a74ff76b9e4e777166ec4b66f27cfb",
        "0xd678281217f4a1c59d5451abc1c4f291825770a9b27915dcfa73ae3f276ab470",
    ),
    ("tiny-gpt", 3): (
        "0x6ef1196029fc8408b095f571e31b8eff34baa86efd0796c01717580e72dd255b",
        "0x83a2d9707698e57e0e56a39a9c51ba15764303eff2b0880445c55229485cb8b2",
    ),
}


@pytest.mark.parametrize(("name", "steps"), sorted(H100_ROOTS))
def test_train_roots_equal_the_h100_roots(name: str, steps: int) -> None:
    result = train(load_spec(name).with_steps(steps), progress=False)
    trace_root, final_root = H100_ROOTS[(name, steps)]
    assert "0x" + result.final_state_root.hex() == final_root
    assert "0x" + result.trace_root.hex() == trace_root
