"""Prose never contradicts the saved outputs: every figure a summary quotes is one the notebook printed.

A notebook's summary (its last markdown cell, or any markdown cell headed "Summary" or "What we found")
may quote a measured figure only if the saved outputs show it. Figures quoted from the book are
allowed where the sentence says so ("the book ..."), and so are the settings the code itself contains
(a learning rate, an epoch count). Percentages match either form (76.2% and 0.762).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for pattern in ("chapters/**/exercise*.ipynb", "chapters/**/data_preparation.ipynb",
                                      "solutions/**/*.ipynb") for p in ROOT.glob(pattern)
                   if ".ipynb_checkpoints" not in p.parts)
IDS = [str(p.relative_to(ROOT)) for p in NOTEBOOKS]
FIGURE = re.compile(r"(?<![\w.\-/#])(\d{1,3}(?:,\d{3})+|\d+\.\d+|\d+)(\s?%|×)?(?![\w.]*\d)")
SENTENCE = re.compile(r"[^.!?\n]*(?:\.\d|[^.!?\n])*")
BOOK = re.compile(r"\bbook\b|\bbook's\b|\bBook\b|Figure \d|\bE\d\.\d", re.IGNORECASE)


def summaries(cells: list[dict]) -> list[str]:
    markdown = [("".join(c["source"])) for c in cells if c["cell_type"] == "markdown"]
    picked = [m for m in markdown if re.search(r"^#+\s*(summary|what we found|results)", m, re.I | re.M)]
    return picked or markdown[-1:]


def printed(cells: list[dict]) -> str:
    texts = []
    for cell in cells:
        for output in cell.get("outputs", []):
            texts.append("".join(output.get("text", "")))
            texts.append("".join(output.get("data", {}).get("text/plain", "")))
            texts.append("".join(output.get("data", {}).get("text/html", "")))
    return "\n".join(texts)


NUMBER = re.compile(r"-?\d+(?:,\d{3})*(?:\.\d+)?(?:[eE][-+]?\d+)?")


def values(text: str) -> set[float]:
    """Every number written in ``text``."""
    found = set()
    for match in NUMBER.findall(text):
        try:
            found.add(float(match.replace(",", "")))
        except ValueError:
            pass
    return found


def supported(number: str, suffix: str | None, known: set[float]) -> bool:
    """True when some known value, rounded as the prose rounds it, gives the quoted figure."""
    plain = number.replace(",", "")
    figure = float(plain)
    decimals = len(plain.split(".")[1]) if "." in plain else 0
    scales = (1.0, 100.0) if suffix and suffix.strip() == "%" else (1.0,)
    return any(abs(round(v * scale, decimals) - figure) < 10 ** -(decimals + 3) for v in known for scale in scales)


def unsupported_figures(notebook: Path) -> list[str]:
    cells = json.loads(notebook.read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    known = values(printed(cells)) | values(code)
    missing = []
    for text in summaries(cells):
        text = re.sub(r"\]\([^)]*\)|`[^`]*`|<[^>]+>", " ", text)  # links, inline code, tags
        for sentence in re.split(r"(?<=[.!?;])\s+|\n", text):
            if BOOK.search(sentence):
                continue
            for number, suffix in FIGURE.findall(sentence):
                plain = number.replace(",", "")
                if "." not in plain and not suffix and int(plain) < 1000:
                    continue  # small counts and step numbers ("3 layers", "step 2") are prose, not results
                if supported(number, suffix, known):
                    continue
                missing.append(f"{number}{suffix or ''} in: {sentence.strip()[:160]}")
    return missing


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=IDS)
def test_summary_figures_are_ones_the_saved_outputs_show(notebook: Path):
    missing = unsupported_figures(notebook)
    assert not missing, "the summary quotes figures that the saved outputs do not show:\n" + "\n".join(missing)


def test_the_check_catches_a_summary_that_contradicts_the_outputs(tmp_path: Path):
    cells = [{"cell_type": "code", "source": "print(acc)", "outputs": [
        {"output_type": "stream", "name": "stdout", "text": "test accuracy 0.1803\n"}]},
        {"cell_type": "markdown", "source": "## Summary\nThe network reaches 44.0% accuracy. Training took 1,234 s."}]
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": cells}))
    assert [m.split(" in:")[0] for m in unsupported_figures(notebook)] == ["44.0%", "1,234"]
    cells[1]["source"] = "## Summary\nThe network reaches 18.0% accuracy (0.18); the book says 80%."
    notebook.write_text(json.dumps({"cells": cells}))
    assert unsupported_figures(notebook) == []
