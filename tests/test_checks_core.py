"""utils.checks: the verdicts of check cells, and the hand-written training-loop check."""

from __future__ import annotations

import torch

from utils.checks import NOT_DONE, PASSED, WRONG, Checker, expect, need
from utils.checks.training_loop import check_training_loop, compare_with_fit


def make_checker() -> Checker:
    check = Checker("Activity 0")

    @check.register(1, "define the model")
    def _(ns):
        model = need(ns, "model", "an nn.Linear")
        expect(model.out_features == 2, f"your layer has {model.out_features} outputs; the task needs 2")
        return "the layer has 2 outputs"

    @check.register(2, "run it")
    def _(ns):
        return str(1 / need(ns, "zero"))

    return check


def test_verdicts_are_passed_not_done_or_wrong_and_never_raise(capsys):
    check = make_checker()
    assert check.run(1, {}).status == NOT_DONE and "define `model`" in check.run(1, {}).message
    assert check.run(1, {"model": None}).status == NOT_DONE
    wrong = check.run(1, {"model": torch.nn.Linear(3, 4)})
    assert wrong.status == WRONG and wrong.message == "your layer has 4 outputs; the task needs 2"
    assert check.run(1, {"model": torch.nn.Linear(3, 2)}).status == PASSED
    crashed = check.run(2, {"zero": 0})
    assert crashed.status == WRONG and "ZeroDivisionError" in crashed.message
    assert check.run(7, {}).status == WRONG
    assert check.step(1, {"model": torch.nn.Linear(3, 2)}) is None  # a check cell shows its verdict once
    assert capsys.readouterr().out.startswith("✅ Activity 0, step 1 passed: the layer has 2 outputs")
    assert check.run(1, {"model": torch.nn.Linear(3, 2)}).passed


def test_step_reads_the_callers_globals_by_default(capsys):
    check = make_checker()
    check.step(1)  # this module defines no `model`
    assert "step 1 is not done yet" in capsys.readouterr().out


def _loop(*, train_mode=True, eval_mode=True, zero=True, no_grad=True, plain_mean=False, last_batch=False):
    def train(model, train_loader, val_loader, loss_fn, optimizer, epochs, device):
        train_losses, val_losses = [], []
        for _ in range(epochs):
            if train_mode:
                model.train()
            total, seen, last = 0.0, 0, 0.0
            for x, y in train_loader:
                x, y = x.to(device), y.to(device)
                if zero:
                    optimizer.zero_grad()
                loss = loss_fn(model(x), y)
                loss.backward()
                optimizer.step()
                total, seen, last = total + loss.item() * len(y), seen + len(y), loss.item()
            train_losses.append(last if last_batch else total / seen)
            if eval_mode:
                model.eval()
            with torch.set_grad_enabled(not no_grad):
                total, seen = 0.0, 0
                for x, y in val_loader:
                    total, seen = total + loss_fn(model(x), y).item() * len(y), seen + len(y)
            val_losses.append(total / seen)
        return train_losses, val_losses
    return train


def test_a_correct_loop_passes_and_typical_mistakes_get_specific_messages():
    assert "matches utils.fit" in check_training_loop(_loop())
    mistakes = {
        "call `model.eval()`": _loop(eval_mode=False),
        "call `model.train()`": _loop(train_mode=False),
        "call `optimizer.zero_grad()`": _loop(zero=False),
        "torch.no_grad()": _loop(no_grad=False),
        "mean of its batch losses": _loop(last_batch=True),
    }
    check = Checker("Activity 0")
    check.register(1, "write the loop")(lambda ns: check_training_loop(need(ns, "train")))
    for message, loop in mistakes.items():
        result = check.run(1, {"train": loop})
        assert result.status == WRONG and message in result.message, (message, result.message)
    assert check.run(1, {"train": lambda *args: 3}).status == WRONG


def test_compare_with_fit_on_a_shuffled_loader(capsys):
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.randn(40, 5), torch.randint(0, 2, (40,)))
    loader = DataLoader(data, batch_size=8, shuffle=True, generator=torch.Generator())
    make = lambda: torch.nn.Sequential(torch.nn.Linear(5, 2), torch.nn.LogSoftmax(dim=1))  # noqa: E731
    same = compare_with_fit(_loop(), make, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), loader, loader,
                            torch.nn.NLLLoss(), 2, torch.device("cpu"))
    assert same and capsys.readouterr().out.strip().endswith("True")
    assert not compare_with_fit(_loop(zero=False), make, lambda m: torch.optim.SGD(m.parameters(), lr=0.1), loader,
                                loader, torch.nn.NLLLoss(), 2, torch.device("cpu"))
