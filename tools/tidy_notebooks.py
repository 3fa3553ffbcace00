"""Tidy committed notebooks before a commit: ``python tools/tidy_notebooks.py [--check] [paths ...]``.

Default paths: every notebook under ``chapters/`` and ``solutions/``. A folder stands for the
notebooks under it. Idempotent: a second run changes nothing. For each notebook it

* removes execution timestamps (cell ``metadata.execution``) and saved widget state
  (notebook ``metadata.widgets``);
* replaces each widget progress bar (frozen at 0% in a saved file) by one line of text with its
  final state, read from the saved widget state, or drops it when there is none;
* merges adjacent stream outputs and collapses ``\\r``-rewritten text progress bars
  (``ADL_PLAIN_PROGRESS=1``) to the state a reader sees, as Jupyter and nbval do;
* turns absolute paths of this machine in outputs (the project, the dataset mirror, the home
  folder, temporary folders) into relative ones;
* clears every output and execution count of the learner activities ``chapters/**/activity*.ipynb``;
* writes ``slideshow`` cell metadata with the rules of ``tools/slides.py`` (author's own kept);
* keeps the mode banner: a notebook whose ``describe_run`` output says ``mode: quick`` gets a
  markdown cell tagged ``run-banner`` right after its title; one saved from a full run loses it
  (a ``standin-banner``, written by a chapter's author, is never touched).

``--check`` changes nothing and exits with 1 when a notebook would change. :func:`problems`
lists what the hygiene test (``tests/test_hygiene.py``) rejects.
"""

from __future__ import annotations

import argparse
import copy
import html
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path

import nbformat

from utils import settings

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("adl_slides", Path(__file__).with_name("slides.py"))
slides = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(slides)

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
BANNER_TAG, STANDIN_TAG = "run-banner", "standin-banner"
BANNER_TEXT = (
    "> **Saved from a quick-mode run.** The outputs below come from a quick-mode run (`ADL_QUICK=1`: fewer "
    "epochs, a data subset), so its figures are not the book's; run the notebook without `ADL_QUICK` to see "
    "the full results."
)
MODE = re.compile(r"mode: (quick|full)\b")
FROZEN_BAR = re.compile(r"(?:^|[\s:])0%\|")
ABSOLUTE = re.compile(r"(?<![\w.~/-])/(?:work|root|home|tmp|Users|private|var/folders)/[^\s'\"()<>,;:]*")
ANCHORS = ("chapters", "solutions", "outputs", "results", "datasets", "images", "utils", "tools", "slides", ".venv")
ANSI = re.compile(r"(\x1b\[[0-9;]*[A-Za-z])")
TEXT_LIKE = ("text/", "application/javascript", "image/svg+xml")


# --------------------------------------------------------------------------- which notebook is which
def project_root(path: Path) -> Path:
    """The project folder that holds ``path`` (the parent of its ``chapters``/``solutions`` folder)."""
    parts = path.resolve().parts
    for i in range(len(parts) - 1, -1, -1):
        if parts[i] in ("chapters", "solutions"):
            return Path(*parts[:i])
    return ROOT


def is_learner_activity(path: Path) -> bool:
    """True for ``chapters/**/activity*.ipynb``, the learner versions saved without outputs."""
    return "chapters" in path.resolve().parts and path.name.startswith("activity")


