"""The tiny character-level GPT: token + position embedding, pre-norm blocks of causal multi-head
self-attention and a GELU MLP, a final layer norm and a linear head, with explicit backward.

The shape of the forward and backward passes follows the classic plain-loop GPT-2 formulation: each
layer's forward keeps the activations its backward needs, and the backward walks the same ops in
reverse, every arithmetic step an op on the tape running a deterministic kernel.
"""

from __future__ import annotations

import math

import torch

from protocol.data import Dataset
from protocol.models import kernels as K
from protocol.models.init import constant_tensor, uniform_tensor
from protocol.models.tape import Tape
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
        """Parameter names and shapes in state order."""
        d, v = self.d, self.vocab
        out: list[tuple[str, tuple[int, ...]]] = [("wte", (v, d)), ("wpe", (self.t, d))]
        for i in range(self.n_layer):
            out += [
                (f"h{i}.ln1.g", (d,)), (f"h{i}.ln1.b", (d,)),
                (f"h{i}.attn.w", (d, 3 * d)), (f"h{i}.attn.b", (3 * d,)),
                (f"h{i}.proj.w", (d, d)), (f"h{i}.proj.b", (d,)),
                (f"h{i}.ln2.g", (d,)), (f"h{i}.ln2.b", (d,)),
                (f"h{i}.fc.w", (d, 4 * d)), (f"h{i}.fc.b", (4 * d,)),
                (f"h{i}.out.w", (4 * d, d)), (f"h{i}.out.b", (d,)),
            ]
        out += [("lnf.g", (d,)), ("lnf.b", (d,)), ("head.w", (d, v)), ("head.b", (v,))]
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
                scale = 1.0 / math.sqrt(shape[0])
                if name.endswith(("proj.w", "out.w")):
                    scale /= math.sqrt(2 * self.n_layer)
                params[name] = uniform_tensor(self.spec.seed, name, shape, scale)
            else:
                params[name] = constant_tensor(shape, 0.0)
        return params

    def batch(self, samples: list[bytes], device: torch.device) -> dict[str, torch.Tensor]:
        """Decode windows of block_size + 1 token ids into inputs ``x`` and next-token targets ``y``."""
        raw = torch.tensor([list(s) for s in samples], dtype=torch.int64)
        return {"x": raw[:, :-1].contiguous().to(device), "y": raw[:, 1:].contiguous().to(device)}

    def forward_backward(self, tape: Tape, p: dict[str, torch.Tensor],
                         batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and gradients of one batch, every step an op on ``tape``."""
        op = tape.op
        idx, targets = batch["x"], batch["y"]
        tok = op("embedding", idx, p["wte"])
        h = op("add", tok, p["wpe"])
        saved = []
        for i in range(self.n_layer):
            pre = f"h{i}."
            a1 = op("layer_norm", h, p[pre + "ln1.g"], p[pre + "ln1.b"])
            qkv = op("linear", a1, p[pre + "attn.w"], p[pre + "attn.b"])
            att = op("causal_attention", qkv, n_head=self.n_head)
            proj = op("linear", att, p[pre + "proj.w"], p[pre + "proj.b"])
            h_mid = op("add", h, proj)
            a2 = op("layer_norm", h_mid, p[pre + "ln2.g"], p[pre + "ln2.b"])
            f = op("linear", a2, p[pre + "fc.w"], p[pre + "fc.b"])
            g = op("gelu", f)
            out = op("linear", g, p[pre + "out.w"], p[pre + "out.b"])
            h_next = op("add", h_mid, out)
            saved.append((h, a1, qkv, att, h_mid, a2, f, g))
            h = h_next
        af = op("layer_norm", h, p["lnf.g"], p["lnf.b"])
        logits = op("linear", af, p["head.w"], p["head.b"])
        loss = op("cross_entropy", logits, targets)

        grads: dict[str, torch.Tensor] = {}
        dlogits = op("cross_entropy_backward", logits, targets)
        grads["head.w"] = op("linear_grad_w", af, dlogits)
        grads["head.b"] = op("sum_rows", dlogits)
        daf = op("linear_grad_x", dlogits, p["head.w"])
        grads["lnf.g"] = op("layer_norm_backward_g", h, daf)
        grads["lnf.b"] = op("sum_rows", daf)
        dh = op("layer_norm_backward_x", h, p["lnf.g"], daf)
        for i in reversed(range(self.n_layer)):
            pre = f"h{i}."
            h_in, a1, qkv, att, h_mid, a2, f, g = saved[i]
            grads[pre + "out.w"] = op("linear_grad_w", g, dh)
            grads[pre + "out.b"] = op("sum_rows", dh)
            dg = op("linear_grad_x", dh, p[pre + "out.w"])
            df = op("gelu_backward", f, dg)
            grads[pre + "fc.w"] = op("linear_grad_w", a2, df)
            grads[pre + "fc.b"] = op("sum_rows", df)
            da2 = op("linear_grad_x", df, p[pre + "fc.w"])
            grads[pre + "ln2.g"] = op("layer_norm_backward_g", h_mid, da2)
            grads[pre + "ln2.b"] = op("sum_rows", da2)
            dmid_ln = op("layer_norm_backward_x", h_mid, p[pre + "ln2.g"], da2)
            dmid = op("add", dh, dmid_ln)
            grads[pre + "proj.w"] = op("linear_grad_w", att, dmid)
            grads[pre + "proj.b"] = op("sum_rows", dmid)
            datt = op("linear_grad_x", dmid, p[pre + "proj.w"])
            dqkv = op("causal_attention_backward", qkv, datt,
                      n_head=self.n_head)
            grads[pre + "attn.w"] = op("linear_grad_w", a1, dqkv)
            grads[pre + "attn.b"] = op("sum_rows", dqkv)
            da1 = op("linear_grad_x", dqkv, p[pre + "attn.w"])
            grads[pre + "ln1.g"] = op("layer_norm_backward_g", h_in, da1)
            grads[pre + "ln1.b"] = op("sum_rows", da1)
            din_ln = op("layer_norm_backward_x", h_in, p[pre + "ln1.g"], da1)
            dh = op("add", dmid, din_ln)
        grads["wpe"] = op("sum_batch", dh)
        grads["wte"] = op("embedding_backward", idx, dh, rows=self.vocab)
        return loss, grads

    def logits(self, p: dict[str, torch.Tensor], idx: torch.Tensor) -> torch.Tensor:
        """Forward pass without a tape (evaluation and sampling)."""
        linear = K.linear
        h = K.embedding(idx, p["wte"]) + p["wpe"][: idx.shape[1]]
        for i in range(self.n_layer):
            pre = f"h{i}."
            qkv = linear(K.layer_norm(h, p[pre + "ln1.g"], p[pre + "ln1.b"]), p[pre + "attn.w"],
                         p[pre + "attn.b"])
            h = h + linear(K.causal_attention(qkv, self.n_head), p[pre + "proj.w"], p[pre + "proj.b"])
            f = linear(K.layer_norm(h, p[pre + "ln2.g"], p[pre + "ln2.b"]), p[pre + "fc.w"], p[pre + "fc.b"])
            h = h + linear(K.gelu(f), p[pre + "out.w"], p[pre + "out.b"])
        return linear(K.layer_norm(h, p["lnf.g"], p["lnf.b"]), p["head.w"], p["head.b"])

    def evaluate(self, p: dict[str, torch.Tensor], dataset: Dataset, device: torch.device,
                 max_samples: int = 64) -> dict[str, float]:
        """Mean next-character loss over the first ``max_samples`` windows of a split."""
        b = self.batch(list(dataset.samples[:max_samples]), device)
        return {"loss": float(K.cross_entropy(self.logits(p, b["x"]), b["y"]).item())}
