"""Strip outputs and execution counts from notebooks, so they are stored clean.

Usage::

    .venv/bin/python notebooks/strip_outputs.py            # every notebook beside this script
    .venv/bin/python notebooks/strip_outputs.py a.ipynb ...

The test suite fails when a notebook in ``notebooks/`` keeps outputs
(tests/test_notebooks.py); run this before committing one you executed.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def strip_notebook(nb: nbformat.NotebookNode) -> bool:
    """Remove outputs, execution counts and run-time cell metadata in place; True when anything changed."""
    changed = False
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        if cell.get("outputs") or cell.get("execution_count") is not None:
            cell.outputs = []
            cell.execution_count = None
            changed = True
        for key in ("execution", "collapsed", "scrolled"):
            if key in cell.metadata:
                del cell.metadata[key]
                changed = True
    if "widgets" in nb.metadata:
        del nb.metadata["widgets"]
        changed = True
    return changed


def main(paths: list[str]) -> int:
    files = [Path(p) for p in paths] or sorted(Path(__file__).resolve().parent.glob("*.ipynb"))
    for path in files:
        nb = nbformat.read(path, as_version=4)
        if strip_notebook(nb):
            nbformat.write(nb, path)
            print(f"stripped {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