def notebooks(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for path in map(Path, paths):
        found += sorted(p for p in path.rglob("*.ipynb")  # not checkpoints nor hidden scratch copies
                        if not any(part.startswith(".") for part in p.relative_to(path).parts)) \
            if path.is_dir() else [path]
    return found


# --------------------------------------------------------------------------- outputs
def collapse_carriage_returns(text: str) -> str:
    """What a reader sees of text rewritten with ``\\r`` (a text progress bar): each line's last state."""
    text = re.sub(r"\r+\n", "\n", text)
    text = re.sub(r"[^\n]*\r(?=[^\n])", "", text)
    return text.rstrip("\r")


def merge_streams(outputs: list) -> list:
    """Adjacent stream outputs of the same name merged into one (how Jupyter shows them)."""
    merged: list = []
    for output in outputs:
        if (output.get("output_type") == "stream" and merged and merged[-1].get("output_type") == "stream"
                and merged[-1].get("name") == output.get("name")):
            merged[-1]["text"] += output["text"]
        else:
            merged.append(output)
    return merged


def _html_text(value: str) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", value)).replace("\u200b", "")
    return re.sub(r"[\u2007\u00a0 ]+", " ", text).strip()


def widget_text(view: dict, state: dict) -> str | None:
    """A tqdm widget's final state as the text bar tqdm prints, without timings:
    ``"epochs: 100%|##########| 2/2 [loss=0.69]"``, from the saved widget state (None if absent)."""
    model = state.get(view.get("model_id", ""), {}).get("state", {})
    children = [state.get(ref.replace("IPY_MODEL_", ""), {}).get("state", {}) for ref in model.get("children", [])]
    bars = [c for c in children if isinstance(c.get("value"), int | float) and c.get("max")]
    if not bars:
        return None
    bar = bars[0]
    done, total = bar["value"], bar["max"]
    texts = [_html_text(str(c.get("value", ""))) for c in children if c is not bar]
    left = texts[0] if texts and texts[0] else f"{100 * done / total:3.0f}%"
    right = texts[1] if len(texts) > 1 else f"{done:g}/{total:g}"
    match = re.match(r"(\S+)\s*\[(.*)\]$", right)
    if match:  # keep the counts and the postfix (loss=...), drop elapsed time and speed
        postfix = [item for item in match.group(2).split(", ") if "=" in item]
        right = match.group(1) + (f" [{', '.join(postfix)}]" if postfix else "")
    filled = round(10 * min(done / total, 1))
    return f"{left}|{'#' * filled}{' ' * (10 - filled)}| {right}"


def replace_widgets(outputs: list, state: dict) -> list:
    """Widget outputs replaced by a text line of their final state (or dropped when it is unknown)."""
    kept: list = []
    for output in outputs:
        view = output.get("data", {}).get(WIDGET_VIEW)
        if view is None:
            kept.append(output)
            continue
        text = widget_text(view, state)
        if text:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text=text + "\n"))
    return kept


def path_rules(root: Path) -> list[tuple[str, str]]:
    """(absolute prefix, relative replacement), longest first: the project, the mirror, the home folder."""
    rules: dict[str, str] = {}
    mirror = settings.raw("ADL_DATA_MIRROR")
    for project in {root, root.resolve(), ROOT}:
        mirrors = [project.parent / "shared" / "datasets"] + ([project / mirror] if mirror else [])
        for folder in mirrors:  # project / an absolute mirror is that mirror
            for spelling in {str(folder), str(folder.resolve())}:
                # lexical, not resolved: a mirror reached through a symbolic link still reads ../shared/datasets
                rules[spelling] = os.path.relpath(os.path.normpath(folder), os.path.normpath(project))
        rules[str(project)] = "."
    rules.setdefault(str(Path.home()), "~")  # a project inside the home folder keeps its own rule
    return sorted(((p, s) for p, s in rules.items() if p.strip("/")), key=lambda rule: -len(rule[0]))


def _generic(match: re.Match) -> str:
    path = match.group(0)
    parts = path.strip("/").split("/")
    for i, part in enumerate(parts[1:], start=1):
        if part in ANCHORS:
            return "/".join(parts[i:])
        if part == "shared":
            return "../" + "/".join(parts[i:])
    if parts[0] in ("root",):
        return "~/" + "/".join(parts[1:])
    if parts[0] in ("home", "Users") and len(parts) > 1:
        return "~/" + "/".join(parts[2:])
    return "<tmp>/" + parts[-1] if parts[0] in ("tmp", "private", "var") else path


