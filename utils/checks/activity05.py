"""Checks for Activity 5 (Chapter 3): experiments in stages, eval mode, choosing on validation, the leak, saving.

Steps: 1 the experiments (``histories``, ``snapshots``), 2 the results table, 3 dropout on vs eval mode,
4 the chosen model tested once, 5 the leaky pipeline, 6 the saved model for Activity 6.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

from ..ch03_handoffs import activity5_model_path, activity5_stamp
from ..credit_data import CreditSplits, features_tensor
from ..credit_model import MLPClassifier, classification_figures
from ..handoff import HandoffError, load
from . import Checker, Namespace, Wrong, expect, need

check = Checker("Activity 5")


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k].cpu(), b[k].cpu()) for k in a)


@check.register(1, "the experiments")
def _experiments(ns: Namespace) -> str:
    histories = need(ns, "histories", "one History per experiment")
    snapshots = need(ns, "snapshots", "a copy of the weights per (experiment, epochs)")
    experiments, stages = need(ns, "experiments"), need(ns, "stages")
    expect(set(histories) == set(experiments),
           f"`histories` has the keys {sorted(histories)}; expected one per experiment: {sorted(experiments)}")
    for name, history in histories.items():
        expect(len(history) != sum(stages) or len(stages) == 1,
               f"the history of {name!r} has {len(history)} epochs, the sum of the stages: each stage trained "
               f"`stage_end` epochs; train `stage_end - trained`, the epochs that take the model to the stage's end")
        expect(len(history) == stages[-1],
               f"the history of {name!r} has {len(history)} epochs, but the last stage ends at {stages[-1]}: pass "
               "`history=history` to `fit` and keep what it returns, so each stage continues the record")
    wanted = {(name, stage) for name in experiments for stage in stages}
    expect(set(snapshots) == wanted, f"`snapshots` has the keys {sorted(snapshots)[:3]}...; keep one per experiment "
                                     f"and stage: `snapshots[(name, trained)]` with `trained` in {stages}")
    for name in experiments:
        first, last = snapshots[(name, stages[0])], snapshots[(name, stages[-1])]
        shared = any(first[k].data_ptr() == last[k].data_ptr() for k in first if k in last)
        expect(not shared, f"the weights saved for {name!r} after {stages[0]} and {stages[-1]} epochs are the same "
                           "tensors: `model.state_dict()` holds references that keep changing, so store "
                           "`copy.deepcopy(...)` of it")
        expect(not _same_weights(first, last),
               f"the weights saved for {name!r} after {stages[0]} and {stages[-1]} epochs are identical: the model "
               "did not train between the stages. Is the optimiser over this experiment's model (create it inside "
               "the loop, after the model)?")
    for name in histories:
        inputs = next(iter(snapshots[(name, stages[-1])].values())).shape[-1]  # the first layer's weight: (out, in)
        model = MLPClassifier(inputs, **experiments[name])
        try:
            model.load_state_dict(snapshots[(name, stages[-1])])
        except (RuntimeError, TypeError) as err:
            raise Wrong(f"the last snapshot of {name!r} does not fit `MLPClassifier(splits.n_features, "
                        f"**experiments[{name!r}])`: keep each experiment's own model's weights") from err
    return f"{len(experiments)} experiments, {len(snapshots)} snapshots, histories of {stages[-1]} epochs"


@check.register(2, "the results table")
def _table(ns: Namespace) -> str:
    table = need(ns, "table", "a DataFrame with one row per experiment and stage")
    experiments, stages = need(ns, "experiments"), need(ns, "stages")
    expect(isinstance(table, pd.DataFrame), f"`table` is a {type(table).__name__}; make it a `pd.DataFrame(rows)`")
    expect(len(table) == len(experiments) * len(stages),
           f"`table` has {len(table)} rows, expected {len(experiments) * len(stages)} (each experiment at each stage)")
    for column in ("experiment", "epochs", "val balanced acc"):
        expect(column in table.columns, f"`table` needs a column {column!r} (step 4 chooses the model with it)")
    return f"{len(table)} rows; best validation balanced accuracy {table['val balanced acc'].max():.3f}"


@check.register(3, "dropout on vs. eval mode")
def _eval_mode(ns: Namespace) -> str:
    on = need(ns, "dropout_on", "three validation losses measured in train() mode")
    off = need(ns, "dropout_off", "three validation losses measured in eval() mode")
    expect(len(on) == 3 and len(off) == 3, f"measure three times each; got {len(on)} and {len(off)}")
    expect(len({round(float(v), 7) for v in off}) == 1,
           f"the eval-mode losses differ ({[round(float(v), 4) for v in off]}): call `model.eval()` before "
           "measuring, so dropout is off")
    expect(len({round(float(v), 7) for v in on}) > 1,
           "the three dropout-on losses agree: measure the network with dropout (experiment C) after "
           "`model.train()`, under `torch.no_grad()`")
    experiments, stages, snapshots, splits = (ns.get(k) for k in ("experiments", "stages", "snapshots", "splits"))
    name = next((n for n, config in (experiments or {}).items() if config.get("dropout", 0) > 0), None)
    if name is not None and splits is not None and stages and (name, stages[-1]) in (snapshots or {}):
        model = MLPClassifier(splits.n_features, **experiments[name])
        model.load_state_dict(snapshots[(name, stages[-1])])
        with torch.no_grad():
            reference = F.nll_loss(model.eval()(features_tensor(splits.X_val)),
                                   torch.as_tensor(splits.y_val.to_numpy(copy=True))).item()
        expect(abs(float(off[0]) - reference) < 1e-4,
               f"the eval-mode loss is {float(off[0]):.4f}, but experiment C's final weights score {reference:.4f} "
               "on the whole validation part: measure that network (its snapshot after the last stage) on "
               "`splits.X_val`, `splits.y_val`")
    return "dropout makes the validation loss random; eval mode makes it repeatable"


@check.register(4, "choosing on validation, testing once")
def _chosen(ns: Namespace) -> str:
    chosen = need(ns, "chosen", "the model with the highest validation balanced accuracy, weights restored")
    test = need(ns, "test", "classification_figures of `chosen` on the test part")
    table, splits, device = need(ns, "table"), need(ns, "splits"), need(ns, "device")
    best = float(table["val balanced acc"].max())
    val = classification_figures(chosen, splits.X_val, splits.y_val, device)["balanced_accuracy"]
    expect(abs(val - best) < 1e-4,
           f"`chosen` scores {val} on validation, but the best row of `table` has {best}: restore that row's weights "
           "with `chosen.load_state_dict(snapshots[(best['experiment'], best['epochs'])])`")
    reference = classification_figures(chosen, splits.X_test, splits.y_test, device)
    expect(isinstance(test, dict) and abs(float(test.get("balanced_accuracy", -1)) - reference["balanced_accuracy"])
           < 1e-4, "`test` is not `classification_figures(chosen, splits.X_test, splits.y_test, device)`")
    return f"test balanced accuracy {reference['balanced_accuracy']:.3f} (accuracy {reference['accuracy']:.3f}, " \
           f"always 'no': {reference['majority_accuracy']:.3f})"


@check.register(5, "the leaky pipeline")
def _leaky(ns: Namespace) -> str:
    leaky = need(ns, "leaky", "the book's splits, `leaky_book_splits(...)`")
    seen = need(ns, "seen", "which leaky test rows belong to clients in the leaky training rows")
    need(ns, "leaky_table", "the leaky test accuracy per stage and group")
    expect(isinstance(leaky, CreditSplits), f"`leaky` is a {type(leaky).__name__}; build it with `leaky_book_splits`")
    reference = leaky.X_test.index.isin(leaky.X_train.index)
    expect(reference.any(), "no leaky test client appears in the leaky training rows: build `leaky` with "
                            "`leaky_book_splits`, which over-samples before splitting")
    expect(len(seen) == len(reference) and bool((pd.Series(seen).to_numpy() == reference).all()),
           "`seen` should mark the leaky test rows whose client is in the leaky training rows: "
           "`leaky.X_test.index.isin(leaky.X_train.index)`")
    return f"{reference.mean():.1%} of the leaky test rows are clients the network trained on"


@check.register(6, "saving the chosen model")
def _saved(ns: Namespace) -> str:
    path = need(ns, "model_path", "the path `save_activity5_model(...)` returns")
    chosen, splits = need(ns, "chosen"), need(ns, "splits")
    expect(Path(path) == activity5_model_path(),
           f"`model_path` is {Path(path).name}, but Activity 6 reads {activity5_model_path().name}: "
           "save with `save_activity5_model`")
    try:
        record = load(Path(path), activity5_stamp())
        model = MLPClassifier(**record["config"])
        model.load_state_dict(record["state_dict"])
    except (HandoffError, KeyError, RuntimeError, TypeError) as err:
        raise Wrong(f"Activity 6 could not rebuild the model from the saved file ({err})") from err
    x = torch.as_tensor(splits.X_val.to_numpy(copy=True), dtype=torch.float32)
    device = next(chosen.parameters()).device
    was_training = chosen.training
    chosen.eval()
    try:
        with torch.no_grad():
            same = torch.allclose(model.eval()(x), chosen(x.to(device)).cpu(), atol=1e-5)
    finally:
        chosen.train(was_training)
    expect(same, "the saved model does not reproduce `chosen`'s predictions on the validation set: save `chosen`")
    return f"the saved model reproduces the chosen model's predictions on {len(x)} validation clients"
