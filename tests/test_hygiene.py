"""Clean notebooks: every committed notebook is tidy, and ``tools/tidy_notebooks.py`` makes it so.

The first test fails on any notebook with execution timestamps, saved widget state, a frozen
progress bar, an absolute path of this machine in an output, outputs in a learner activity, a
quick-mode run without its banner, or no slide metadata. ``python tools/tidy_notebooks.py``
fixes all of these; the unit tests below prove each of its normalisations on small notebooks.
"""

from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("tidy_notebooks", ROOT / "tools" / "tidy_notebooks.py")
tidy_notebooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(tidy_notebooks)

NOTEBOOKS = tidy_notebooks.notebooks([ROOT / "chapters", ROOT / "solutions"])
QUICK_LINE = "mode: quick (ADL_QUICK=1) | device: cpu | torch 2.4.0 | python 3.11.7\n"
FULL_LINE = "mode: full (the book's configuration) | device: cpu | torch 2.4.0 | python 3.11.7\n"
SOLUTION = ROOT / "solutions" / "ch09_test" / "activity99_test.ipynb"
LEARNER = ROOT / "chapters" / "ch09_test" / "activity99_test.ipynb"
EXERCISE = ROOT / "chapters" / "ch09_test" / "exercise99_test.ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[str(p.relative_to(ROOT)) for p in NOTEBOOKS])
def test_committed_notebook_is_tidy(path: Path):
    found = tidy_notebooks.problems(nbformat.read(path, as_version=4), path)
    assert not found, (f"{path.relative_to(ROOT)} is not tidy; run `python tools/tidy_notebooks.py "
                       f"{path.relative_to(ROOT)}`:\n  " + "\n  ".join(found))


# --------------------------------------------------------------------------- small notebooks
def stream(text: str, name: str = "stdout") -> nbformat.NotebookNode:
    return nbformat.v4.new_output("stream", name=name, text=text)


def notebook(*outputs_per_cell: list, setup: str = QUICK_LINE) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Activity 99: a test\n\nWhat it is about."),
                nbformat.v4.new_code_cell("describe_run(device)", execution_count=1, outputs=[stream(setup)]),
                nbformat.v4.new_markdown_cell("## 1. First step")]
    for i, outputs in enumerate(outputs_per_cell, start=2):
        nb.cells.append(nbformat.v4.new_code_cell(f"step_{i}()", execution_count=i, outputs=outputs))
    nb.cells.append(nbformat.v4.new_markdown_cell("## Summary"))
    return nb


def step_outputs(nb: nbformat.NotebookNode) -> list:
    """The outputs of the first code cell after the setup cell."""
    return [cell for cell in nb.cells if cell.cell_type == "code"][1].outputs


def widget_bar(model: str = "bar0") -> tuple[nbformat.NotebookNode, dict]:
    """A tqdm widget output (frozen at 0% in its text fallback) and the saved state of its final draw."""
    output = nbformat.v4.new_output("display_data", data={
        tidy_notebooks.WIDGET_VIEW: {"model_id": model, "version_major": 2, "version_minor": 0},
        "text/plain": "epochs:   0%|          | 0/5 [00:00<?, ?it/s]"})
    state = {
        model: {"state": {"children": [f"IPY_MODEL_{model}l", f"IPY_MODEL_{model}p", f"IPY_MODEL_{model}r"]}},
        f"{model}l": {"state": {"value": "epochs:\u2007100%"}},
        f"{model}p": {"state": {"value": 5.0, "max": 5.0, "bar_style": "success"}},
        f"{model}r": {"state": {"value": "\u20075/5\u2007[00:03&lt;00:00,\u20071.6it/s,\u2007loss=0.512]"}},
    }
    return output, state


def test_execution_metadata_and_widget_state_are_removed():
    nb = notebook([])
    nb.cells[1].metadata["execution"] = {"iopub.execute_input": "2026-11-27T01:10:15.646085Z"}
    nb.metadata["widgets"] = {tidy_notebooks.WIDGET_STATE: {"state": {}, "version_major": 2}}
    tidied = tidy_notebooks.tidy(nb, SOLUTION)
    assert "widgets" not in tidied.metadata
    assert all("execution" not in cell.metadata for cell in tidied.cells)
    assert "execution" in nb.cells[1].metadata, "tidy works on a copy"


