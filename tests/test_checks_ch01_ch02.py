"""The checks of Activities 1, 2 and 3: right answers pass, typical wrong answers get their specific message.

Each test builds the notebook's namespace as a dict (the given cells' variables plus the learner's
answer) and calls ``check.run(step, namespace)``.
"""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from utils.checks import NOT_DONE, PASSED, WRONG
from utils.checks.activity01 import check as check1
from utils.checks.activity02 import check as check2
from utils.checks.activity03 import check as check3
from utils.standins import synthetic_year_prediction


def _verdict(checker, step, ns, status, *fragments):
    result = checker.run(step, ns)
    assert result.status == status, result.message
    for fragment in fragments:
        assert fragment in result.message, result.message
    return result


# --------------------------------------------------------------------------- Activity 1

def _a1_given():
    torch.manual_seed(0)
    return {"x": torch.randn(100, 5), "y": torch.randint(0, 2, (100, 1)).float()}


def _a1_solved():
    ns = _a1_given()
    ns["model"] = nn.Sequential(nn.Linear(5, 1), nn.Sigmoid())
    ns["loss_function"] = nn.MSELoss()
    ns["optimizer"] = torch.optim.Adam(ns["model"].parameters(), lr=0.01)
    ns["losses"] = []
    for _ in range(100):
        loss = ns["loss_function"](ns["model"](ns["x"]), ns["y"])
        ns["losses"].append(loss.item())
        ns["optimizer"].zero_grad()
        loss.backward()
        ns["optimizer"].step()
    state = ns["model"].state_dict()
    ns["weights"], ns["bias"] = state["0.weight"].flatten().tolist(), state["0.bias"].item()
    return ns


def test_activity1_untouched_is_not_done_and_solved_passes():
    given, solved = _a1_given(), _a1_solved()
    for step in check1.steps:
        _verdict(check1, step, given, NOT_DONE)
        _verdict(check1, step, solved, PASSED)
    assert check1.steps == [1, 2, 3, 4]


@pytest.mark.parametrize("model, fragment", [
    (nn.Linear(5, 1), "nn.Sigmoid()"),
    (nn.Sequential(nn.Linear(5, 3), nn.Sigmoid()), "should be (100, 1)"),
    (nn.Sequential(nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 1), nn.Sigmoid()), "29 parameters; the book's has 6"),
    (nn.Sequential(nn.Linear(4, 1), nn.Sigmoid()), "needs 5 inputs"),
])
def test_activity1_step1_wrong_models(model, fragment):
    _verdict(check1, 1, {**_a1_given(), "model": model}, WRONG, fragment)


def test_activity1_step2_optimiser_of_another_model_and_wrong_lr():
    ns = _a1_solved()
    other = nn.Linear(5, 1)
    _verdict(check1, 2, {**ns, "optimizer": torch.optim.Adam(other.parameters(), lr=0.01)}, WRONG,
             "does not hold this model's parameters")
    _verdict(check1, 2, {**ns, "optimizer": torch.optim.Adam(ns["model"].parameters(), lr=0.1)}, WRONG, "0.01")
    _verdict(check1, 2, {**ns, "loss_function": nn.L1Loss()}, WRONG, "nn.MSELoss()")
    _verdict(check1, 2, {**ns, "optimizer": torch.optim.SGD(ns["model"].parameters(), lr=0.01)}, WRONG, "Adam")


def test_activity1_step3_typical_mistakes():
    ns = _a1_solved()
    _verdict(check1, 3, {**ns, "losses": [torch.tensor(v) for v in ns["losses"]]}, WRONG, "loss.item()")
    _verdict(check1, 3, {**ns, "losses": ns["losses"][:10]}, WRONG, "has 10 values")
    _verdict(check1, 3, {**ns, "losses": [0.3] * 100}, WRONG, "is not what the untrained model scores")
    ns_no_zero = _a1_given()
    ns_no_zero["model"] = nn.Sequential(nn.Linear(5, 1), nn.Sigmoid())
    ns_no_zero["loss_function"] = nn.MSELoss()
    optimizer, ns_no_zero["losses"] = torch.optim.Adam(ns_no_zero["model"].parameters(), lr=0.01), []
    for _ in range(100):  # the loss still falls, but not as in the reference run
        loss = ns_no_zero["loss_function"](ns_no_zero["model"](ns_no_zero["x"]), ns_no_zero["y"])
        ns_no_zero["losses"].append(loss.item())
        loss.backward()
        optimizer.step()
    assert ns_no_zero["losses"][-1] < ns_no_zero["losses"][0]
    _verdict(check1, 3, {**ns_no_zero, "optimizer": optimizer}, WRONG, "optimizer.zero_grad()")
    fresh = nn.Sequential(nn.Linear(5, 1), nn.Sigmoid())
    with torch.no_grad():
        fresh[0].weight.fill_(3.0)
    _verdict(check1, 3, {**ns, "model": fresh}, WRONG, "redefine it after the loop")


