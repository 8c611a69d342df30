"""Reference models: the digits MLP and the tiny character GPT.

A model object provides ``param_shapes()``, ``init_params()`` (S_0 from the seed), ``batch(samples,
device)`` (decoding committed samples into tensors), ``forward_backward(params, batch, one)`` (loss
and gradients, every arithmetic step a RepOps op) and ``evaluate(params, dataset, device)``.
"""

from __future__ import annotations

from protocol.data import Dataset
from protocol.models.gpt import TinyGPT
from protocol.models.mlp import DigitsMLP
from protocol.spec import SpecError, TaskSpec

Model = DigitsMLP | TinyGPT


def build_model(spec: TaskSpec, dataset: Dataset) -> Model:
    """The model a spec names, shaped by the spec and its dataset."""
    if spec.model.kind == "mlp":
        return DigitsMLP(spec, dataset)
    if spec.model.kind == "gpt":
        return TinyGPT(spec, dataset)
    raise SpecError(f"model.kind: expected 'mlp' or 'gpt', got {spec.model.kind!r}")
