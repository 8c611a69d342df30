"""The notebooks run top to bottom (they are documentation that must not rot).

Each is executed afresh and what it prints must be what the committed copy shows: the outputs in the
repository are the code's, not an older version's. Only printed text is compared (figures are
pictures of the same numbers); a notebook that prints something that varies between runs (a wall
time, a temporary path) fails here, so they print none.

To refresh a notebook's committed outputs after changing it:
``python tests/test_notebooks.py notebooks/01_dispute_walkthrough.ipynb``.
"""

from __future__ import annotations

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


def printed(nb: nbformat.NotebookNode) -> list[str]:
    """What each code cell printed to stdout or returned as text."""
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
        out.append("".join(text))
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
