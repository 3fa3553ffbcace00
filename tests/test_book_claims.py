"""The course quotes the book exactly: every figure in ``tests/book_claims.tsv`` is where its row says.

Each row of the register names a figure the course attributes to the book (``source`` = ``book``) or to
the book's code bundle (``source`` = ``bundle``), the chapter and a distinctive phrase of the book near
it (``locator``), the text the book prints (``book_text``), and the course file that quotes it with the
words it uses there (``course_text``).

- A ``book`` row: ``book_text`` appears in the book's text within a short window around ``locator``,
  inside the chapter given (its chapter pages and its activity solutions at the end of the book).
- A ``bundle`` row: ``book_text`` appears nowhere in that chapter of the book, so the course must not
  call it the book's; the course file says "code bundle" close to the figure.
- Every row: ``course_text`` still appears in ``course_file``, so the register follows the course.

The book's text lives outside the repository, at ``../shared/book/`` from the project root (never part
of the project or its downloads). Without it the checks against the book are skipped, with the reason;
the course-side check always runs.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
REGISTER = Path(__file__).with_name("book_claims.tsv")
BOOK = ROOT.parent / "shared" / "book" / "applied-deep-learning-with-pytorch.txt"
CHAPTERS = {1: "Introduction to Deep Learning and PyTorch", 2: "Building Blocks of Neural Networks",
            3: "A Classification Problem Using DNNs", 4: "Convolutional Neural Networks",
            5: "Style Transfer", 6: "Analyzing the Sequence of Data with RNNs"}
BEFORE, AFTER = 600, 3000  # the window around a locator, in characters of normalised text
BUNDLE_LABEL_DISTANCE = 400  # how close "code bundle" must be to a bundle figure in the course file
FIELDS = ("source", "chapter", "place", "locator", "book_text", "course_file", "course_text")


@dataclass(frozen=True)
class Claim:
    source: str
    chapter: int
    place: str
    locator: str
    book_text: str
    course_file: str
    course_text: str

    @property
    def id(self) -> str:
        return f"{self.course_file}: {self.course_text[:40]}"


def read_register(path: Path = REGISTER) -> list[Claim]:
    """The register's rows (tab-separated, ``#`` starts a comment line, the first row names the fields)."""
    lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line and not line.startswith("#")]
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    assert tuple(rows[0]) == FIELDS, f"{path.name}: the header must be {FIELDS}"
    claims = []
    for number, row in enumerate(rows[1:], start=2):
        assert len(row) == len(FIELDS), f"{path.name}, row {number}: {len(row)} fields, expected {len(FIELDS)}"
        fields = dict(zip(FIELDS, row))
        claims.append(Claim(**{**fields, "chapter": int(fields["chapter"])}))
    return claims


def normalise(text: str) -> str:
    """One space for any run of whitespace; the book's extraction escapes undone (``\\_``, ``\\%``, ``\\ll``
    for ``<=``); bold markers dropped."""
    text = text.replace("\\_", "_").replace("\\%", "%").replace("\\ll", "<=").replace("**", "")
    return re.sub(r"\s+", " ", text).strip()


def strip_heading(line: str) -> str:
    return line.lstrip("#").replace("*", "").strip()


def chapter_text(book: str, chapter: int) -> str:
    """The chapter's pages and its activity solutions (the appendix part headed "Chapter N: ...")."""
    lines = book.splitlines()
    headings = [(i, strip_heading(line)) for i, line in enumerate(lines) if line.startswith("#")]
    preface = next(i for i, title in headings if title == "Preface")
    starts = {n: next(i for i, title in headings if i > preface and title == name) for n, name in CHAPTERS.items()}
    appendix = next(i for i, title in headings if title == "Appendix")
    index = next(i for i, title in headings if i > appendix and title == "Index")
    solutions = {n: next((i for i, title in headings if i > appendix and title == f"Chapter {n}: {name}"), None)
                 for n, name in CHAPTERS.items()}
    body_end = starts[chapter + 1] if chapter + 1 in starts else appendix
    parts = ["\n".join(lines[starts[chapter]:body_end])]
    if solutions[chapter] is not None:
        following = [i for i in solutions.values() if i is not None and i > solutions[chapter]]
        parts.append("\n".join(lines[solutions[chapter]:min(following, default=index)]))
    return normalise("\n".join(parts))


