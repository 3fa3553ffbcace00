"""Instructor slides: one chapter builds, each step is a slide, long outputs are trimmed."""

import copy
import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

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


@pytest.fixture(scope="module")
def ch01_decks(tmp_path_factory) -> list:
    """Chapter 1's decks as ``make slides`` writes them without cached assets (reveal.js from a CDN)."""
    return slides.build(["ch01_introduction"], tmp_path_factory.mktemp("slides"), self_contained=False)


def test_build_one_chapter(ch01_decks):
    written = ch01_decks
    notebooks = sorted((ROOT / "chapters" / "ch01_introduction").glob("*.ipynb"))
    assert [p.name for p in written] == [f"{p.stem}.slides.html" for p in notebooks]
    html = written[0].read_text()
    assert "reveal" in html.lower()
    headings = sum(c.source.lstrip().startswith(("# ", "## "))
                   for c in nbformat.read(notebooks[0], as_version=4).cells if c.cell_type == "markdown")
    assert len(re.findall(r"<section", html)) >= headings


def test_long_steps_continue_on_sub_slides_and_headings_still_start_slides():
    nb = nbformat.v4.new_notebook()
    long_text = " ".join(["word"] * 400)  # about 23 lines of body text
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_markdown_cell("## Step 1\n\nWhy."),
                nbformat.v4.new_code_cell("train()"), nbformat.v4.new_markdown_cell(long_text),
                nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("## Step 2")]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(map(str, range(30))))]
    assert slides.slide_types(nb.cells) == ["slide", "slide", "-", "subslide", "subslide", "slide"]
    for cell, kind in zip(nb.cells, slides.slide_types(nb.cells)):
        assert kind != "-" or slides.cell_lines(cell) < slides.SLIDE_LINES


def test_folded_hints_take_one_line_each():
    hints = ("Step 3: define the model.\n\n<details><summary>Hint 1</summary>\n\n" + "idea\n" * 30
             + "<details><summary>Hint 2</summary>\n\n```python\n" + "code\n" * 30 + "```\n</details>\n</details>")
    assert slides.markdown_lines(hints) < 6
    assert slides.markdown_lines(hints.replace("<details>", "").replace("</details>", "")) > 60


def test_apply_slide_metadata_recomputes_its_own_choices_and_keeps_the_authors():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_markdown_cell("## Step"),
                nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_code_cell("b = 2"),
                nbformat.v4.new_markdown_cell("Note for the speaker")]
    assert slides.apply_slide_metadata(nb) == ["slide", "slide", "-", "-", "-"]
    nb.cells[4].metadata["slideshow"]["slide_type"] = "notes"  # an author's choice, made in JupyterLab
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", name="stdout", text="\n".join(map(str, range(40))))]
    assert slides.apply_slide_metadata(nb) == ["slide", "slide", "-", "subslide", "notes"]
    assert slides.apply_slide_metadata(copy.deepcopy(nb)) == ["slide", "slide", "-", "subslide", "notes"]
    assert slides.count_slides(nb) == 3
    assert nb.metadata["rise"] == {"scroll": True, "start_slideshow_at": "beginning"}


def test_self_contained_deck_inlines_reveal_and_drops_every_cdn(tmp_path, ch01_decks):
    assets = tmp_path / "assets"
    for name in slides.REVEAL_FILES:
        (assets / name).parent.mkdir(parents=True, exist_ok=True)
        (assets / name).write_text(f"/* {name} */" + (" @import url(fonts/x.css);" if "theme" in name else ""))
    online = ch01_decks[0].read_text()
    assert "https://unpkg.com/reveal.js" in online and "require(" in online
    html = slides.make_self_contained(online, assets)
    for name in ("dist/reveal.js", "dist/reveal.css", "plugin/notes/notes.js", "dist/theme/simple.css"):
        assert f"/* {name} */" in html
    assert not re.search(r"<(script|link)[^>]*(src|href)=\"https?:", html), "no CDN script or style sheet is left"
    assert "(function(Reveal, RevealNotes){" in html and "Reveal.initialize(" in html
    assert "fonts/x.css" not in html
