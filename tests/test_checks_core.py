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


# --------------------------------------------------------------------------- crashes explained


def _raised(code: str, namespace: dict | None = None) -> BaseException:
    try:
        exec(code, namespace if namespace is not None else {"torch": torch, "nn": torch.nn})
    except Exception as error:  # noqa: BLE001 - the point is to keep it
        return error
    raise AssertionError(f"{code!r} did not raise")


def test_pitfall_names_the_known_mistakes():
    from utils.checks.crashes import explain_error, pitfall

    twice = _raised("w = torch.ones(2, requires_grad=True)\nl = (w * w).sum()\nl.backward()\nl.backward()")
    assert "detach the hidden states" in pitfall(twice) and "E6.5" in pitfall(twice)
    assert "torch.no_grad()" in pitfall(twice)
    clamped = {"torch": torch}
    code = ("target_img = torch.rand(3, requires_grad=True)\ntarget_img = target_img.clamp(0, 1)\n"
            "for _ in range(2):\n    (target_img * 2).sum().backward()")
    advice = pitfall(_raised(code, clamped), clamped)
    assert "`target_img` is no longer the leaf" in advice and "target_img.clamp_(...)" in advice
    assert "hidden states" not in advice, "the style-transfer clamp is not an RNN's states"
    leaf = _raised("w = torch.ones(2, requires_grad=True)\nw.clamp_(0, 1)")
    assert "inside `with torch.no_grad():`" in pitfall(leaf)
    model = torch.nn.Sequential(torch.nn.Linear(90, 10), torch.nn.ReLU(), torch.nn.Linear(7, 5))
    namespace = {"torch": torch, "model": model}
    shapes = _raised("model(torch.ones(4, 90))", namespace)
    advice = explain_error(shapes, namespace)
    assert advice.startswith("RuntimeError: mat1 and mat2 shapes cannot be multiplied (4x10 and 7x5)")
    assert "`model.2`" in advice and "nn.Linear(7, 5)" in advice and "received 10" in advice
    loaded = _raised("torch.nn.Linear(3, 2).load_state_dict(torch.nn.Linear(4, 2).state_dict())")
    assert "the saved `weight` has shape (2, 4) but your network's has (2, 3)" in pitfall(loaded)
    assert "run the cells above" in pitfall(_raised("undefined_name + 1"))
    assert pitfall(ValueError("something else")) == ""
    assert explain_error(ValueError("first line\nsecond")) == "ValueError: first line"


class _Result:
    def __init__(self, source: str, error: BaseException | None = None, cell_id: str | None = None):
        from types import SimpleNamespace

        self.info = SimpleNamespace(raw_cell=source, cell_id=cell_id)
        self.error_in_exec, self.error_before_exec = error, None


def test_a_crashed_step_cell_is_explained_until_that_cell_runs_cleanly(monkeypatch):
    from utils.checks import crashes

    monkeypatch.setitem(crashes._state, "installed", True)  # as inside IPython, fed by the callback below
    monkeypatch.setitem(crashes._state, "crash", None)
    check = make_checker()
    error = _raised("w = torch.ones(2, requires_grad=True)\nl = (w * w).sum()\nl.backward()\nl.backward()")
    crashes._post_run_cell(_Result("# Step 1: the model\nmodel = ...", error, cell_id="c1"))
    crashes._post_run_cell(_Result("check.step(1)"))  # another cell running cleanly changes nothing
    result = check.run(1, {})
    assert result.status == NOT_DONE
    assert result.message.startswith("the cell that starts `# Step 1: the model` raised RuntimeError: Trying to "
                                     "backward through the graph a second time")
    assert "detach the hidden states" in result.message and result.message.endswith("define `model` (an nn.Linear)")
    wrong = check.run(1, {"model": torch.nn.Linear(3, 4)})
    assert wrong.status == WRONG and "raised RuntimeError" in wrong.message and "4 outputs" in wrong.message
    crashes._post_run_cell(_Result("# Step 1: the model\nmodel = nn.Linear(3, 2)", cell_id="c1"))  # fixed, rerun
    assert check.run(1, {}).message == "define the model: define `model` (an nn.Linear)"
    crashes._post_run_cell(_Result("# Step 1: the model\nboom", error))  # no cell id: the source's comment decides
    assert "raised" in check.run(1, {}).message
    assert check.run(1, {"model": torch.nn.Linear(3, 2)}).passed  # a pass forgets it
    assert check.run(1, {}).status == NOT_DONE and "raised" not in check.run(1, {}).message


def test_outside_ipython_the_last_exception_is_used(monkeypatch):
    import sys

    from utils.checks import crashes

    monkeypatch.setitem(crashes._state, "installed", False)
    monkeypatch.setattr(sys, "last_value", ValueError("bad value"), raising=False)
    assert "a cell you ran raised ValueError: bad value" in make_checker().run(1, {}).message


# --------------------------------------------------------------------------- instrumentation fidelity


def test_watched_loader_behaves_like_the_loader():
    from torch.utils.data import DataLoader, TensorDataset

    from utils.checks.training_loop import _Watched

    loader = DataLoader(TensorDataset(torch.randn(10, 2), torch.arange(10)), batch_size=4)
    state = {"phase": None, "passes": {"train": 0}}
    watched = _Watched(loader, "train", state)
    assert watched.dataset is loader.dataset and len(watched.dataset) == 10 and watched.batch_size == 4
    assert len(watched) == 3 and watched.sampler is loader.sampler
    assert sum(len(y) for _, y in watched) == 10 and state["passes"]["train"] == 1
    try:
        watched.no_such_attribute  # noqa: B018
    except AttributeError as error:
        assert "no_such_attribute" in str(error)


def test_watched_optimizer_accepts_every_way_of_resetting_gradients():
    from utils.checks.training_loop import unwatch, watch_optimizer

    def run(reset) -> dict:
        model = torch.nn.Linear(3, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        calls = watch_optimizer(optimizer, model)
        for _ in range(3):
            reset(model, optimizer)
            model(torch.randn(4, 3)).pow(2).mean().backward()
            optimizer.step()
        assert type(optimizer).step is torch.optim.SGD.step and optimizer.param_groups[0]["lr"] == 0.1
        unwatch(calls)
        return calls

    def to_none(model, optimizer):
        for p in model.parameters():
            p.grad = None

    for reset in (lambda m, o: o.zero_grad(), lambda m, o: o.zero_grad(set_to_none=False),
                  lambda m, o: m.zero_grad(), to_none):
        calls = run(reset)
        assert calls["step"] == 3 and calls["zero_grad"] == 3 and calls["stale"] == 0
    calls = run(lambda m, o: None)
    assert calls["stale"] == 2 and calls["zero_grad"] == 1


def test_cross_entropy_on_log_probabilities_is_accepted_with_the_reason():
    import torch.nn.functional as F

    from utils.checks import Wrong, nll_equivalent

    assert nll_equivalent(torch.nn.NLLLoss()) == ""
    for loss in (torch.nn.CrossEntropyLoss(), F.cross_entropy):
        assert "log_softmax of log-probabilities changes nothing" in nll_equivalent(loss)
    for loss, phrase in ((lambda a, b: a.mean(dim=2), "failed"),
                         (torch.nn.NLLLoss(reduction="sum"), "where NLLLoss gives")):
        try:
            nll_equivalent(loss)
        except Wrong as error:
            assert phrase in str(error)
        else:
            raise AssertionError(f"{loss} was accepted")
