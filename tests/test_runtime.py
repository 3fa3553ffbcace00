import numpy as np
import pandas as pd
import pytest
import torch

from utils import runtime


def test_quick_returns_book_value_unless_quick_mode(monkeypatch):
    monkeypatch.delenv("ADL_QUICK", raising=False)
    assert runtime.quick(50, 2) == 50
    monkeypatch.setenv("ADL_QUICK", "1")
    assert runtime.quick(50, 2) == 2
    monkeypatch.setenv("ADL_QUICK", "0")
    assert runtime.quick(50, 2) == 50


@pytest.mark.parametrize("make", [
    lambda: pd.DataFrame({"a": range(100)}), lambda: np.arange(100), lambda: torch.arange(100),
    lambda: list(range(100)), lambda: torch.utils.data.TensorDataset(torch.arange(100)),
])
def test_quick_subset_is_reproducible_and_only_in_quick_mode(monkeypatch, make):
    data = make()
    monkeypatch.delenv("ADL_QUICK", raising=False)
    assert runtime.quick_subset(data, 10) is data
    monkeypatch.setenv("ADL_QUICK", "1")
    first, second = runtime.quick_subset(data, 10), runtime.quick_subset(data, 10)
    assert len(first) == 10
    items = [first[i] for i in range(10)] if not hasattr(first, "iloc") else first["a"].tolist()
    again = [second[i] for i in range(10)] if not hasattr(second, "iloc") else second["a"].tolist()
    assert str(items) == str(again)
    assert runtime.quick_subset(data, 1000) is data


def test_get_device_falls_back_to_cpu(monkeypatch):
    monkeypatch.delenv("ADL_DEVICE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert runtime.get_device() == torch.device("cpu")


def test_get_device_prefers_cuda_then_mps(monkeypatch):
    monkeypatch.delenv("ADL_DEVICE", raising=False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert runtime.get_device().type == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert runtime.get_device().type == "mps"
    monkeypatch.setenv("ADL_DEVICE", "cpu")
    assert runtime.get_device().type == "cpu"


def test_seeding_makes_runs_identical():
    def run():
        gen = runtime.seed_everything(7)
        model = torch.nn.Linear(4, 2)
        order = torch.randperm(10, generator=gen)
        return model.weight.detach().clone(), np.random.rand(3), order

    (w1, n1, o1), (w2, n2, o2) = run(), run()
    assert torch.equal(w1, w2) and np.array_equal(n1, n2) and torch.equal(o1, o2)


def test_describe_run_reports_mode_and_device(monkeypatch, capsys):
    monkeypatch.setenv("ADL_QUICK", "1")
    line = runtime.describe_run(torch.device("cpu"))
    assert "quick" in line and "device: cpu" in line and line in capsys.readouterr().out
