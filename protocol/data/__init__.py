"""The shipped datasets, as ordered lists of byte-string samples.

A task spec commits to a dataset by the Merkle root over its samples (see ``protocol.spec``), so a
dataset here is nothing more than an ordered list of ``bytes``: the commitment, the batch of any step
and every tensor built from it follow from those bytes alone, identically on every machine. Decoding a
sample into float32 features uses only exact operations (small integers, division by a power of two).
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

from protocol.errors import VerigradError

#: Number of digits (the first ones, 80 %) in the training split; the remaining 360 are the test split.
DIGITS_TRAIN = 1437
GENESIS_FILE = "genesis-kjv.txt"


class DatasetError(VerigradError):
    """A dataset name, split or parameter that no shipped dataset provides."""


@dataclass(frozen=True)
class Dataset:
    """An ordered list of samples plus what a model needs to decode them.

    ``samples`` are the committed byte strings. For ``digits`` a sample is ``label || 64 pixels``
    (one byte each); for ``genesis-kjv`` it is ``block_size + 1`` vocabulary indices (one byte each).
    ``vocab`` is the character vocabulary of a text dataset (empty for digits).
    """

    name: str
    split: str
    samples: tuple[bytes, ...]
    num_classes: int
    feature_dim: int
    vocab: str = ""


def _digits(split: str) -> Dataset:
    from sklearn.datasets import load_digits

    d = load_digits()
    pixels = d.data.astype("uint8")
    labels = d.target.astype("uint8")
    rows = [bytes([int(labels[i])]) + pixels[i].tobytes() for i in range(len(labels))]
    if split == "train":
        chosen = rows[:DIGITS_TRAIN]
    elif split == "test":
        chosen = rows[DIGITS_TRAIN:]
    else:
        raise DatasetError(f"dataset 'digits' has splits 'train' and 'test', not {split!r}")
    return Dataset("digits", split, tuple(chosen), num_classes=10, feature_dim=64)


def genesis_text() -> str:
    """The shipped Genesis (KJV) text, exactly as committed (UTF-8, LF line ends)."""
    return resources.files("protocol.data").joinpath(GENESIS_FILE).read_bytes().decode("utf-8")


def _genesis(split: str, block_size: int) -> Dataset:
    if block_size < 1:
        raise DatasetError(f"dataset 'genesis-kjv' needs block_size >= 1, got {block_size}")
    text = genesis_text()
    vocab = "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(vocab)}
    ids = bytes(index[c] for c in text)
    # Windows of block_size + 1 tokens at stride block_size: input = w[:-1], target = w[1:].
    starts = range(0, len(ids) - block_size, block_size)
    windows = [ids[s : s + block_size + 1] for s in starts]
    n_test = len(windows) // 10
    if split == "train":
        chosen = windows[: len(windows) - n_test]
    elif split == "test":
        chosen = windows[len(windows) - n_test :]
    else:
        raise DatasetError(f"dataset 'genesis-kjv' has splits 'train' and 'test', not {split!r}")
    return Dataset("genesis-kjv", split, tuple(chosen), num_classes=len(vocab), feature_dim=block_size,
                   vocab=vocab)


#: Names of the datasets this package ships.
DATASETS = ("digits", "genesis-kjv")


def load_dataset(name: str, split: str = "train", block_size: int = 0) -> Dataset:
    """Load a shipped dataset split (``block_size`` is the context length of text datasets)."""
    if name == "digits":
        return _digits(split)
    if name == "genesis-kjv":
        return _genesis(split, block_size)
    raise DatasetError(f"unknown dataset {name!r}; shipped datasets are {', '.join(DATASETS)}")
