"""The digits classifier: an MLP ``64 -> hidden... -> 10`` with ReLU, explicit forward and backward.

Every arithmetic step is an op on the tape (``protocol.models.tape``) running a deterministic kernel
(``protocol.models.kernels``); there is no autograd. Weights are stored ``[in, out]`` so a linear layer
is ``x @ W + b`` with no transpose.
"""

from __future__ import annotations

import math

import torch

from protocol.data import Dataset
from protocol.models import kernels as K
from protocol.models.init import constant_tensor, uniform_tensor
from protocol.models.tape import Tape
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
            out += [(f"fc{i}.weight", (a, b)), (f"fc{i}.bias", (b,))]
        return out

    def init_params(self) -> dict[str, torch.Tensor]:
        """S_0's parameters from the seed: weights uniform on +-1/sqrt(fan_in), biases zero."""
        params = {}
        for name, shape in self.param_shapes():
            if name.endswith("weight"):
                params[name] = uniform_tensor(self.spec.seed, name, shape, 1.0 / math.sqrt(shape[0]))
            else:
                params[name] = constant_tensor(shape, 0.0)
        return params

    def batch(self, samples: list[bytes], device: torch.device) -> dict[str, torch.Tensor]:
        """Decode samples into ``x`` [B, 64] float32 (pixel/16, exact) and ``y`` [B] int64."""
        raw = torch.tensor([list(s) for s in samples], dtype=torch.int64)
        x = raw[:, 1:].to(torch.float32) / 16.0
        return {"x": x.to(device), "y": raw[:, 0].to(device)}

    def forward_backward(self, tape: Tape, p: dict[str, torch.Tensor],
                         batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and gradients of one batch, every step an op on ``tape``."""
        n = len(self.sizes) - 1
        acts = [batch["x"]]
        pre: list[torch.Tensor] = []
        for i in range(n):
            z = tape.op("linear", acts[-1], p[f"fc{i}.weight"], p[f"fc{i}.bias"])
            pre.append(z)
            if i < n - 1:
                acts.append(tape.op("relu", z))
        logits = pre[-1]
        loss = tape.op("cross_entropy", logits, batch["y"])
        grads: dict[str, torch.Tensor] = {}
        dz = tape.op("cross_entropy_backward", logits, batch["y"])
        for i in reversed(range(n)):
            grads[f"fc{i}.weight"] = tape.op("linear_grad_w", acts[i], dz)
            grads[f"fc{i}.bias"] = tape.op("sum_rows", dz)
            if i > 0:
                da = tape.op("linear_grad_x", dz, p[f"fc{i}.weight"])
                dz = tape.op("relu_backward", pre[i - 1], da)
        return loss, grads

    def evaluate(self, p: dict[str, torch.Tensor], dataset: Dataset, device: torch.device) -> dict[str, float]:
        """Loss and accuracy over a whole split with the same kernels (reporting only)."""
        b = self.batch(list(dataset.samples), device)
        h = b["x"]
        n = len(self.sizes) - 1
        for i in range(n):
            h = K.linear(h, p[f"fc{i}.weight"], p[f"fc{i}.bias"])
            if i < n - 1:
                h = K.relu(h)
        loss = float(K.cross_entropy(h, b["y"]).item())
        return {"loss": loss, "accuracy": K.accuracy_count(h, b["y"]) / len(dataset.samples)}