def test_activity1_step4_parameters_read_before_training_or_wrong_shape():
    ns = _a1_solved()
    _verdict(check1, 4, {**ns, "weights": [w + 0.5 for w in ns["weights"]]}, WRONG, "after training")
    _verdict(check1, 4, {**ns, "weights": ns["weights"][:3]}, WRONG, "5 weights")
    _verdict(check1, 4, {**ns, "bias": ns["bias"] + 1}, WRONG, "'0.bias'")
    _verdict(check1, 4, {**ns, "weights": ns["model"].state_dict()["0.weight"]}, PASSED)


# --------------------------------------------------------------------------- Activity 2

@pytest.fixture(scope="module")
def a2_data():
    return synthetic_year_prediction(50_000)


def _a2_solved(data):
    ns = {"data": data}
    ns["qualitative"] = data.select_dtypes(exclude="number").columns.tolist()
    ns["missing"] = int(data.isna().sum().sum())
    ns["outliers"] = (((data - data.mean()) / data.std()).abs() > 3).mean()
    ns["X"], ns["y"] = data.drop(columns=[0]), data[0]
    X_rest, ns["X_test"], y_rest, ns["y_test"] = train_test_split(ns["X"], ns["y"], test_size=0.2, random_state=0)
    ns["X_train"], ns["X_val"], ns["y_train"], ns["y_val"] = train_test_split(X_rest, y_rest, test_size=0.25,
                                                                              random_state=0)
    mean, std = ns["X_train"].mean(), ns["X_train"].std()
    for part in ("train", "val", "test"):
        ns[f"X_{part}_s"] = (ns[f"X_{part}"] - mean) / std
    return ns


