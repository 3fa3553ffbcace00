"""utils.progress: widgets when live, text bars on stdout when ADL_PLAIN_PROGRESS=1."""

from __future__ import annotations

import pytest

from utils.progress import plain_progress, progress_bar


def test_plain_progress_draws_a_finished_text_bar_on_stdout(monkeypatch: pytest.MonkeyPatch, capsys):
    monkeypatch.setenv("ADL_PLAIN_PROGRESS", "1")
    assert plain_progress()
    assert list(progress_bar(range(3), desc="epochs")) == [0, 1, 2]
    out = capsys.readouterr().out
    assert "epochs" in out and "3/3" in out and "100%" in out


def test_default_is_tqdm_auto(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("ADL_PLAIN_PROGRESS", raising=False)
    from tqdm.auto import tqdm

    bar = progress_bar(range(2), disable=True)
    assert isinstance(bar, tqdm) and not plain_progress()
