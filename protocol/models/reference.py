"""The reference models in plain torch with autograd: the yardstick, never the training path.

Two uses: the float64 check that the explicit backward passes of ``mlp.py`` and ``gpt.py`` compute
the true gradients (tests), and the "plain torch float32, default kernels" baseline of
``benchmarks/repops_overhead.py``. Same parameter names, layouts and maths as the RepOps models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from protocol.models.gpt import TinyGPT
from protocol.models.mlp import DigitsMLP


def mlp_loss(model: DigitsMLP, p: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of the MLP with torch's own kernels (dtype follows the parameters)."""
    n = len(model.sizes) - 1
    h = batch["x"].to(p["fc0.weight"].dtype)
    for i in range(n):
        h = h @ p[f"fc{i}.weight"].T + p[f"fc{i}.bias"]
        if i < n - 1:
            h = torch.relu(h)
    return F.cross_entropy(h, batch["y"])


def gpt_loss(model: TinyGPT, p: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy of the tiny GPT with torch's own kernels."""
    t = model.t
    idx, tgt = batch["x"].reshape(-1, t), batch["y"]
    b = idx.shape[0]
    d, nh = model.d, model.n_head
    hd = d // nh
    h = p["wte"][idx] + p["wpe"][:t]
    mask = torch.ones(t, t, dtype=torch.bool, device=idx.device).triu(1)
    for i in range(model.n_layer):
        pre = f"h{i}."
        a = F.layer_norm(h, (d,), p[pre + "ln1.g"], p[pre + "ln1.b"], eps=1e-5)
        qkv = a @ p[pre + "attn.w"].T + p[pre + "attn.b"]
        q, k, v = (qkv[..., j * d:(j + 1) * d].reshape(b, t, nh, hd).transpose(1, 2) for j in range(3))
        s = (q @ k.transpose(-1, -2)) / (hd ** 0.5)
        s = s.masked_fill(mask, float("-inf"))
        att = (torch.softmax(s, dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        h = h + att @ p[pre + "proj.w"].T + p[pre + "proj.b"]
        a2 = F.layer_norm(h, (d,), p[pre + "ln2.g"], p[pre + "ln2.b"], eps=1e-5)
        f = F.gelu(a2 @ p[pre + "fc.w"].T + p[pre + "fc.b"], approximate="tanh")
        h = h + f @ p[pre + "out.w"].T + p[pre + "out.b"]
    af = F.layer_norm(h, (d,), p["lnf.g"], p["lnf.b"], eps=1e-5)
    logits = af @ p["head.w"].T + p["head.b"]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt.reshape(-1))


def reference_loss(model: DigitsMLP | TinyGPT, p: dict[str, torch.Tensor],
                   batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The plain-torch loss of either reference model."""
    if isinstance(model, DigitsMLP):
        return mlp_loss(model, p, batch)
    return gpt_loss(model, p, batch)


def reference_grads(model: DigitsMLP | TinyGPT, p: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                    dtype: torch.dtype = torch.float64) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Loss and autograd gradients in ``dtype`` (float64 for checking the explicit backward passes)."""
    leaves = {n: t.detach().to(dtype).requires_grad_(True) for n, t in p.items()}
    loss = reference_loss(model, leaves, batch)
    loss.backward()
    return loss.detach(), {n: t.grad for n, t in leaves.items()}  # type: ignore[misc]
