"""The tiny character-level GPT: token + position embedding, pre-norm blocks of causal multi-head
self-attention and a GELU MLP, a final layer norm and a linear head, with explicit backward.

Activations are kept as ``[B*T, d]`` matrices throughout (RepOps ops are row-wise), so every op reads
tensors that are state, batch or earlier op outputs as they are -- no reshapes between ops, which keeps
the op-level trace's links exact. Each layer's forward keeps what its backward needs (layer-norm
statistics, attention probabilities), and the backward walks the same ops in reverse.
"""

from __future__ import annotations

import math

import torch

from protocol import repops as R
from protocol.data import Dataset
from protocol.models.init import constant_tensor, uniform_tensor
from protocol.spec import TaskSpec


class TinyGPT:
    """Decoder-only transformer over the Genesis character vocabulary."""

    def __init__(self, spec: TaskSpec, dataset: Dataset) -> None:
        self.spec = spec
        self.vocab = dataset.num_classes
        self.t = spec.model.block_size
        self.d = spec.model.d_model
        self.n_layer = spec.model.n_layer
        self.n_head = spec.model.n_head

    def param_shapes(self) -> list[tuple[str, tuple[int, ...]]]:
        """Parameter names and shapes in state order (linear weights are ``[out, in]``)."""
        d, v = self.d, self.vocab
        out: list[tuple[str, tuple[int, ...]]] = [("wte", (v, d)), ("wpe", (self.t, d))]
        for i in range(self.n_layer):
            out += [
                (f"h{i}.ln1.g", (d,)), (f"h{i}.ln1.b", (d,)),
                (f"h{i}.attn.w", (3 * d, d)), (f"h{i}.attn.b", (3 * d,)),
                (f"h{i}.proj.w", (d, d)), (f"h{i}.proj.b", (d,)),
                (f"h{i}.ln2.g", (d,)), (f"h{i}.ln2.b", (d,)),
                (f"h{i}.fc.w", (4 * d, d)), (f"h{i}.fc.b", (4 * d,)),
                (f"h{i}.out.w", (d, 4 * d)), (f"h{i}.out.b", (d,)),
            ]
        out += [("lnf.g", (d,)), ("lnf.b", (d,)), ("head.w", (v, d)), ("head.b", (v,))]
        return out

    def init_params(self) -> dict[str, torch.Tensor]:
        """S_0's parameters: embeddings uniform +-0.1, linear weights +-1/sqrt(fan_in) (residual
        outputs further divided by sqrt(2 n_layer)), layer-norm gains 1, biases 0."""
        params = {}
        for name, shape in self.param_shapes():
            if name in ("wte", "wpe"):
                params[name] = uniform_tensor(self.spec.seed, name, shape, 0.1)
            elif name.endswith(".g"):
                params[name] = constant_tensor(shape, 1.0)
            elif name.endswith("w"):
                scale = 1.0 / math.sqrt(shape[1])
                if name.endswith(("proj.w", "out.w")):
                    scale /= math.sqrt(2 * self.n_layer)
                params[name] = uniform_tensor(self.spec.seed, name, shape, scale)
            else:
                params[name] = constant_tensor(shape, 0.0)
        return params

    def batch(self, samples: list[bytes], device: torch.device) -> dict[str, torch.Tensor]:
        """Decode windows of block_size + 1 token ids: inputs ``x``, next-token targets ``y`` and
        positions ``pos``, each flattened to ``[B*T]`` int64."""
        raw = torch.tensor([list(s) for s in samples], dtype=torch.int64)
        b, t = raw.shape[0], raw.shape[1] - 1
        pos = torch.arange(t, dtype=torch.int64).repeat(b)
        return {"x": raw[:, :-1].reshape(-1).to(device), "y": raw[:, 1:].reshape(-1).to(device),
                "pos": pos.to(device)}

    def forward_backward(self, p: dict[str, torch.Tensor], batch: dict[str, torch.Tensor],
                         one: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and gradients of one batch as RepOps ops (``one`` is the loss seed dL/dL = 1)."""
        idx, targets, pos = batch["x"], batch["y"], batch["pos"]
        nb = idx.shape[0] // self.t
        h = R.add(R.embedding(idx, p["wte"]), R.embedding(pos, p["wpe"]))
        saved = []
        for i in range(self.n_layer):
            pre = f"h{i}."
            a1, st1 = R.layernorm(h, p[pre + "ln1.g"], p[pre + "ln1.b"])
            qkv = R.linear(a1, p[pre + "attn.w"], p[pre + "attn.b"])
            att, probs = R.attention(qkv, nb, self.n_head)
            h_mid = R.add(h, R.linear(att, p[pre + "proj.w"], p[pre + "proj.b"]))
            a2, st2 = R.layernorm(h_mid, p[pre + "ln2.g"], p[pre + "ln2.b"])
            f = R.linear(a2, p[pre + "fc.w"], p[pre + "fc.b"])
            g = R.gelu(f)
            h_next = R.add(h_mid, R.linear(g, p[pre + "out.w"], p[pre + "out.b"]))
            saved.append((h, st1, a1, qkv, probs, att, h_mid, st2, a2, f, g))
            h = h_next
        af, stf = R.layernorm(h, p["lnf.g"], p["lnf.b"])
        logits = R.linear(af, p["head.w"], p["head.b"])
        loss = R.cross_entropy(logits, targets)

        grads: dict[str, torch.Tensor] = {}
        dlogits = R.cross_entropy_backward(logits, targets, one)
        grads["head.w"] = R.matmul(dlogits, af, ta=True)
        grads["head.b"] = R.sum_rows(dlogits)
        daf = R.matmul(dlogits, p["head.w"])
        dh, grads["lnf.g"], grads["lnf.b"] = R.layernorm_backward(h, stf, p["lnf.g"], daf)
        for i in reversed(range(self.n_layer)):
            pre = f"h{i}."
            h_in, st1, a1, qkv, probs, att, h_mid, st2, a2, f, g = saved[i]
            grads[pre + "out.w"] = R.matmul(dh, g, ta=True)
            grads[pre + "out.b"] = R.sum_rows(dh)
            dg = R.matmul(dh, p[pre + "out.w"])
            df = R.gelu_backward(f, dg)
            grads[pre + "fc.w"] = R.matmul(df, a2, ta=True)
            grads[pre + "fc.b"] = R.sum_rows(df)
            da2 = R.matmul(df, p[pre + "fc.w"])
            dmid_ln, grads[pre + "ln2.g"], grads[pre + "ln2.b"] = R.layernorm_backward(
                h_mid, st2, p[pre + "ln2.g"], da2)
            dmid = R.add(dh, dmid_ln)
            grads[pre + "proj.w"] = R.matmul(dmid, att, ta=True)
            grads[pre + "proj.b"] = R.sum_rows(dmid)
            datt = R.matmul(dmid, p[pre + "proj.w"])
            dqkv = R.attention_backward(qkv, probs, datt, nb, self.n_head)
            grads[pre + "attn.w"] = R.matmul(dqkv, a1, ta=True)
            grads[pre + "attn.b"] = R.sum_rows(dqkv)
            da1 = R.matmul(dqkv, p[pre + "attn.w"])
            din_ln, grads[pre + "ln1.g"], grads[pre + "ln1.b"] = R.layernorm_backward(
                h_in, st1, p[pre + "ln1.g"], da1)
            dh = R.add(dmid, din_ln)
        grads["wpe"] = R.embedding_backward(pos, dh, self.t)
        grads["wte"] = R.embedding_backward(idx, dh, self.vocab)
        return loss, grads

    def logits(self, p: dict[str, torch.Tensor], batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forward pass only (evaluation), ``[B*T, vocab]``."""
        idx, pos = batch["x"], batch["pos"]
        nb = idx.shape[0] // self.t
        h = R.add(R.embedding(idx, p["wte"]), R.embedding(pos, p["wpe"]))
        for i in range(self.n_layer):
            pre = f"h{i}."
            a1, _ = R.layernorm(h, p[pre + "ln1.g"], p[pre + "ln1.b"])
            att, _ = R.attention(R.linear(a1, p[pre + "attn.w"], p[pre + "attn.b"]), nb, self.n_head)
            h = R.add(h, R.linear(att, p[pre + "proj.w"], p[pre + "proj.b"]))
            a2, _ = R.layernorm(h, p[pre + "ln2.g"], p[pre + "ln2.b"])
            g = R.gelu(R.linear(a2, p[pre + "fc.w"], p[pre + "fc.b"]))
            h = R.add(h, R.linear(g, p[pre + "out.w"], p[pre + "out.b"]))
        af, _ = R.layernorm(h, p["lnf.g"], p["lnf.b"])
        return R.linear(af, p["head.w"], p["head.b"])

    def evaluate(self, p: dict[str, torch.Tensor], dataset: Dataset, device: torch.device,
                 max_samples: int = 64) -> dict[str, float]:
        """Mean next-character loss over the first ``max_samples`` windows of a split."""
        b = self.batch(list(dataset.samples[:max_samples]), device)
        return {"loss": float(R.cross_entropy(self.logits(p, b), b["y"]).item())}
