"""Slides from the notebooks: ``python tools/slides.py [chapter ...] [--self-contained | --cdn]``.

One set of rules decides where each cell goes in a slideshow; it is used twice:

* ``tools/tidy_notebooks.py`` writes it into the notebooks as ``slideshow`` cell metadata, which
  is what RISE (``jupyterlab-rise``) reads when an instructor presents a notebook live;
* this builder writes static reveal.js decks from the same metadata, for sharing.

The rules (:func:`slide_types`): the title cell and each ``#``/``##`` heading start a slide, a
``###`` heading a sub-slide, and everything else joins the slide above, unless the slide would
run off a 1280x720 screen: then the cell starts a sub-slide (a vertical slide under the same
step). The height of a cell is estimated from its text, folded ``<details>`` hints (closed, so one
line), pictures (their pixel height) and outputs. A cell whose ``slide_type`` an author set
(JupyterLab's property inspector, or RISE's shortcuts) keeps it: the tool records the types it
wrote itself in the notebook's ``slideshow_auto`` metadata, and only those are recomputed.

Static decks go to ``slides/<chapter>/<notebook>.slides.html``; long text outputs are trimmed. By
default a deck loads reveal.js, require.js and jQuery from CDNs (nbconvert's template), so it needs
a network when opened. With ``--self-contained`` (or whenever the assets are already cached in
``slides/.assets/``, or ``$ADL_SLIDES_ASSETS``) reveal.js is inlined into each deck, which then
opens offline from the file alone; ``--self-contained`` fetches the assets once, with ``npm pack``
when npm is installed, else from the CDN nbconvert uses.
"""

from __future__ import annotations

import argparse
import base64
import copy
import math
import re
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import nbformat

from utils import settings

ROOT = Path(__file__).resolve().parent.parent
MAX_OUTPUT_LINES = 15

# A 1280x720 screen holds about this many lines of body text on one slide (nbconvert's deck is
# 960x700 at 20px, scaled to the window; RISE uses the window at JupyterLab's font sizes).
SLIDE_LINES = 22.0
CHARS_PER_LINE = 90
PIXELS_PER_LINE = 30.0
PICTURE_LINES = 14.0  # a picture whose size cannot be read
AUTO_KEY = "slideshow_auto"  # notebook metadata: {cell id: slide type this tool wrote}
STARTS = ("slide", "subslide")
# The reveal theme's headings are sized for one-line slides; a notebook's title cell has more to say.
DECK_CSS = ".reveal h1 { font-size: 1.9em; } .reveal h2 { font-size: 1.45em; } .reveal h3 { font-size: 1.2em; }"

REVEAL_VERSION = "4.0.2"  # the version nbconvert's reveal template is written for
REVEAL_CDN = f"https://unpkg.com/reveal.js@{REVEAL_VERSION}"
REVEAL_FILES = ("dist/reveal.js", "dist/reveal.css", "plugin/notes/notes.js", "dist/theme/simple.css",
                "dist/theme/white.css", "LICENSE")


# --------------------------------------------------------------------------- the slide rules
def heading_level(cell: nbformat.NotebookNode) -> int:
    """1, 2 or 3 for a markdown cell that starts with a ``#``, ``##`` or ``###`` heading, else 0."""
    if cell.cell_type != "markdown":
        return 0
    match = re.match(r"(#{1,3}) ", cell.source.lstrip())
    return len(match.group(1)) if match else 0


def _wrapped(line: str, width: int = CHARS_PER_LINE) -> int:
    return max(1, math.ceil(len(line) / width))


def _summary(match: re.Match) -> str:
    found = re.search(r"<summary>(.*?)</summary>", match.group(1), re.S)
    return "\n" + (found.group(1) if found else "Details") + "\n"


def _fold_details(text: str) -> str:
    """Replace each folded ``<details>`` block (nested ones too) by its summary line."""
    inner = re.compile(r"<details[^>]*>((?:(?!<details).)*?)</details>", re.S)
    while True:
        folded = inner.sub(_summary, text)
        if folded == text:
            return text
        text = folded


