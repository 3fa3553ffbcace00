"""Tiny helper for authoring notebooks from Python: ``build(path, cells)``.

Cells are given as strings: a string starting with ``"md:"`` becomes a markdown cell, any
other string a code cell. Used by maintainers only; the notebooks themselves are the product.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat


def build(path: str | Path, cells: list[str]) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    for text in cells:
        if text.startswith("md:"):
            nb.cells.append(nbformat.v4.new_markdown_cell(text[3:].strip("\n")))
        else:
            nb.cells.append(nbformat.v4.new_code_cell(text.strip("\n")))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


if __name__ == "__main__":
    sys.exit("import tools.nb and call build(path, cells)")
