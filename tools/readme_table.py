"""Regenerate the chapter table in README.md from the notebooks: ``python tools/readme_table.py``.

The table sits between ``<!-- chapter-table -->`` and ``<!-- /chapter-table -->``; each row
takes its title from the notebook's first heading. ``tests/test_docs.py`` checks that the
README links every notebook.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- chapter-table -->", "<!-- /chapter-table -->"


def title(notebook: Path) -> str:
    first = "".join(json.loads(notebook.read_text())["cells"][0]["source"])
    return first.splitlines()[0].lstrip("# ").strip()


def chapter_title(folder: Path) -> str:
    guide = folder / "README.md"
    heading = guide.read_text().splitlines()[0].lstrip("# ").strip() if guide.is_file() else folder.name
    return f"[{heading}](chapters/{folder.name}/README.md)" if guide.is_file() else heading


# Where each activity sits in the book, as "after exercise N" (the walkthrough of Chapter 3 is 6.8).
ACTIVITY_AFTER = {1: 1.5, 2: 5.5, 3: 6.5, 4: 6.9, 5: 7.5, 6: 7.6, 7: 9.5, 8: 9.6, 9: 9.7, 10: 13.5,
                  11: 14.1, 12: 14.2, 13: 14.3}


def book_position(notebook: Path) -> float:
    """Order notebooks as the book presents them: exercises by number, activities where they occur."""
    match = re.match(r"(exercise|activity)(\d+)", notebook.name)
    if not match:
        return 6.8
    number = int(match.group(2))
    return float(number) if match.group(1) == "exercise" else ACTIVITY_AFTER.get(number, 99.0)


def table() -> str:
    rows = ["| chapter | notebook | solution |", "|---|---|---|"]
    for folder in sorted((ROOT / "chapters").glob("ch*")):
        first = True
        for nb in sorted(folder.glob("*.ipynb"), key=book_position):
            solution = ROOT / "solutions" / folder.name / nb.name
            sol = f"[solution](solutions/{folder.name}/{nb.name})" if solution.is_file() else "worked exercise"
            rows.append(f"| {chapter_title(folder) if first else ''} | "
                        f"[{title(nb)}](chapters/{folder.name}/{nb.name}) | {sol} |")
            first = False
        # notebooks that exist only as solutions: sections beyond the book, after the chapter's own
        for extra in sorted(p for p in (ROOT / "solutions" / folder.name).glob("*.ipynb")
                            if not (folder / p.name).is_file()):
            link = f"[{title(extra)}](solutions/{folder.name}/{extra.name})"
            rows.append(f"|  | {link} | solution only (beyond the book) |")
    return "\n".join(rows)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    block = f"{START}\n{table()}\n{END}"
    text = pattern.sub(lambda _: block, text) if pattern.search(text) else text.replace(START, block)
    readme.write_text(text)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