def markdown_lines(source: str) -> float:
    """Estimated height of a markdown cell, in lines of body text."""
    height, fenced = 1.0, False  # 1: the cell's padding
    for line in _fold_details(source).splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            fenced = not fenced
            height += 0.5
        elif fenced:
            height += 1
        elif not stripped:
            height += 0.4
        elif stripped.startswith(("![", "<img")):
            height += PICTURE_LINES
        elif stripped.startswith("# "):
            height += 2.2 * _wrapped(stripped, 45)
        elif stripped.startswith("## "):
            height += 1.7 * _wrapped(stripped, 60)
        elif stripped.startswith("### "):
            height += 1.4 * _wrapped(stripped, 70)
        elif stripped.startswith("|"):
            height += 0 if set(stripped) <= set("|-: ") else 1.1
        else:
            height += _wrapped(stripped)
    return height


def _png_height(data: str) -> int | None:
    try:
        head = base64.b64decode(data[:44])
    except ValueError:
        return None
    return int.from_bytes(head[20:24], "big") if head[:8] == b"\x89PNG\r\n\x1a\n" else None


def output_lines(output: dict) -> float:
    """Estimated height of one output, in lines (text outputs count at most as a trimmed deck shows)."""
    kind = output.get("output_type")
    if kind == "stream":
        return min(len(output.get("text", "").splitlines()), MAX_OUTPUT_LINES + 1)
    if kind == "error":
        return min(len(output.get("traceback", [])) * 3, MAX_OUTPUT_LINES + 1)
    data = output.get("data", {})
    if "image/png" in data:
        pixels = _png_height(data["image/png"])
        return min(pixels / PIXELS_PER_LINE, SLIDE_LINES - 2) if pixels else PICTURE_LINES
    if any(key.startswith("image/") for key in data):
        return PICTURE_LINES
    if "text/html" in data:
        html = data["text/html"]
        html = html if isinstance(html, str) else "".join(html)
        return 1 + min(html.count("<tr"), MAX_OUTPUT_LINES) * 1.2
    text = data.get("text/plain", "")
    text = text if isinstance(text, str) else "".join(text)
    return min(len(text.splitlines()), MAX_OUTPUT_LINES + 1)


def cell_lines(cell: nbformat.NotebookNode) -> float:
    """Estimated height of a cell with its outputs, in lines of body text."""
    if cell.cell_type == "markdown":
        return markdown_lines(cell.source)
    if cell.cell_type != "code":
        return 1.0
    code = 1 + 0.9 * sum(_wrapped(line, 100) for line in cell.source.splitlines())
    return code + sum(output_lines(o) for o in cell.get("outputs", []))


def slide_types(cells: Sequence[nbformat.NotebookNode], fixed: Sequence[str | None] | None = None,
                budget: float = SLIDE_LINES) -> list[str]:
    """The ``slide_type`` of every cell. ``fixed`` holds an author's choice per cell (or None).

    The first cell and ``#``/``##`` headings start a slide, ``###`` headings a sub-slide; another
    cell joins the slide above unless that slide would grow past ``budget`` lines, in which case
    it starts a sub-slide.
    """
    fixed = list(fixed) if fixed is not None else [None] * len(cells)
    types: list[str] = []
    used = 0.0
    for i, (cell, chosen) in enumerate(zip(cells, fixed)):
        height = cell_lines(cell)
        level = heading_level(cell)
        if chosen is not None:
            kind = chosen
        elif i == 0 or level in (1, 2):
            kind = "slide"
        elif level == 3 or (used > 0 and used + height > budget):
            kind = "subslide"
        else:
            kind = "-"
        if kind in STARTS:
            used = height
        elif kind in ("-", "fragment"):
            used += height
        types.append(kind)  # "skip" and "notes" take no room on the slide
    return types


def _cell_key(cell: nbformat.NotebookNode, index: int) -> str:
    return cell.get("id") or f"#{index}"


