"""Checks for Activity 6 (Chapter 3): the deployment class, the checkpoint, a safe loader, the prediction,
TorchScript after ``eval()`` and ``torch.export``.

Steps: 1 ``Classifier``, 2 ``model`` rebuilt from the trained weights, 3 ``checkpoint_path``,
4 ``load_checkpoint``, 5 the prediction for the book's example, 6 ``traced``, 7 ``exported``.
"""

from __future__ import annotations

import pickle
import tempfile
import warnings
from pathlib import Path

import torch
from torch import nn

from . import Checker, Namespace, Wrong, count_parameters, expect, need

check = Checker("Activity 6")
REQUIRED_KEYS = ("input_size", "hidden_sizes", "output_size", "dropout", "state_dict")
_RAW_ERRORS = (KeyError, RuntimeError, pickle.UnpicklingError, EOFError)


def _batch(inputs: int, rows: int = 5) -> torch.Tensor:
    return torch.rand(rows, inputs, generator=torch.Generator().manual_seed(0))


@check.register(1, "the deployment class")
def _class(ns: Namespace) -> str:
    Classifier = need(ns, "Classifier", "the model class for deployment, PyTorch only")
    trained, record = need(ns, "trained"), need(ns, "record")
    expect(isinstance(Classifier, type) and issubclass(Classifier, nn.Module),
           "`Classifier` should be a class derived from `nn.Module`")
    config = record["config"]
    try:
        model = Classifier(**config)
    except TypeError as err:
        raise Wrong(f"`Classifier(**record['config'])` failed ({err}): the constructor takes `input_size`, "
                    "`hidden_sizes`, `output_size` and `dropout`") from err
    mine, theirs = set(model.state_dict()), set(trained.state_dict())
    expect(mine == theirs, f"your layers' weights are named {sorted(mine)[:4]}..., the trained ones "
                           f"{sorted(theirs)[:4]}...: name the hidden layers `hidden` (an `nn.ModuleList`) and the "
                           "last one `output`, so the trained weights fit")
    expect(count_parameters(model) == count_parameters(trained),
           f"your network has {count_parameters(model)} parameters, the trained one {count_parameters(trained)}")
    model.load_state_dict(trained.state_dict())
    x = _batch(config["input_size"])
    with torch.no_grad():
        noisy = Classifier(**{**config, "dropout": 0.5})
        noisy.eval()
        expect(torch.equal(noisy(x), noisy(x)),
               "in eval mode your network still drops units at random: apply dropout with an `nn.Dropout` module, "
               "or pass `training=self.training` to `F.dropout`, so `eval()` switches it off")
        expect(torch.allclose(model.eval()(x), trained.eval()(x), atol=1e-6),
               "with the trained weights your class computes something else: ReLU then dropout after each hidden "
               "layer, and `F.log_softmax(..., dim=1)` of the output layer")
        noisy.train()
        expect(not torch.equal(noisy(x), noisy(x)), "with `dropout=0.5` in training mode your network gives the same "
                                                    "answer twice: dropout is never applied, or ignores the `dropout` "
                                                    "argument; apply it after each ReLU in `forward`")
        steady = Classifier(**{**config, "dropout": 0.0}).train()
        expect(torch.equal(steady(x), steady(x)), "with `dropout=0.0` your network still drops units: use the "
                                                  "`dropout` argument as the rate, e.g. `nn.Dropout(dropout)`")
    return f"the trained weights fit your class ({count_parameters(model)} parameters) and give the same outputs"


@check.register(2, "the model rebuilt from the trained weights")
def _model(ns: Namespace) -> str:
    model = need(ns, "model", "an instance of your Classifier holding the trained weights")
    Classifier, trained, example = need(ns, "Classifier"), need(ns, "trained"), need(ns, "example")
    expect(isinstance(model, Classifier), f"`model` is a {type(model).__name__}; create it from your `Classifier`")
    expect(not model.training, "`model` is in training mode, so dropout is on: call `model.eval()`")
    with torch.no_grad():
        expect(torch.equal(model(example), trained.eval()(example)),
               "`model(example)` differs from `trained(example)`: load `trained.state_dict()` into it")
    return "your class, with the trained weights, in eval mode, predicts what the trained model predicts"


