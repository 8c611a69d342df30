"""The notebooks run top to bottom (they are documentation that must not rot).

Each is executed afresh and what it prints must read as the committed copy does: the outputs in the
repository are the code's, not an older version's. Printed text is compared with every number and
hex string masked, so a change of a gas figure or a root elsewhere in the project does not fail a
notebook, but a changed story does (another move, another level, another outcome); figures are not
compared. The notebooks print nothing that varies between runs (no wall times, no temporary paths),
so a fresh execution reproduces the committed outputs exactly.

To refresh a notebook's committed outputs after changing it:
``python tests/test_notebooks.py notebooks/01_dispute_walkthrough.ipynb``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def execute(path: Path) -> nbformat.NotebookNode:
    """The notebook at ``path`` executed in its own directory (without timing metadata)."""
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(path.parent)}}).execute()
    return nb


def masked(text: str) -> str:
    return re.sub(r"\d+(?:[.,]\d+)*(?:e[-+]?\d+)?", "N", re.sub(r"0x[0-9a-fA-F]+", "<hex>", text))


def printed(nb: nbformat.NotebookNode) -> list[str]:
    """What each code cell printed to stdout or returned as text, numbers and hex strings masked."""
    out = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        text = []
        for o in cell.get("outputs", []):
            if o.output_type == "stream" and o.name == "stdout":
                text.append(o.text)
            elif o.output_type == "execute_result":
                text.append(o.data.get("text/plain", ""))
        out.append(masked("".join(text)))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_executes(path: Path) -> None:
    committed = nbformat.read(path, as_version=4)
    nb = execute(path)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    assert printed(nb) == printed(committed), f"{path.name}: its committed outputs are stale (see the module doc)"


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        p = Path(arg).resolve()
        nbformat.write(execute(p), p)