def test_activity2_untouched_is_not_done_and_solved_passes(a2_data):
    solved = _a2_solved(a2_data)
    for step in check2.steps:
        _verdict(check2, step, {"data": a2_data}, NOT_DONE)
        _verdict(check2, step, solved, PASSED)
    numpy_answer = {**solved, **{k: solved[k].to_numpy() for k in
                                 ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test")}}
    _verdict(check2, 4, numpy_answer, PASSED)  # arrays instead of tables are just as right


def test_activity2_step1_and_step2_mistakes(a2_data):
    ns = _a2_solved(a2_data)
    _verdict(check2, 1, {**ns, "missing": a2_data.isna().sum()}, WRONG, "per column")
    _verdict(check2, 1, {**ns, "qualitative": [0, 1]}, WRONG, "numeric columns")
    counts = ns["outliers"] * len(a2_data)
    _verdict(check2, 2, {**ns, "outliers": counts}, WRONG, "counts")
    two_sigma = (((a2_data - a2_data.mean()) / a2_data.std()).abs() > 2).mean()
    _verdict(check2, 2, {**ns, "outliers": two_sigma}, WRONG, "beyond 2 standard deviations")
    z = (a2_data - a2_data.mean()) / a2_data.std()
    _verdict(check2, 2, {**ns, "data": a2_data[(z.abs() <= 3).all(axis=1)]}, WRONG, "keep every row")


def test_activity2_step3_year_left_among_the_features(a2_data):
    ns = _a2_solved(a2_data)
    _verdict(check2, 3, {**ns, "X": a2_data}, WRONG, "still contains column 0")
    _verdict(check2, 3, {**ns, "y": a2_data[1]}, WRONG, "column 0")


def test_activity2_step4_the_books_independent_shuffle_is_caught(a2_data):
    ns = _a2_solved(a2_data)
    X_shuffle, Y_shuffle = ns["X"].sample(frac=1, random_state=1), ns["y"].sample(frac=1, random_state=2)
    X_rest, X_test, y_rest, y_test = train_test_split(X_shuffle, Y_shuffle, test_size=0.2, random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=0.25, random_state=0)
    book = {**ns, "X_train": X_train, "X_val": X_val, "X_test": X_test,
            "y_train": y_train, "y_val": y_val, "y_test": y_test}
    _verdict(check2, 4, book, WRONG, "shuffled separately", "E2.4")
    names = ("X_train", "X_val", "X_test", "y_train", "y_val", "y_test")
    as_arrays = {**book, **{k: book[k].to_numpy() for k in names}}
    _verdict(check2, 4, as_arrays, WRONG, "shuffled separately")


def test_activity2_step4_overlap_sizes_and_scaled_rows(a2_data):
    ns = _a2_solved(a2_data)
    X, y = ns["X"], ns["y"]
    leaky = {**ns, "X_val": X.iloc[:10_000], "y_val": y.iloc[:10_000],
             "X_test": X.iloc[5_000:15_000], "y_test": y.iloc[5_000:15_000]}
    _verdict(check2, 4, leaky, WRONG, "songs are in both")
    X_rest, X_test, y_rest, y_test = train_test_split(X, y, test_size=0.2, random_state=0)
    X_train, X_val, y_train, y_val = train_test_split(X_rest, y_rest, test_size=0.2, random_state=0)
    _verdict(check2, 4, {**ns, "X_train": X_train, "X_val": X_val, "y_train": y_train, "y_val": y_val}, WRONG,
             "32,000 / 8,000 / 10,000", "0.25")
    scaled_first = (X - X.mean()) / X.std()
    _verdict(check2, 4, {**ns, "X_train": scaled_first.loc[ns["X_train"].index]}, WRONG, "before splitting")


def test_activity2_step5_leaks_and_wrong_scalers(a2_data):
    ns = _a2_solved(a2_data)
    X, parts = ns["X"], ("train", "val", "test")
    everything = {f"X_{p}_s": (ns[f"X_{p}"] - X.mean()) / X.std() for p in parts}
    _verdict(check2, 5, {**ns, **everything}, WRONG, "all 50,000 songs", "E2.2")
    own = {f"X_{p}_s": (ns[f"X_{p}"] - ns[f"X_{p}"].mean()) / ns[f"X_{p}"].std() for p in parts}
    _verdict(check2, 5, {**ns, **own}, WRONG, "their own mean")
    low, high = ns["X_train"].min(), ns["X_train"].max()
    minmax = {f"X_{p}_s": (ns[f"X_{p}"] - low) / (high - low) for p in parts}
    _verdict(check2, 5, {**ns, **minmax}, WRONG, "min-max")
    population = ns["X_train"].std(ddof=0)
    ddof0 = {f"X_{p}_s": (ns[f"X_{p}"] - ns["X_train"].mean()) / population for p in parts}
    _verdict(check2, 5, {**ns, **ddof0}, PASSED)  # either standard deviation is right


# --------------------------------------------------------------------------- Activity 3

@pytest.fixture(scope="module")
def a3_given():
    frame = synthetic_year_prediction(1500, seed=3)
    X = torch.tensor(frame.drop(columns=[0]).to_numpy(), dtype=torch.float32)
    X = (X - X[:900].mean(0)) / X[:900].std(0)
    years = torch.tensor(frame[0].to_numpy(), dtype=torch.float32).reshape(-1, 1)
    return {"x_fit": X[:900], "years_fit": years[:900], "x_check": X[900:1200], "years_check": years[900:1200],
            "x_test": X[1200:], "years_test": years[1200:]}


def _book_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(90, 10), nn.ReLU(), nn.Linear(10, 7), nn.ReLU(), nn.Linear(7, 5), nn.ReLU(),
                         nn.Linear(5, 1))


def _a3_solved(given):
    ns = dict(given)
    years_fit, years_test = ns["years_fit"], ns["years_test"]
    ns["mean_year"] = years_fit.mean().item()
    ns["baseline_mae"] = (years_test - ns["mean_year"]).abs().mean().item()
    mean, std = years_fit.mean(), years_fit.std()
    ns["to_z"], ns["to_years"] = (lambda t: (t - mean) / std), (lambda z: z * std + mean)
    ns["model"] = _book_model()
    ns["loss_function"] = nn.MSELoss()
    ns["optimizer"] = torch.optim.Adam(ns["model"].parameters(), lr=0.01)
    ns["losses"] = []
    for _ in range(100):
        loss = ns["loss_function"](ns["model"](ns["x_fit"]), ns["to_z"](years_fit))
        ns["optimizer"].zero_grad()
        loss.backward()
        ns["optimizer"].step()
        ns["losses"].append(loss.item())
    ns["model"].eval()
    with torch.no_grad():
        ns["predicted_years"] = ns["to_years"](ns["model"](ns["x_test"]))
    ns["mae"] = (ns["predicted_years"] - years_test).abs().mean().item()
    return ns


@pytest.fixture(scope="module")
def a3_solved(a3_given):
    return _a3_solved(a3_given)


def test_activity3_untouched_is_not_done_and_solved_passes(a3_given, a3_solved):
    for step in check3.steps:
        _verdict(check3, step, a3_given, NOT_DONE)
        _verdict(check3, step, a3_solved, PASSED)
    assert check3.steps == [1, 2, 3, 4, 5, 6]


def test_activity3_step1_test_mean_rmse_and_training_mae(a3_solved):
    ns = a3_solved
    test_mean = ns["years_test"].mean().item()
    _verdict(check3, 1, {**ns, "mean_year": test_mean}, WRONG, "mean of the test songs")
    rmse = (ns["years_test"] - ns["mean_year"]).pow(2).mean().sqrt().item()
    _verdict(check3, 1, {**ns, "baseline_mae": rmse}, WRONG, "root mean squared error")
    train_mae = (ns["years_fit"] - ns["mean_year"]).abs().mean().item()
    _verdict(check3, 1, {**ns, "baseline_mae": train_mae}, WRONG, "measured on the training songs")


def test_activity3_step2_scaler_from_the_test_songs_or_not_inverted(a3_solved):
    ns = a3_solved
    m, s = ns["years_test"].mean(), ns["years_test"].std()
    _verdict(check3, 2, {**ns, "to_z": lambda t: (t - m) / s}, WRONG, "the test songs' statistics")
    std = ns["years_fit"].std()
    _verdict(check3, 2, {**ns, "to_years": lambda z: z * std}, WRONG, "years = z * std + mean")


def test_activity3_step3_wrong_architectures(a3_solved):
    small = nn.Sequential(nn.Linear(90, 5), nn.ReLU(), nn.Linear(5, 1))
    _verdict(check3, 3, {**a3_solved, "model": small}, WRONG, "461 parameters", "1,033", "10, 7 and 5")
    linear = nn.Sequential(nn.Linear(90, 10), nn.Linear(10, 7), nn.Linear(7, 5), nn.Linear(5, 1))
    _verdict(check3, 3, {**a3_solved, "model": linear}, WRONG, "nn.ReLU()")
    flat = nn.Sequential(*_book_model(), nn.Flatten(0))
    _verdict(check3, 3, {**a3_solved, "model": flat}, WRONG, "(4, 1)")


def test_activity3_step4_and_step5_mistakes(a3_solved):
    ns = a3_solved
    _verdict(check3, 4, {**ns, "optimizer": torch.optim.Adam(_book_model().parameters(), lr=0.01)}, WRONG,
             "another network")
    raw = [4_000_000.0 - 1000 * i for i in range(100)]
    _verdict(check3, 5, {**ns, "losses": raw}, WRONG, "not on the years themselves", "E2.7")
    _verdict(check3, 5, {**ns, "losses": ns["losses"][:50]}, WRONG, "50 values")
    _verdict(check3, 5, {**ns, "model": _book_model()}, WRONG, "the network you trained")


def test_activity3_step6_unconverted_and_broadcast(a3_solved):
    ns = a3_solved
    with torch.no_grad():
        z = ns["model"](ns["x_test"])
    _verdict(check3, 6, {**ns, "predicted_years": z}, WRONG, "standardised years", "to_years")
    broadcast = (ns["predicted_years"].reshape(-1) - ns["years_test"]).abs().mean().item()
    _verdict(check3, 6, {**ns, "mae": broadcast}, WRONG, "(N, N)", "E2.5")
    _verdict(check3, 6, {**ns, "baseline_mae": 0.01}, WRONG, "does not beat")


def test_checks_never_raise_on_garbage():
    garbage = {"model": "not a model", "losses": "abc", "x": torch.zeros(3), "y": None, "data": pd.DataFrame(),
               "X": 3, "outliers": "x", "qualitative": 1, "missing": "many", "to_z": 1, "to_years": 2}
    for checker in (check1, check2, check3):
        for step in checker.steps:
            assert checker.run(step, garbage).status in (NOT_DONE, WRONG)