def test_widget_progress_bar_becomes_its_final_state_or_is_dropped():
    output, state = widget_bar()
    nb = notebook([output])
    nb.metadata["widgets"] = {tidy_notebooks.WIDGET_STATE: {"state": state}}
    outputs = step_outputs(tidy_notebooks.tidy(nb, SOLUTION))
    assert outputs == [stream("epochs: 100%|##########| 5/5 [loss=0.512]\n")]
    without_state = tidy_notebooks.tidy(notebook([widget_bar()[0], stream("done\n")]), SOLUTION)
    assert step_outputs(without_state) == [stream("done\n")], "a bar whose final state is unknown is dropped"


def test_text_progress_bars_collapse_to_their_final_state():
    bar = ("\repochs:   0%|          | 0/5 [00:00<?, ?it/s]\repochs:  40%|####      | 2/5 [00:01<00:01]"
           "\repochs: 100%|##########| 5/5 [00:03<00:00]\n")
    nb = notebook([stream("training\n"), stream(bar), stream("test accuracy: 0.61\n")])
    outputs = step_outputs(tidy_notebooks.tidy(nb, SOLUTION))
    assert outputs == [stream("training\nepochs: 100%|##########| 5/5 [00:03<00:00]\ntest accuracy: 0.61\n")]
    assert tidy_notebooks.collapse_carriage_returns("a\r\nb 10%\rb 90%\r") == "a\nb 90%"


def test_absolute_paths_become_relative(monkeypatch: pytest.MonkeyPatch):
    mirror = ROOT.parent / "shared" / "datasets"
    monkeypatch.setenv("ADL_DATA_MIRROR", str(mirror))
    home = Path.home()
    error = nbformat.v4.new_output("error", ename="FileNotFoundError", evalue=f"{ROOT}/outputs/ch03/x.pt",
                                   traceback=[f"File \x1b[0;32m{ROOT}/utils/handoff.py\x1b[0m, line 3"])
    html = nbformat.v4.new_output("display_data", data={"text/html": f"<p>{home}/.cache/adl/file.csv</p>",
                                                        "text/plain": "table"})
    nb = notebook([stream(f"rebuilding {ROOT}/outputs/ch03/prepared\ncopied {mirror}/cifar/a.npz\n"
                          "scratch /tmp/pytest-of-root/pytest-7/test_a0/outputs/ch03/meta.json and /tmp/tmpab12/x.png\n"
                          f"cwd {ROOT}\n"), error, html])
    outputs = step_outputs(tidy_notebooks.tidy(nb, SOLUTION))
    assert outputs[0]["text"] == ("rebuilding outputs/ch03/prepared\ncopied ../shared/datasets/cifar/a.npz\n"
                                  "scratch outputs/ch03/meta.json and <tmp>/x.png\ncwd .\n")
    assert outputs[1]["evalue"] == "outputs/ch03/x.pt"
    assert outputs[1]["traceback"] == ["File \x1b[0;32mutils/handoff.py\x1b[0m, line 3"]
    assert outputs[2]["data"]["text/html"] == "<p>~/.cache/adl/file.csv</p>"
    for output in outputs:
        assert not any(tidy_notebooks.absolute_paths(t, tidy_notebooks.path_rules(ROOT))
                       for t in tidy_notebooks._output_texts(output))
    assert tidy_notebooks.relativise("see https://example.com/home/page", []) == "see https://example.com/home/page"


@pytest.mark.parametrize("clone", ["/srv/ci/main", "/repo"])
def test_a_clone_outside_the_usual_folders_still_has_its_paths_found(clone):
    # CI may clone the project anywhere (even /repo); its own paths are absolute paths too
    rules = tidy_notebooks.path_rules(Path(clone))
    found = tidy_notebooks.absolute_paths(f"saved to {clone}/outputs/x.pt and {clone}\n", rules)
    assert found == [f"{clone}/outputs/x.pt", clone]
    url = f"see https://example.com{clone}/x and {clone}x/y"
    assert tidy_notebooks.absolute_paths(url, rules) == []
    assert tidy_notebooks.relativise(url, rules) == url
    assert tidy_notebooks.relativise(f"saved to {clone}/outputs/x.pt in {clone}", rules) == "saved to outputs/x.pt in ."