def apply_slide_metadata(nb: nbformat.NotebookNode) -> list[str]:
    """Write ``slideshow`` metadata into every cell of ``nb`` (in place) and return the slide types.

    A ``slide_type`` that this function did not write (it is not in the notebook's
    ``slideshow_auto`` record with that value) is the author's and is kept; the others are
    recomputed, so running it again after editing a notebook updates them. Also sets RISE's
    notebook options ``scroll`` (a slide taller than the screen scrolls) and
    ``start_slideshow_at`` unless the author set them.
    """
    record = nb.metadata.get(AUTO_KEY, {})
    fixed: list[str | None] = []
    for i, cell in enumerate(nb.cells):
        current = cell.metadata.get("slideshow", {}).get("slide_type")
        fixed.append(None if current is None or record.get(_cell_key(cell, i)) == current else current)
    types = slide_types(nb.cells, fixed)
    written = {}
    for i, (cell, kind, chosen) in enumerate(zip(nb.cells, types, fixed)):
        if chosen is None:
            cell.metadata.setdefault("slideshow", {})["slide_type"] = kind
            written[_cell_key(cell, i)] = kind
    nb.metadata[AUTO_KEY] = written
    rise = nb.metadata.setdefault("rise", {})
    rise.setdefault("scroll", True)
    rise.setdefault("start_slideshow_at", "beginning")
    return types


def count_slides(nb: nbformat.NotebookNode) -> int:
    """Slides and sub-slides of a notebook, from its ``slideshow`` metadata."""
    return sum(c.metadata.get("slideshow", {}).get("slide_type") in STARTS for c in nb.cells)


# --------------------------------------------------------------------------- static decks
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
    """A copy of ``notebook`` ready for nbconvert: slide metadata (the same rules) and trimmed outputs."""
    deck = copy.deepcopy(notebook)
    apply_slide_metadata(deck)
    for cell in deck.cells:
        trim_outputs(cell)
    deck.metadata.pop("widgets", None)
    return deck


def assets_dir() -> Path:
    """Where reveal.js is cached for self-contained decks: ``$ADL_SLIDES_ASSETS`` or ``slides/.assets/``."""
    override = settings.folder("ADL_SLIDES_ASSETS", must_exist=False)
    return override if override else ROOT / "slides" / ".assets" / f"reveal.js-{REVEAL_VERSION}"


def cached_assets() -> Path | None:
    folder = assets_dir()
    return folder if all((folder / name).is_file() for name in REVEAL_FILES[:-1]) else None


def _from_npm(folder: Path) -> None:
    npm = shutil.which("npm")
    if not npm:
        raise OSError("npm is not installed")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", f"reveal.js@{REVEAL_VERSION}", "--silent"], cwd=tmp, check=True,
                       capture_output=True, timeout=300)
        with tarfile.open(next(Path(tmp).glob("reveal.js-*.tgz"))) as archive:
            for name in REVEAL_FILES:
                target = folder / name
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(archive.extractfile(f"package/{name}").read())


def _from_cdn(folder: Path) -> None:
    for name in REVEAL_FILES:
        target = folder / name
        target.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(f"{REVEAL_CDN}/{name}", timeout=60) as response:
            target.write_bytes(response.read())


def fetch_assets() -> Path:
    """Cache reveal.js (with ``npm pack``, else from the CDN) unless it is cached; return the folder."""
    folder = assets_dir()
    errors = []
    for source in (_from_npm, _from_cdn):
        if cached_assets():
            return folder
        try:
            source(folder)
        except (OSError, subprocess.SubprocessError, KeyError, StopIteration, tarfile.TarError) as error:
            errors.append(f"{source.__name__[6:]}: {error}")
    if cached_assets():
        return folder
    raise SystemExit(f"Could not fetch reveal.js {REVEAL_VERSION} for self-contained slides ({'; '.join(errors)}). "
                     f"Connect to the internet once, or unpack the npm package reveal.js@{REVEAL_VERSION} "
                     f"into {folder}.")


def _replace_once(html: str, pattern: str, replacement: str, what: str) -> str:
    new, count = re.subn(pattern, lambda _: replacement, html, count=1, flags=re.S)
    if count != 1:
        raise RuntimeError(f"nbconvert's reveal template changed: no {what} found; update tools/slides.py")
    return new