def _outside_ansi(text: str, fn) -> str:
    """Apply ``fn`` to the text between ANSI colour codes (tracebacks are coloured)."""
    pieces = ANSI.split(text)
    return "".join(piece if i % 2 else fn(piece) for i, piece in enumerate(pieces))


def relativise(text: str, rules: list[tuple[str, str]]) -> str:
    """Absolute paths in ``text`` made relative: known prefixes first, then any path under /work, /root,
    /home, /tmp, /Users (cut at a project folder such as ``outputs/``)."""
    def fix(piece: str) -> str:
        for prefix, short in rules:
            # only where a path starts (not inside a URL or a longer path), and only whole folder names
            start = r"(?<![\w.~/-])" + re.escape(prefix)
            piece = re.sub(start + "/", lambda _, s=short: "" if s == "." else s + "/", piece)
            piece = re.sub(start + r"(?![\w.-])", lambda _, s=short: s, piece)
        return ABSOLUTE.sub(_generic, piece)

    return _outside_ansi(text, fix)


def absolute_paths(text: str, rules: list[tuple[str, str]]) -> list[str]:
    """The absolute paths in ``text``: any under the prefixes of ``rules`` (:func:`path_rules`: the
    project, its mirror and the home folder, wherever the clone lives), and any of the usual kind
    (/work, /root, /home, /tmp, /Users ...)."""
    known = [re.compile(r"(?<![\w.~/-])" + re.escape(prefix) + r"(?![\w.-])[^\s'\"()<>,;:]*") for prefix, _ in rules]
    found: list[str] = []

    def collect(piece: str) -> str:
        for pattern in known:
            found.extend(pattern.findall(piece))
            piece = pattern.sub("", piece)
        found.extend(ABSOLUTE.findall(piece))
        return piece

    _outside_ansi(text, collect)
    return found


def _map_text(output: dict, fn) -> None:
    if output.get("output_type") == "stream":
        output["text"] = fn(output["text"])
    elif output.get("output_type") == "error":
        output["evalue"] = fn(output.get("evalue", ""))
        output["traceback"] = [fn(line) for line in output.get("traceback", [])]
    for key, value in output.get("data", {}).items():
        if key.startswith(TEXT_LIKE) and isinstance(value, str):
            output["data"][key] = fn(value)


# --------------------------------------------------------------------------- the banner
def run_mode(nb: nbformat.NotebookNode) -> str | None:
    """``"quick"`` or ``"full"`` from the first ``describe_run`` line in the outputs, else None."""
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            text = output.get("text") or output.get("data", {}).get("text/plain", "")
            match = MODE.search(text if isinstance(text, str) else "".join(text))
            if match:
                return match.group(1)
    return None


def _tags(cell: nbformat.NotebookNode) -> list[str]:
    return cell.metadata.get("tags", [])


def set_banner(nb: nbformat.NotebookNode) -> None:
    """A ``run-banner`` cell right after the title when the outputs come from quick mode; none otherwise."""
    banners = [c for c in nb.cells if BANNER_TAG in _tags(c)]
    if run_mode(nb) != "quick":
        nb.cells = [c for c in nb.cells if BANNER_TAG not in _tags(c)]
        return
    if banners:
        for cell in banners[1:]:
            nb.cells.remove(cell)
        banners[0].source = BANNER_TEXT
        return
    banner = nbformat.v4.new_markdown_cell(BANNER_TEXT, metadata={"tags": [BANNER_TAG]})
    if nb.nbformat_minor >= 5:
        banner["id"] = BANNER_TAG if all(c.get("id") != BANNER_TAG for c in nb.cells) else banner["id"]
    else:
        banner.pop("id", None)
    nb.cells.insert(1 if nb.cells and slides.heading_level(nb.cells[0]) == 1 else 0, banner)


