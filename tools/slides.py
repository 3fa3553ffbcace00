"""Build reveal.js slides from the chapter notebooks: ``python tools/slides.py [chapter ...]``.

Each cell's ``metadata.slideshow.slide_type`` decides where it goes. Cells without it get a
default: a markdown cell that starts with a ``#``/``##`` heading opens a new slide, a ``###``
heading a sub-slide, and everything else joins the slide above; so each step (explanation
plus code) is one slide. Long text outputs are trimmed and the notebook's first cell
becomes the title slide. Slides are written to ``slides/<chapter>/<notebook>.slides.html``.
"""

from __future__ import annotations

import argparse
import copy
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
MAX_OUTPUT_LINES = 15


def default_slide_type(cell: nbformat.NotebookNode) -> str:
    if cell.cell_type == "markdown":
        text = cell.source.lstrip()
        if text.startswith(("# ", "## ")):
            return "slide"
        if text.startswith("### "):
            return "subslide"
    return "-"


def trim_outputs(cell: nbformat.NotebookNode, max_lines: int = MAX_OUTPUT_LINES) -> None:
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            lines = output["text"].splitlines()
            if len(lines) > max_lines:
                output["text"] = "\n".join(lines[:max_lines] + [f"... ({len(lines) - max_lines} more lines)"])
        elif "data" in output and "text/plain" in output["data"] and len(output["data"]) == 1:
            lines = output["data"]["text/plain"].splitlines()
            if len(lines) > max_lines:
                output["data"]["text/plain"] = "\n".join(lines[:max_lines] + ["..."])
        elif "data" in output:  # keep pictures, drop long HTML tables and widgets
            for key in ("text/html", "application/vnd.jupyter.widget-view+json"):
                if key in output["data"] and ("image/png" in output["data"] or key.endswith("json")):
                    del output["data"][key]


def prepare(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    deck = copy.deepcopy(notebook)
    for i, cell in enumerate(deck.cells):
        show = cell.metadata.setdefault("slideshow", {})
        show.setdefault("slide_type", "slide" if i == 0 else default_slide_type(cell))
        trim_outputs(cell)
    return deck


def build(chapters: list[str], output_dir: Path) -> list[Path]:
    folders = [ROOT / "chapters" / c for c in chapters] if chapters else sorted((ROOT / "chapters").glob("ch*"))
    written = []
    for folder in folders:
        if not folder.is_dir():
            raise SystemExit(f"No chapter folder {folder}; choose from: "
                             f"{', '.join(p.name for p in sorted((ROOT / 'chapters').glob('ch*')))}")
        target = output_dir / folder.name
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(folder.glob("*.ipynb")):
            with tempfile.TemporaryDirectory() as tmp:
                staged = Path(tmp) / path.name
                nbformat.write(prepare(nbformat.read(path, as_version=4)), staged)
                subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "slides", "--log-level=WARN",
                                f"--output-dir={target}", str(staged)], check=True)
            written.append(target / f"{path.stem}.slides.html")
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter folder names, e.g. ch01_introduction (default: all)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "slides")
    args = parser.parse_args()
    for path in build(args.chapters, args.output_dir):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)


if __name__ == "__main__":
    main()