def make_self_contained(html: str, assets: Path) -> str:
    """Inline reveal.js into a deck written by nbconvert and drop every CDN script (jQuery, require.js,
    mermaid, MathJax: formulas then show as their TeX source)."""
    def read(name: str) -> str:
        return (assets / name).read_text(encoding="utf-8").replace("</script", "<\\/script")

    theme = re.search(r'<link[^>]*href="[^"]*/dist/theme/([\w-]+)\.css"', html)
    theme_css = read(f"dist/theme/{theme.group(1) if theme else 'simple'}.css")
    theme_css = re.sub(r"@import url\([^)]*\);", "", theme_css)  # web fonts: the fallback fonts are fine
    html = _replace_once(html, r'<script src="[^"]*jquery[^"]*"></script>', "", "jQuery script")
    html = _replace_once(html, r'<script src="[^"]*require[^"]*"></script>', "", "require.js script")
    html = re.sub(r'<script type="module">\s*import mermaid.*?</script>', "", html, flags=re.S)
    html = re.sub(r'<script[^>]*src="[^"]*mathjax[^"]*"[^>]*>\s*</script>', "", html, flags=re.I)
    html = _replace_once(html, r'<link[^>]*href="[^"]*/dist/reveal\.css"[^>]*>',
                         f"<style>{read('dist/reveal.css')}</style>", "reveal.css link")
    html = _replace_once(html, r'<link[^>]*href="[^"]*/dist/theme/[^"]*\.css"[^>]*>',
                         f'<style id="theme">{theme_css}</style>', "theme link")
    html = _replace_once(html, r"require\(\s*\{.*?\},\s*\[.*?\],\s*function\(Reveal, RevealNotes\)\{",
                         f"</script>\n<script>{read('dist/reveal.js')}</script>\n<script>{read('plugin/notes/notes.js')}"
                         "</script>\n<script>\nwindow.MathJax = window.MathJax || {Hub: {getAllJax: function () "
                         "{ return false; }, Rerender: function () {}}};\n(function(Reveal, RevealNotes){",
                         "require() call")
    return _replace_once(html, r"\}\s*\);\s*</script>\s*</html>",
                         "})(Reveal, RevealNotes);\n</script>\n</html>", "end of the require() call")


def build_deck(path: Path, target_dir: Path, assets: Path | None = None) -> Path:
    """Write one notebook's deck into ``target_dir``; self-contained when ``assets`` is given."""
    from nbconvert import SlidesExporter

    target_dir.mkdir(parents=True, exist_ok=True)
    exporter = SlidesExporter()
    exporter.log.setLevel("ERROR")  # not the missing alt-text notes for every plot
    html, _ = exporter.from_notebook_node(prepare(nbformat.read(path, as_version=4)),
                                          resources={"metadata": {"name": path.stem}})
    html = html.replace("</head>", f"<style>{DECK_CSS}</style>\n</head>", 1)
    deck = target_dir / f"{path.stem}.slides.html"
    deck.write_text(make_self_contained(html, assets) if assets is not None else html, encoding="utf-8")
    return deck


def build(chapters: list[str], output_dir: Path, self_contained: bool | None = None) -> list[Path]:
    """Decks of the chapters' notebooks. ``self_contained``: True fetches the assets if needed,
    None inlines them only when cached, False always loads them from CDNs."""
    folders = [ROOT / "chapters" / c for c in chapters] if chapters else sorted((ROOT / "chapters").glob("ch*"))
    for folder in folders:
        if not folder.is_dir():
            raise SystemExit(f"No chapter folder {folder}; choose from: "
                             f"{', '.join(p.name for p in sorted((ROOT / 'chapters').glob('ch*')))}")
    assets = fetch_assets() if self_contained else (cached_assets() if self_contained is None else None)
    return [build_deck(path, output_dir / folder.name, assets)
            for folder in folders for path in sorted(folder.glob("*.ipynb"))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("chapters", nargs="*", help="chapter folder names, e.g. ch01_introduction (default: all)")
    parser.add_argument("--output-dir", type=Path, default=ROOT / "slides")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--self-contained", action="store_true", default=None,
                      help="inline reveal.js so the decks open offline (fetches it once if not cached)")
    mode.add_argument("--cdn", dest="self_contained", action="store_false",
                      help="load reveal.js from CDNs even when it is cached (smaller files, need a network)")
    args = parser.parse_args()
    written = build(args.chapters, args.output_dir, args.self_contained)
    for path in written:
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    offline = args.self_contained is not False and cached_assets() is not None
    print(f"{len(written)} decks, " + ("self-contained (open offline)." if offline else
                                        "loading reveal.js from a CDN (need a network; --self-contained inlines it)."))


if __name__ == "__main__":
    main()