# --------------------------------------------------------------------------- the whole notebook
def tidy(nb: nbformat.NotebookNode, path: Path) -> nbformat.NotebookNode:
    """A tidied copy of ``nb`` (``path`` says which kind of notebook it is and where its project is)."""
    nb = copy.deepcopy(nb)
    state = nb.metadata.pop("widgets", {}).get(WIDGET_STATE, {}).get("state", {})
    rules = path_rules(project_root(path))
    learner = is_learner_activity(path)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        if learner:
            cell.outputs, cell.execution_count = [], None
            continue
        outputs = merge_streams(replace_widgets(cell.outputs, state))
        for output in outputs:
            if output.get("output_type") == "stream":
                output["text"] = collapse_carriage_returns(output["text"])
            _map_text(output, lambda text: relativise(text, rules))
        cell.outputs = [o for o in outputs if o.get("output_type") != "stream" or o["text"]]
    set_banner(nb)
    slides.apply_slide_metadata(nb)
    return nb


def tidy_file(path: Path, check: bool = False) -> bool:
    """Tidy one notebook file in place (unless ``check``); True when it changed (or would)."""
    before = path.read_text(encoding="utf-8")
    after = nbformat.writes(tidy(nbformat.reads(before, as_version=4), path))
    after += "" if after.endswith("\n") else "\n"
    if after == before:
        return False
    if not check:
        path.write_text(after, encoding="utf-8")
    return True


# --------------------------------------------------------------------------- what the hygiene test rejects
def _output_texts(output: dict) -> Iterable[str]:
    if output.get("output_type") == "stream":
        yield output.get("text", "")
    if output.get("output_type") == "error":
        yield output.get("evalue", "")
        yield from output.get("traceback", [])
    for key, value in output.get("data", {}).items():
        if key.startswith(TEXT_LIKE) and isinstance(value, str):
            yield value


def problems(nb: nbformat.NotebookNode, path: Path) -> list[str]:
    """What is not tidy in ``nb``: each entry names the cell and the problem."""
    found: list[str] = []
    if "widgets" in nb.metadata:
        found.append("saved widget state (metadata.widgets)")
    learner = is_learner_activity(path)
    rules = path_rules(project_root(path))  # once per notebook, as in tidy()
    for i, cell in enumerate(nb.cells):
        where = f"cell {i}"
        if "execution" in cell.metadata:
            found.append(f"{where}: execution timestamps (metadata.execution)")
        if not cell.metadata.get("slideshow", {}).get("slide_type"):
            found.append(f"{where}: no slideshow metadata")
        if cell.cell_type != "code":
            continue
        if learner and (cell.outputs or cell.execution_count is not None):
            found.append(f"{where}: outputs in a learner activity (save it without outputs)")
        for output in cell.outputs:
            if WIDGET_VIEW in output.get("data", {}):
                found.append(f"{where}: a widget output (a progress bar frozen in the file)")
            for text in _output_texts(output):
                if any(FROZEN_BAR.search(line) for line in collapse_carriage_returns(text).splitlines()):
                    found.append(f"{where}: a progress bar frozen at 0%")
                found += [f"{where}: an absolute path in an output: {path}" for path in absolute_paths(text, rules)]
    if nb.cells and nb.cells[0].metadata.get("slideshow", {}).get("slide_type") != "slide":
        found.append("the title cell does not start a slide")
    if slides.count_slides(nb) < 2:
        found.append("fewer than two slides")
    banner = any(BANNER_TAG in _tags(c) for c in nb.cells)
    mode = run_mode(nb)
    if mode == "quick" and not banner:
        found.append("saved from a quick-mode run but has no run-banner cell")
    if mode != "quick" and banner:
        found.append(f"a run-banner cell but the outputs are from {mode or 'no'} run")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks or folders (default: chapters/ solutions/)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is not tidy")
    args = parser.parse_args(argv)
    paths = notebooks(args.paths or [ROOT / "chapters", ROOT / "solutions"])
    changed = [path for path in paths if tidy_file(path, check=args.check)]
    for path in changed:
        print(("not tidy: " if args.check else "tidied: ") + str(path))
    print(f"{len(paths)} notebooks, {len(changed)} {'not tidy' if args.check else 'changed'}.")
    return 1 if args.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
