"""The documentation holds together: README table, chapter guides, errata links, solutions."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
ERRATA = (ROOT / "ERRATA.md").read_text()
CHAPTERS = sorted((ROOT / "chapters").glob("ch*"))
NOTEBOOKS = sorted(p for d in ("chapters", "solutions") for p in (ROOT / d).rglob("*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
ANCHORS = set(re.findall(r'<a id="(e\d+-\d+)"></a>', ERRATA))


def notebook_text(path: Path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"])


def test_book_edition_is_stated():
    assert "first edition" in README and "2019" in README


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_readme_links_every_notebook(notebook):
    assert f"]({notebook.relative_to(ROOT).as_posix()})" in README


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.name)
def test_every_chapter_has_a_guide_linked_from_the_readme(chapter):
    guide = chapter / "README.md"
    assert guide.is_file()
    text = guide.read_text().lower()
    for topic in ("notebook", "data", "time"):
        assert topic in text, f"{guide} says nothing about {topic}"
    assert f"chapters/{chapter.name}/README.md" in README


def test_activities_have_learner_and_solution_versions():
    learner = {p.relative_to(ROOT / "chapters") for p in (ROOT / "chapters").rglob("activity*.ipynb")}
    solved = {p.relative_to(ROOT / "solutions") for p in (ROOT / "solutions").rglob("activity*.ipynb")}
    assert learner == solved
    assert len(learner) == 13, "the book has 13 activities"
    exercises = list((ROOT / "chapters").rglob("exercise*.ipynb"))
    assert len(exercises) == 13, "the book has 13 exercises"


def test_errata_entries_are_complete():
    entries = ERRATA.split('<a id="')[1:]
    assert len(entries) >= 20
    for entry in entries:
        for field in ("**Where:**", "**What is wrong:**", "**Effect:**", "**What we do:**", "**Demonstrated in:**"):
            assert field in entry, f"errata entry {entry[:10]} lacks {field}"


def test_errata_links_point_to_existing_notebooks_that_link_back():
    for anchor, entry in re.findall(r'<a id="(e\d+-\d+)"></a>(.*?)(?=<a id=|\Z)', ERRATA, re.S):
        demonstrated = entry.split("**Demonstrated in:**")[1]
        targets = re.findall(r"\]\(([^)#]+\.ipynb)", demonstrated)
        assert targets, f"{anchor}: no notebook link"
        for target in targets:
            path = ROOT / target
            assert path.is_file(), f"{anchor}: {target} does not exist"
        assert any(f"ERRATA.md#{anchor})" in notebook_text(ROOT / t) for t in targets), \
            f"{anchor}: the notebook that demonstrates it does not link to it"


@pytest.mark.parametrize("document", NOTEBOOKS + [c / "README.md" for c in CHAPTERS],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_errata_links_resolve(document):
    text = notebook_text(document) if document.suffix == ".ipynb" else document.read_text()
    for anchor in re.findall(r"ERRATA\.md#(e\d+-\d+)", text):
        assert anchor in ANCHORS, f"{document.name} links to missing errata entry {anchor}"