def _read(path: Path):
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise Wrong(f"{path.name} holds Python objects, not plain data (a whole pickled model?), so "
                    "`weights_only=True` refuses it: save a dictionary of sizes and `model.state_dict()`") from err


@check.register(3, "the checkpoint")
def _checkpoint(ns: Namespace) -> str:
    path = Path(need(ns, "checkpoint_path", "where you saved the checkpoint"))
    Classifier, model, example = need(ns, "Classifier"), need(ns, "model"), need(ns, "example")
    expect(path.is_file(), f"there is no file {path.name}: save the checkpoint with `torch.save(checkpoint, path)`")
    checkpoint = _read(path)
    expect(isinstance(checkpoint, dict), f"the checkpoint is a {type(checkpoint).__name__}; save a dictionary")
    missing = [k for k in REQUIRED_KEYS if k not in checkpoint]
    expect(not missing, f"the checkpoint lacks {missing}: save every constructor argument and the `state_dict`; "
                        "the book saved only the input size and then read keys it never saved (E3.4)")
    rebuilt = Classifier(*(checkpoint[k] for k in REQUIRED_KEYS[:4]))
    rebuilt.load_state_dict(checkpoint["state_dict"])
    with torch.no_grad():
        expect(torch.equal(rebuilt.eval()(example), model(example)),
               "the network rebuilt from the checkpoint predicts something else than `model`: save its state_dict")
    return f"{path.name} holds {sorted(checkpoint)[:6]}: enough to rebuild the network"


def _raises_clearly(load_checkpoint, path: Path, case: str, hint: str, must_name: str | None = None) -> None:
    try:
        load_checkpoint(path)
    except _RAW_ERRORS as err:
        bare = not isinstance(err, KeyError) or str(err).strip("'\"") in REQUIRED_KEYS  # a lookup's KeyError('key')
        if bare:
            raise Wrong(f"{case} raised a bare {type(err).__name__} from inside PyTorch: {hint}") from err
        if must_name is not None:
            expect(must_name in str(err), f"{case} raised {type(err).__name__}, but its message does not name "
                                          f"`{must_name}`: say which key is missing")
        return
    except Exception as err:  # the learner's own clear error: good
        if must_name is not None:
            expect(must_name in str(err), f"{case} raised {type(err).__name__}, but its message does not name "
                                          f"`{must_name}`: say which key is missing")
        return
    raise Wrong(f"{case} loaded without an error: {hint}")


@check.register(4, "a safe loader with clear errors")
def _loader(ns: Namespace) -> str:
    load_checkpoint = need(ns, "load_checkpoint", "your function `load_checkpoint(path)`")
    path = Path(need(ns, "checkpoint_path"))
    model, example = need(ns, "model"), need(ns, "example")
    loaded = load_checkpoint(path)
    expect(isinstance(loaded, nn.Module), f"`load_checkpoint` returned a {type(loaded).__name__}, not the network")
    expect(not loaded.training, "`load_checkpoint` returns the network in training mode: end with `model.eval()`")
    with torch.no_grad():
        expect(torch.equal(loaded(example), model(example)), "the loaded network predicts something else than `model`")
    good = torch.load(path, map_location="cpu", weights_only=True)
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        torch.save({k: v for k, v in good.items() if k != "hidden_sizes"}, folder / "missing.pth")
        _raises_clearly(load_checkpoint, folder / "missing.pth", "a checkpoint without `hidden_sizes`",
                        "check the keys first and raise an error that names the missing one", "hidden_sizes")
        torch.save({**good, "hidden_sizes": [h + 1 for h in good["hidden_sizes"]]}, folder / "shapes.pth")
        _raises_clearly(load_checkpoint, folder / "shapes.pth", "a checkpoint whose weights do not fit its sizes",
                        "catch the RuntimeError of `load_state_dict` and say the weights do not fit")
        (folder / "text.pth").write_text("not a checkpoint")
        _raises_clearly(load_checkpoint, folder / "text.pth", "a file that is not a checkpoint",
                        "catch what `torch.load` raises and say the file is not a checkpoint")
        torch.save(model, folder / "whole.pth")
        try:
            load_checkpoint(folder / "whole.pth")
        except Exception:  # refused, as it should be
            pass
        else:
            raise Wrong("a whole pickled model loaded: read with `torch.load(path, weights_only=True)`, which refuses "
                        "files that could run code")
    return "the loader rebuilds the network in eval mode and explains missing keys, bad shapes and non-checkpoints"