def found_near(text: str, locator: str, wanted: str) -> bool:
    """Whether ``wanted`` occurs within the window around some occurrence of ``locator`` (case-insensitive)."""
    haystack, locator, wanted = text.lower(), normalise(locator).lower(), normalise(wanted).lower()
    start = haystack.find(locator)
    while start != -1:
        if wanted in haystack[max(0, start - BEFORE):start + len(locator) + AFTER]:
            return True
        start = haystack.find(locator, start + 1)
    return False


@cache
def course_text(relative: str) -> str:
    path = ROOT / relative
    if path.suffix == ".ipynb":
        return normalise("\n\n".join("".join(cell["source"]) for cell in json.loads(path.read_text())["cells"]))
    return normalise(path.read_text(encoding="utf-8"))


@cache
def book_text() -> str:
    return BOOK.read_text(encoding="utf-8")


CLAIMS = read_register()
needs_book = pytest.mark.skipif(not BOOK.is_file(), reason=f"the book's text is not at {BOOK} (it lives outside "
                                "the repository, in ../shared/book/; the course-side checks still ran)")


def test_register_rows_are_well_formed():
    assert CLAIMS, "the register is empty"
    for claim in CLAIMS:
        assert claim.source in {"book", "bundle"}, f"{claim.id}: source must be 'book' or 'bundle'"
        assert claim.chapter in CHAPTERS, f"{claim.id}: no chapter {claim.chapter}"
        assert claim.place and claim.locator and claim.book_text and claim.course_text, f"{claim.id}: empty field"
        assert (ROOT / claim.course_file).is_file(), f"{claim.id}: {claim.course_file} does not exist"
    assert len({(c.course_file, c.course_text, c.book_text) for c in CLAIMS}) == len(CLAIMS), "duplicate rows"


@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_the_course_still_quotes_it(claim: Claim):
    assert normalise(claim.course_text) in course_text(claim.course_file), (
        f"{claim.course_file} no longer contains {claim.course_text!r}: update tests/book_claims.tsv "
        "(and check the new wording against the book)")


@pytest.mark.parametrize("claim", [c for c in CLAIMS if c.source == "bundle"], ids=lambda c: c.id)
def test_code_bundle_figures_are_labelled_as_such(claim: Claim):
    text = course_text(claim.course_file)
    position = text.find(normalise(claim.course_text))
    window = text[max(0, position - BUNDLE_LABEL_DISTANCE):position + len(claim.course_text) + BUNDLE_LABEL_DISTANCE]
    assert "code bundle" in window, f"{claim.course_file}: {claim.course_text!r} is the code bundle's; say so nearby"


@needs_book
@pytest.mark.parametrize("claim", CLAIMS, ids=lambda c: c.id)
def test_the_book_prints_it_where_the_register_says(claim: Claim):
    chapter = chapter_text(book_text(), claim.chapter)
    if claim.source == "book":
        assert normalise(claim.locator).lower() in chapter.lower(), (
            f"Chapter {claim.chapter} ({claim.place}): the locator {claim.locator!r} is not in the book")
        assert found_near(chapter, claim.locator, claim.book_text), (
            f"Chapter {claim.chapter} ({claim.place}): {claim.book_text!r} is not near {claim.locator!r}")
    else:
        assert normalise(claim.book_text).lower() not in chapter.lower(), (
            f"Chapter {claim.chapter}: the book prints {claim.book_text!r}: it is the book's, not only the bundle's")


@needs_book
def test_chapters_are_found_and_cover_their_solutions():
    book = book_text()
    for chapter in CHAPTERS:
        text = chapter_text(book, chapter)
        assert len(text) > 10_000, f"Chapter {chapter}: only {len(text)} characters found"
    assert "approximately 0.238" in chapter_text(book, 1)  # from the solutions at the end of the book
    assert "approximately 0.238" not in chapter_text(book, 2)


def test_found_near_needs_the_figure_close_to_the_locator():
    text = "Activity 1 " + "x " * 3000 + "loss 0.238"
    assert not found_near(text, "Activity 1", "0.238")
    assert found_near("Activity 1: the final loss is 0.238", "activity 1", "0.238")
    assert normalise("if len(r) \\ll 1:\n   continue") == "if len(r) <= 1: continue"
