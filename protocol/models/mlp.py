"""The digits classifier: an MLP ``64 -> hidden... -> 10`` with ReLU, explicit forward and backward.

Every arithmetic step is a RepOps op (``protocol.repops``), recorded on the current ``repops.Tape``
when one is active; there is no autograd. Weights are ``[out, in]`` (RepOps ``linear`` computes
``x @ w.T + b``).
"""

from __future__ import annotations

import math

import torch

from protocol import repops as R
from protocol.data import Dataset
from protocol.models.init import constant_tensor, uniform_tensor
from protocol.spec import TaskSpec


class DigitsMLP:
    """MLP over the 8x8 digits (features = pixels / 16)."""

    def __init__(self, spec: TaskSpec, dataset: Dataset) -> None:
        self.spec = spec
        self.sizes = [dataset.feature_dim, *spec.model.hidden, dataset.num_classes]

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Parameter names and shapes in state order."""
        out: list[tuple[str, tuple[int, ...]]] = []
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:], strict=True)):
            out += [(f"fc{i}.weight", (b, a)), (f"fc{i}.bias", (b,))]
        return out

    def init_params(self) -> dict[str, torch.Tensor]:
        """S_0's parameters from the seed: weights uniform on +-1/sqrt(fan_in), biases zero."""
        params = {}
        for name, shape in self.param_shapes():
            if name.endswith("weight"):
                params[name] = uniform_tensor(self.spec.seed, name, shape, 1.0 / math.sqrt(shape[1]))
            else:
                params[name] = constant_tensor(shape, 0.0)
        return params

    def batch(self, samples: list[bytes], device: torch.device) -> dict[str, torch.Tensor]:
        """Decode samples into ``x`` [B, 64] float32 (pixel/16, exact) and ``y`` [B] int64."""
        raw = torch.tensor([list(s) for s in samples], dtype=torch.int64)
        x = raw[:, 1:].to(torch.float32) / 16.0
        return {"x": x.to(device), "y": raw[:, 0].to(device)}

    def forward_backward(self, p: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                         one: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and gradients of one batch as RepOps ops (``one`` is the loss seed dL/dL = 1)."""
        n = len(self.sizes) - 1
        acts = [batch["x"]]
        pre: list[torch.Tensor] = []
        for i in range(n):
            z = R.linear(acts[-1], p[f"fc{i}.weight"], p[f"fc{i}.bias"])
            pre.append(z)
            if i < n - 1:
                acts.append(R.relu(z))
        logits = pre[-1]
        loss = R.cross_entropy(logits, batch["y"])
        grads: dict[str, torch.Tensor] = {}
        dz = R.cross_entropy_backward(logits, batch["y"], one)
        for i in reversed(range(n)):
            grads[f"fc{i}.weight"] = R.matmul(dz, acts[i], ta=True)
            grads[f"fc{i}.bias"] = R.sum_rows(dz)
            if i > 0:
                da = R.matmul(dz, p[f"fc{i}.weight"])
                dz = R.relu_backward(pre[i - 1], da)
        return loss, grads

    def evaluate(self, p: dict[str, torch.Tensor], dataset: Dataset, device: torch.device) -> dict[str, float]:
        """Loss and accuracy over a whole split with the same ops (reporting only, not recorded)."""
        b = self.batch(list(dataset.samples), device)
        h = b["x"]
        n = len(self.sizes) - 1
        for i in range(n):
            h = R.linear(h, p[f"fc{i}.weight"], p[f"fc{i}.bias"])
            if i < n - 1:
                h = R.relu(h)
        loss = float(R.cross_entropy(h, b["y"]).item())
        correct = int((h.argmax(dim=-1) == b["y"]).sum().item())
        return {"loss": loss, "accuracy": correct / len(dataset.samples)}