@check.register(5, "the prediction for the book's example")
def _prediction(ns: Namespace) -> str:
    probabilities = need(ns, "probabilities", "the two class probabilities for `example`")
    predicted = need(ns, "predicted_class", "the class with the higher probability, as an int")
    model, example = need(ns, "model"), need(ns, "example")
    probabilities = torch.as_tensor(probabilities).detach().flatten().float().cpu()
    expect(probabilities.numel() == 2, f"`probabilities` has {probabilities.numel()} values; expected 2, one per class")
    expect(abs(float(probabilities.sum()) - 1) < 1e-4,
           f"the probabilities sum to {float(probabilities.sum()):.4f}: apply `exp()` to the log-probabilities")
    with torch.no_grad():
        reference = int(model(example).argmax(dim=1)[0])
    expect(int(predicted) == reference, f"`predicted_class` is {int(predicted)}, but the larger probability is "
                                        f"that of class {reference}")
    return f"predicted class {reference} ({'default' if reference == 1 else 'no default'})"


@check.register(6, "TorchScript after eval()")
def _traced(ns: Namespace) -> str:
    traced = need(ns, "traced", "the result of `torch.jit.trace`")
    path = Path(need(ns, "traced_path", "where you saved the trace"))
    model, example = need(ns, "model"), need(ns, "example")
    expect(isinstance(traced, torch.jit.ScriptModule), f"`traced` is a {type(traced).__name__}; trace with "
                                                       "`torch.jit.trace(model, example)`")
    x = _batch(example.shape[1])
    with torch.no_grad():
        answers = [traced(x) for _ in range(3)]
        expect(all(torch.equal(answers[0], a) for a in answers[1:]),
               "the trace gives a different answer on every call: it recorded dropout in training mode. Call "
               "`model.eval()` before `torch.jit.trace`")
        expect(torch.allclose(answers[0], model(x), atol=1e-6), "the trace computes something else than `model`")
    expect(not traced.training, "the trace was recorded in training mode (`traced.training` is True): with dropout "
                                "it would stay on in the saved model for good (E3.5). Call `model.eval()` before "
                                "`torch.jit.trace`")
    expect(path.is_file(), f"there is no file {path.name}: save the trace with `traced.save(str(traced_path))`")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.", category=FutureWarning)
        reloaded = torch.jit.load(str(path))
    with torch.no_grad():
        expect(torch.allclose(reloaded(x), model(x), atol=1e-6), f"{path.name} does not hold this trace")
    return f"the trace is deterministic, matches the model, and {path.name} loads back"


@check.register(7, "torch.export")
def _exported(ns: Namespace) -> str:
    exported = need(ns, "exported", "the result of `torch.export.export`")
    model, example = need(ns, "model"), need(ns, "example")
    expect(isinstance(exported, torch.export.ExportedProgram),
           f"`exported` is a {type(exported).__name__}; use `torch.export.export(model, (inputs,))`")
    for rows in (1, 7):
        x = _batch(example.shape[1], rows)
        try:
            with torch.no_grad():
                out = exported.module()(x)
        except Exception as err:
            raise Wrong(f"the exported program fails on a batch of {rows} ({type(err).__name__}): keep the batch size "
                        "free with `dynamic_shapes={'x': {0: torch.export.Dim('batch')}}`") from err
        with torch.no_grad():
            expect(torch.allclose(out, model(x), atol=1e-5), "the exported program computes something else than "
                                                             "`model`: export it after `model.eval()`")
    return "the exported program matches the model for batches of 1 and 7 clients"
