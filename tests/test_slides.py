"""Instructor slides: one chapter builds, each step is a slide, long outputs are trimmed."""

import importlib.util
import re
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("slides", ROOT / "tools" / "slides.py")
slides = importlib.util.module_from_spec(spec)
spec.loader.exec_module(slides)


def test_prepare_marks_steps_as_slides_and_trims_long_outputs():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_markdown_cell("## Step 1"),
                nbformat.v4.new_code_cell("print(1)"), nbformat.v4.new_markdown_cell("### Detail"),
                nbformat.v4.new_markdown_cell("plain text")]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(map(str, range(100))))]
    deck = slides.prepare(nb)
    kinds = [c.metadata["slideshow"]["slide_type"] for c in deck.cells]
    assert kinds == ["slide", "slide", "-", "subslide", "-"]
    text = deck.cells[2].outputs[0]["text"]
    assert len(text.splitlines()) == slides.MAX_OUTPUT_LINES + 1 and "more lines" in text
    assert len(nb.cells[2].outputs[0]["text"].splitlines()) == 100, "the notebook itself is not changed"


def test_existing_slide_metadata_is_respected():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("x = 1")]
    nb.cells[1].metadata["slideshow"] = {"slide_type": "skip"}
    assert slides.prepare(nb).cells[1].metadata["slideshow"]["slide_type"] == "skip"


def test_build_one_chapter(tmp_path):
    written = slides.build(["ch01_introduction"], tmp_path)
    notebooks = sorted((ROOT / "chapters" / "ch01_introduction").glob("*.ipynb"))
    assert [p.name for p in written] == [f"{p.stem}.slides.html" for p in notebooks]
    html = written[0].read_text()
    assert "reveal" in html.lower()
    headings = sum(c.source.lstrip().startswith(("# ", "## "))
                   for c in nbformat.read(notebooks[0], as_version=4).cells if c.cell_type == "markdown")
    assert len(re.findall(r"<section", html)) >= headings
