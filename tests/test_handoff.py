"""utils.handoff: atomic, stamped, per-mode files that are rebuilt when missing, damaged or stale."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from utils import handoff


@pytest.fixture
def outputs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ADL_OUTPUTS_DIR", str(tmp_path / "outputs"))
    return tmp_path / "outputs"


def test_outputs_dir_follows_the_environment(outputs: Path):
    assert handoff.outputs_dir() == outputs


def test_paths_carry_the_mode(outputs: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("ADL_QUICK", "1")
    quick = handoff.handoff_path("ch03", "model")
    monkeypatch.setenv("ADL_QUICK", "0")
    full = handoff.handoff_path("ch03", "model")
    assert quick == outputs / "ch03" / "model_quick.pt" and full == outputs / "ch03" / "model_full.pt"


def test_save_then_load_round_trips_tensors_and_plain_values(outputs: Path):
    path = handoff.handoff_path("ch99", "thing")
    payload = {"weights": torch.arange(6.0).reshape(2, 3), "epochs": 3, "name": "x", "scores": [0.5, 0.25]}
    handoff.save(path, payload, {"format": 1})
    loaded = handoff.load(path, {"format": 1})
    assert torch.equal(loaded["weights"], payload["weights"])
    assert {k: loaded[k] for k in ("epochs", "name", "scores")} == {"epochs": 3, "name": "x", "scores": [0.5, 0.25]}
    assert not list(path.parent.glob(".*.tmp")), "no temporary file is left behind"


@pytest.mark.parametrize("content, reason", [(None, "is missing"), (b"", "is damaged"),
                                             (b"PK\x03\x04garbage", "is damaged"), (b"{\"json\": true}", "is damaged")])
def test_missing_or_damaged_files_raise_a_handoff_error_saying_why(outputs: Path, content, reason):
    path = handoff.handoff_path("ch99", "thing")
    if content is not None:
        path.parent.mkdir(parents=True)
        path.write_bytes(content)
    with pytest.raises(handoff.HandoffError, match=reason):
        handoff.load(path, {"format": 1})


def test_a_file_without_a_stamp_or_with_other_settings_is_stale(outputs: Path):
    path = handoff.handoff_path("ch99", "thing")
    path.parent.mkdir(parents=True)
    torch.save({"weights": torch.zeros(1)}, path)
    with pytest.raises(handoff.HandoffError, match="no stamp"):
        handoff.load(path, {"format": 1})
    handoff.save(path, {"x": 1}, {"format": 1, "epochs": 50})
    with pytest.raises(handoff.HandoffError, match="epochs differ"):
        handoff.load(path, {"format": 1, "epochs": 100})


def test_load_or_rebuild_rebuilds_with_a_note_and_then_reuses(outputs: Path, capsys: pytest.CaptureFixture):
    path = handoff.handoff_path("ch99", "thing")
    calls = []

    def rebuild():
        calls.append(1)
        return {"value": torch.tensor([len(calls)])}

    first = handoff.load_or_rebuild(path, {"format": 1}, rebuild, what="the thing (thing.ipynb)")
    assert "Rebuilding the thing (thing.ipynb), because" in capsys.readouterr().out
    second = handoff.load_or_rebuild(path, {"format": 1}, rebuild, what="the thing (thing.ipynb)")
    assert calls == [1] and first["value"].item() == second["value"].item() == 1
    assert "Loaded the thing" in capsys.readouterr().out
    path.write_bytes(b"half-written")
    third = handoff.load_or_rebuild(path, {"format": 1}, rebuild, what="the thing")
    out = capsys.readouterr().out
    assert calls == [1, 1] and third["value"].item() == 2 and "is damaged" in out
    assert str(outputs) not in out, "notes show paths relative to the project, never the machine's folders"


def test_an_interrupted_write_keeps_the_old_file(outputs: Path):
    path = handoff.handoff_path("ch99", "thing")
    handoff.save(path, {"v": 1}, {"format": 1})

    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        handoff.write_atomically(path, broken)
    assert handoff.load(path, {"format": 1}) == {"v": 1}
    assert not list(path.parent.glob(".*.tmp"))