def test_learner_activities_lose_every_output_but_solutions_and_exercises_keep_theirs():
    nb = notebook([stream("loss 0.5\n")])
    learner = tidy_notebooks.tidy(nb, LEARNER)
    code = [c for c in learner.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert not any(tidy_notebooks.BANNER_TAG in c.metadata.get("tags", []) for c in learner.cells), \
        "a notebook without outputs shows no run, so no banner"
    for path in (SOLUTION, EXERCISE):
        kept = [c for c in tidy_notebooks.tidy(nb, path).cells if c.cell_type == "code"]
        assert [c.execution_count for c in kept] == [1, 2] and kept[1].outputs == [stream("loss 0.5\n")]


def test_quick_mode_banner_follows_the_title_and_goes_for_a_full_run():
    quick = tidy_notebooks.tidy(notebook([]), SOLUTION)
    banner = quick.cells[1]
    assert banner.cell_type == "markdown" and banner.metadata["tags"] == [tidy_notebooks.BANNER_TAG]
    assert "quick-mode run" in banner.source and "ADL_QUICK" in banner.source
    assert tidy_notebooks.tidy(quick, SOLUTION) == quick, "tidying twice changes nothing"

    standin = nbformat.v4.new_markdown_cell("> **Stand-in data.**", metadata={"tags": ["standin-banner"]})
    quick.cells.insert(2, standin)
    quick.cells[3].outputs = [stream(FULL_LINE)]  # the same notebook, re-run in full mode
    full = tidy_notebooks.tidy(quick, SOLUTION)
    tags = [c.metadata.get("tags", []) for c in full.cells]
    assert [tidy_notebooks.BANNER_TAG] not in tags and ["standin-banner"] in tags
    assert full.cells[0].source.startswith("# Activity 99")


def test_slide_metadata_is_written_and_an_authors_choice_is_kept():
    nb = notebook([stream("\n".join(map(str, range(40))))], [])
    nb.cells[-2].metadata["slideshow"] = {"slide_type": "skip"}  # the author's choice
    tidied = tidy_notebooks.tidy(nb, SOLUTION)
    kinds = [c.metadata["slideshow"]["slide_type"] for c in tidied.cells]
    assert kinds[0] == "slide" and kinds[-1] == "slide" and kinds[-2] == "skip"
    assert tidy_notebooks.problems(tidied, SOLUTION) == []
    assert tidy_notebooks.tidy(tidied, SOLUTION) == tidied


def test_problems_names_each_kind_of_mess():
    output, state = widget_bar()
    nb = notebook([output, stream(f"saved to {ROOT}/outputs/x.pt\n"), stream("\rloss:   0%|          | 0/9")])
    nb.cells[1].metadata["execution"] = {"shell.execute_reply": "2026-11-27T01:10:20Z"}
    nb.metadata["widgets"] = {tidy_notebooks.WIDGET_STATE: {"state": state}}
    found = "\n".join(tidy_notebooks.problems(nb, SOLUTION))
    for words in ("metadata.widgets", "metadata.execution", "widget output", "frozen at 0%", "absolute path",
                  "no slideshow metadata", "no run-banner"):
        assert words in found
    assert "outputs in a learner activity" in "\n".join(tidy_notebooks.problems(nb, LEARNER))
    assert tidy_notebooks.problems(tidy_notebooks.tidy(nb, LEARNER), LEARNER) == []


def test_command_tidies_files_in_place_and_check_reports(tmp_path: Path):
    folder = tmp_path / "chapters" / "ch09_test"
    folder.mkdir(parents=True)
    path = folder / "exercise99_test.ipynb"
    nbformat.write(notebook([stream("\rx 0%|\rx 100%|\n")]), path)
    assert tidy_notebooks.main(["--check", str(tmp_path)]) == 1
    assert tidy_notebooks.main([str(tmp_path)]) == 0
    text = path.read_text()
    assert tidy_notebooks.main(["--check", str(path)]) == 0
    assert path.read_text() == text
    assert tidy_notebooks.problems(nbformat.read(path, as_version=4), path) == []


def test_picture_height_counts_towards_the_slide():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + (640).to_bytes(4, "big")
                           + (480).to_bytes(4, "big") + b"\x08\x06\x00\x00\x00").decode()
    picture = nbformat.v4.new_output("display_data", data={"image/png": png, "text/plain": "<Figure>"})
    assert tidy_notebooks.slides.output_lines(picture) == pytest.approx(480 / tidy_notebooks.slides.PIXELS_PER_LINE)
