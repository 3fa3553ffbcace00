"""Run notebooks in full mode and write RESULTS.md: ``python tools/results.py [--run NOTEBOOK ...]``.

Notebooks record their key figures with ``utils.record_result`` into ``results/<mode>/``.
``--run`` executes the given notebooks in full mode (the book's configuration) first, writing
the executed copies to ``results/executed/`` so the committed notebooks keep their outputs.
Then the table is rebuilt from every full-mode record. Rows for notebooks never run in full
mode say so; nothing is estimated.

Full-mode records made on a GPU machine (their ``results/full/*.json`` copied into
``results/full-gpu/``) get a second table, next to the same notebook's CPU figure and wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from utils import settings

ROOT = Path(__file__).resolve().parent.parent
RECORD = re.compile(r"record_result\(\s*[\"']([^\"']+)[\"']")
BOOK = re.compile(r"book\s*=\s*(?:\"([^\"]*)\"|'([^']*)')")


# Code that can bring in an offline stand-in (utils.standins); notebooks without it never use one.
STANDIN_SOURCES = ("year_prediction", "vgg19")
GPU_MODE = "full-gpu"  # folder of full-mode records made on a GPU machine (see the module docstring)


def can_use_standin(notebook: Path) -> bool:
    import nbformat

    code = "\n".join(c.source for c in nbformat.read(notebook, as_version=4).cells if c.cell_type == "code")
    return any(name in code for name in STANDIN_SOURCES)


def recorded_notebooks() -> dict[str, tuple[Path, str]]:
    """Result id -> (notebook, book figure) for every notebook that calls ``record_result``."""
    import nbformat

    found: dict[str, tuple[Path, str]] = {}
    for path in sorted((ROOT / "solutions").rglob("*.ipynb")) + sorted((ROOT / "chapters").rglob("*.ipynb")):
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type != "code":
                continue
            for match in RECORD.finditer(cell.source):
                book = BOOK.search(cell.source[match.end():].split("record_result(")[0])
                found.setdefault(match.group(1), (path, (book.group(1) or book.group(2) or "") if book else ""))
    return found


def load(mode: str) -> dict[str, dict]:
    folder = (settings.folder("ADL_RESULTS_DIR", must_exist=False) or ROOT / "results") / mode
    return {r["notebook"]: r for r in (json.loads(p.read_text()) for p in sorted(folder.glob("*.json")))}


def fmt(value: float | str) -> str:
    if isinstance(value, str):  # free text (e.g. a generated sample) must stay inside one table cell
        return " ".join(value.split()).replace("|", "\\|")
    return f"{value:.4g}"


def practitioner_cell(record: dict) -> str:
    """``0.83 (TF-IDF + logistic regression) — beats the network``, or empty when none was recorded."""
    other = record.get("practitioner")
    if other is None:
        return ""
    value, higher = record["value"], record["higher_is_better"]
    if (other > value) if higher else (other < value):
        verdict = "**beats the network**"
    elif other == value:
        verdict = "ties with the network"
    else:
        verdict = "the network beats it"
    return f"{fmt(other)} ({fmt(record.get('practitioner_name') or 'unnamed')}) — {verdict}"


def wall_time(record: dict) -> str:
    minutes = record["wall_time_s"] / 60
    return f"{minutes:.1f} min" if minutes >= 1 else f"{record['wall_time_s']:.0f} s"


def gpu_table(recorded: dict[str, tuple[Path, str]], cpu: dict[str, dict], note: str = "") -> list[str]:
    """Lines of the "Full mode on a GPU" section: each ``results/full-gpu/`` record next to the CPU one
    (``recorded``: :func:`recorded_notebooks`; ``cpu``: the full-mode records)."""
    gpu = load(GPU_MODE)
    if not gpu:
        return []
    lines = ["", "## Full mode on a GPU", "", *([note, ""] if note else []),
             "| notebook | on the GPU (full mode) | on the CPU (table above) | wall time, GPU | wall time, CPU "
             "| CPU time / GPU time | GPU |",
             "|---|---|---|---|---|---|---|"]
    for result_id, (path, _) in recorded.items():
        record = gpu.get(result_id)
        if record is None:
            continue
        other = cpu.get(result_id)
        figure = f"{record['metric']} **{fmt(record['value'])}**"
        cpu_figure = f"{fmt(other['value'])}" if other else "not run in full mode"
        ratio = f"{other['wall_time_s'] / record['wall_time_s']:.1f}×" if other else ""
        lines.append(f"| [{result_id}]({path.relative_to(ROOT).as_posix()}) | {figure} | {cpu_figure} | "
                     f"{wall_time(record)} | {wall_time(other) if other else ''} | {ratio} | "
                     f"{record['device_name']} ({record['device']}) |")
    return lines


def table(note: str = "", gpu_note: str = "") -> str:
    full, quick, recorded = load("full"), load("quick"), recorded_notebooks()
    lines = ["# Results", "",
             "Figures recorded by the notebooks themselves (`utils.record_result`) in **full mode** (the book's",
             "configuration), next to the book's figure, the trivial baseline and, where one applies, the practitioner",
             "baseline: the model a practitioner would try first on the same split. Regenerate with `make results`.",
             "Rows not yet run in full mode say so; the quick-mode (CI) figure is shown only as a smoke test.", "",
             *([note, ""] if note else []),
             "| notebook | book | this course (full mode) | trivial baseline | practitioner baseline | wall time "
             "| device | stand-ins used |",
             "|---|---|---|---|---|---|---|---|"]
    for result_id, (path, book) in recorded.items():
        link = f"[{result_id}]({path.relative_to(ROOT).as_posix()})"
        record = full.get(result_id)
        if record is None:
            q = quick.get(result_id)
            smoke = f" (quick-mode smoke test: {q['metric']} {fmt(q['value'])})" if q else ""
            lines.append(f"| {link} | {book} | not yet run in full mode{smoke} | | | | | |")
            continue
        extra = ", ".join(f"{k} {fmt(v)}" for k, v in record["extra"].items())
        figure = f"{record['metric']} **{fmt(record['value'])}**" + (f" ({extra})" if extra else "")
        wall = wall_time(record)
        if "standins" in record:
            standins = ", ".join(record["standins"]) or "none"
        else:  # records written before stand-ins were tracked
            standins = "not recorded" if can_use_standin(path) else "none"
        lines.append(f"| {link} | {book} | {figure} | {fmt(record['baseline'])} | {practitioner_cell(record)} | "
                     f"{wall} | {record['device_name']} ({record['device']}) | {standins} |")
    lines += ["", "A stand-in is used only with `ADL_OFFLINE=1`: YearPredictionMSD replaced by the project's synthetic",
              "sample, VGG-19 by random weights. Those rows are not comparable with the book's figures."]
    lines += gpu_table(recorded, full, gpu_note)
    return "\n".join(lines) + "\n"


def run(notebooks: list[str]) -> None:
    out = ROOT / "results" / "executed"
    out.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k != "ADL_QUICK"}
    env.setdefault("ADL_PLAIN_PROGRESS", "1")  # text progress bars in the saved copies
    for nb in notebooks:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "jupyter", "nbconvert", "--to", "notebook", "--execute",
                        "--ExecutePreprocessor.timeout=-1", f"--output-dir={out}", nb], check=True, env=env)
        print(f"{nb}: {time.perf_counter() - start:.0f} s in full mode")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", nargs="*", default=[], metavar="NOTEBOOK", help="notebooks to execute in full mode")
    parser.add_argument("--output", type=Path, default=ROOT / "RESULTS.md")
    parser.add_argument("--note", default="", help="a paragraph about the machine and conditions of these runs")
    parser.add_argument("--gpu-note", default="", help="the same for the GPU runs (results/full-gpu/)")
    args = parser.parse_args()
    run(args.run)
    args.output.write_text(table(args.note, args.gpu_note))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
