"""The reference models: explicit backward passes equal float64 autograd, S_0 is seed-determined,
and both models learn (digits accuracy, falling character loss)."""

from __future__ import annotations

import pytest
import torch

from protocol.models import build_model
from protocol.models.init import splitmix64_stream, uniform_tensor
from protocol.models.reference import reference_grads
from protocol.spec import GOLDEN, load_spec, open_dataset, splitmix64
from protocol.train import StepContext, train

#: float32 explicit gradients against float64 autograd, relative to each tensor's largest gradient.
GRAD_TOL = 1e-5


@pytest.mark.parametrize("name", ["digits-mlp", "tiny-gpt"])
def test_forward_backward_matches_float64_autograd(name: str) -> None:
    spec = load_spec(name)
    ds = open_dataset(spec)
    model = build_model(spec, ds)
    ctx = StepContext(spec, model, ds, torch.device("cpu"))
    params = model.init_params()
    batch = ctx.batch(5)
    loss, grads = model.forward_backward(params, batch, torch.ones(()))
    ref_loss, ref = reference_grads(model, params, batch)
    assert abs(loss.item() - ref_loss.item()) < 1e-5 * abs(ref_loss.item())
    assert set(grads) == set(ref)
    for n in params:
        scale = ref[n].abs().max().item() + 1e-30
        err = (grads[n].double() - ref[n]).abs().max().item() / scale
        assert err < GRAD_TOL, (n, err)


def test_splitmix64_stream_matches_scalar_reference() -> None:
    state, ref = 123, []
    for _ in range(5):
        state, out = splitmix64(state)
        ref.append(out)
    assert [int(x) for x in splitmix64_stream(123, 5)] == ref
    assert GOLDEN == 0x9E3779B97F4A7C15


def test_init_is_seed_determined_and_bounded() -> None:
    a = uniform_tensor(1, "w", (64, 32), 0.125)
    assert torch.equal(a.view(torch.int32), uniform_tensor(1, "w", (64, 32), 0.125).view(torch.int32))
    assert not torch.equal(a, uniform_tensor(2, "w", (64, 32), 0.125))
    assert not torch.equal(a, uniform_tensor(1, "v", (64, 32), 0.125))
    assert a.abs().max().item() <= 0.125 and a.dtype == torch.float32
    assert 0.05 < a.abs().mean().item() < 0.075  # uniform on [-s, s): mean |x| = s / 2


def test_digits_mlp_learns() -> None:
    result = train(load_spec("digits-mlp"), progress=False)  # the shipped 300 steps
    assert result.losses[0] > 2.0
    assert sum(result.losses[-20:]) / 20 < 0.1
    assert result.metrics["accuracy"] > 0.9  # 360 held-out digits (0.917 measured)


def test_tiny_gpt_loss_falls() -> None:
    spec = load_spec("tiny-gpt").with_steps(100)
    result = train(spec, progress=False)
    assert result.losses[0] > 4.0  # about log(60) at S_0
    assert sum(result.losses[-10:]) / 10 < 2.5  # 2.29 measured
    assert result.metrics["loss"] < 2.6  # held-out windows (2.32 measured)
