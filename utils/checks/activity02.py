"""Checks for Activity 2 (Chapter 2): preparing YearPredictionMSD by hand, before any helper.

The given cells load the first 50,000 songs into ``data`` (column 0 the year, 1-90 the features).
The learner's steps create ``qualitative`` and ``missing`` (step 1), ``outliers`` (step 2),
``X`` and ``y`` (step 3), the six parts ``X_train, X_val, X_test, y_train, y_val, y_test``
(step 4) and the standardised features ``X_train_s, X_val_s, X_test_s`` (step 5).

The checks accept pandas objects or NumPy arrays and any valid method: they compare what the
step produced with what it should contain (rows traced back to ``data``), not the code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from . import Checker, Namespace, Wrong, expect, need

check = Checker("Activity 2")

ROWS = 50_000
SIZES = {"train": 30_000, "val": 10_000, "test": 10_000}
PARTS = ("train", "val", "test")


def _data(ns: Namespace) -> pd.DataFrame:
    data = need(ns, "data", "run the loading cell first")
    expect(isinstance(data, pd.DataFrame), "`data` is no longer the table the loading cell read: run that cell again")
    return data


def _array(value: Any, name: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise Wrong(f"`{name}` cannot be read as numbers ({type(err).__name__})") from err
    return array


def _features(data: pd.DataFrame) -> np.ndarray:
    return data.drop(columns=[0]).to_numpy(dtype=np.float64)


@check.register(1, "list the qualitative columns and count the missing values")
def _qualitative_and_missing(ns: Namespace) -> str:
    qualitative = need(ns, "qualitative", "the list of columns that are not numbers")
    missing = need(ns, "missing", "the total number of missing values, one number")
    data = _data(ns)
    truth = data.select_dtypes(exclude="number").columns.tolist()
    if isinstance(qualitative, (pd.Index, pd.Series, np.ndarray)):
        qualitative = list(qualitative)
    expect(isinstance(qualitative, (list, tuple, set)),
           f"`qualitative` is a {type(qualitative).__name__}; make it the list of column names")
    numeric = sorted(set(qualitative) - set(truth), key=str)
    expect(not numeric, f"you listed numeric columns as qualitative ({numeric[:5]}): "
                        "keep only the columns whose type is not a number")
    expect(sorted(qualitative, key=str) == sorted(truth, key=str), f"these qualitative columns are missing: {truth}")
    expect(not isinstance(missing, (pd.Series, pd.DataFrame)),
           "`missing` is per column; add it up to one number for the whole table (.sum() once more)")
    total = int(data.isna().sum().sum())
    expect(int(missing) == total, f"`missing` is {missing} but the table has {total} missing values")
    return f"{len(truth)} qualitative columns and {total} missing values: nothing to encode or fill"


@check.register(2, "measure the outliers and decide what to do with them")
def _outliers(ns: Namespace) -> str:
    outliers = need(ns, "outliers", "the share of values beyond 3 standard deviations, for every column")
    data = _data(ns)
    shares = pd.Series(outliers) if isinstance(outliers, dict) else outliers
    expect(isinstance(shares, pd.Series), f"`outliers` is a {type(outliers).__name__}; make it a Series or a dict "
                                          "with one share per column")
    try:
        shares = shares.astype(float)
    except (TypeError, ValueError) as err:
        raise Wrong("`outliers` should hold numbers (shares between 0 and 1), not text") from err
    expect(len(data) == ROWS,
           f"`data` now has {len(data):,} rows instead of {ROWS:,}: these values are real songs, not recording "
           "errors, so keep every row (as the book does) and only measure the outliers")
    numeric = data.select_dtypes(include="number")
    z = (numeric - numeric.mean()) / numeric.std()
    truth = (z.abs() > 3).mean()
    expect(set(shares.index) == set(truth.index),
           f"`outliers` has {len(shares)} entries; give one per column of `data` ({len(truth)}, the year included)")
    shares = shares.reindex(truth.index)
    expect(shares.max() <= 1.0, f"the largest value is {shares.max():.0f}: those are counts; divide by the "
                                "number of rows to get shares")
    gap = (shares - truth).abs().max()
    if gap > 2e-3:
        two_sigma = (z.abs() > 2).mean()
        expect((shares - two_sigma).abs().max() > 2e-3,
               "these are the shares beyond 2 standard deviations; the rule is 3 (mean ± 3 std)")
        raise Wrong(f"your share for column {(shares - truth).abs().idxmax()} is "
                    f"{shares[(shares - truth).abs().idxmax()]:.4f}, but "
                    f"{truth[(shares - truth).abs().idxmax()]:.4f} of its values lie more than 3 standard "
                    "deviations from the column's mean")
    return (f"outlier shares from {truth.min():.3f} to {truth.max():.3f} per column, and all "
            f"{ROWS:,} songs kept")


@check.register(3, "separate the features from the target")
def _features_and_target(ns: Namespace) -> str:
    X = need(ns, "X", "the 90 feature columns (1-90)")
    y = need(ns, "y", "the target: column 0, the release year")
    data = _data(ns)
    if isinstance(y, pd.DataFrame) and y.shape[1] == 1:
        y = y.iloc[:, 0]
    X_values, y_values = _array(X, "X"), _array(y, "y").reshape(-1)
    expect(X_values.ndim == 2, f"`X` has shape {X_values.shape}; it should be a table (rows, columns)")
    years = data[0].to_numpy(dtype=np.float64)
    expect(X_values.shape != (len(data) - 1, 91), "`X` lost a row and kept column 0: `data.drop(0)` drops the "
                                                  "row labelled 0; drop the year column with `drop(columns=[0])`")
    expect(not (X_values.shape[1] == 91), "`X` still contains column 0, the year: the model would see the "
                                          "answer. Drop it from the features")
    expect(X_values.shape == (len(data), 90), f"`X` has shape {X_values.shape}; it should be ({len(data)}, 90)")
    expect(len(y_values) == len(data), f"`y` has {len(y_values)} values; it should have one per song ({len(data)})")
    expect(np.array_equal(y_values, years), "`y` is not the year column: the target is column 0")
    expect(np.allclose(X_values, _features(data)), "`X` is not columns 1-90 of `data` in their original order")
    return f"X {X_values.shape}, y ({len(y_values)},), years from {int(years.min())} to {int(years.max())}"


def _rows_of(part: Any, name: str, data: pd.DataFrame, lookup: dict[bytes, list[int]]) -> np.ndarray:
    """The positions in ``data`` of the rows of ``part`` (raises Wrong when a row is not a row of X)."""
    values = _array(part, name)
    expect(values.ndim == 2 and values.shape[1] == 90, f"`{name}` has shape {values.shape}; it should have 90 columns")
    if isinstance(part, pd.DataFrame) and part.index.isin(data.index).all():
        positions = data.index.get_indexer(part.index)
        if np.allclose(values, _features(data)[positions]):
            return positions
    positions = []
    for row in np.ascontiguousarray(values):
        found = lookup.get(row[:4].tobytes())
        if not found:
            raise Wrong(f"the rows of `{name}` are not rows of `X`: did you scale or change the features before "
                        "splitting? Split the raw rows first; step 5 scales them")
        positions.append(found[0])
    return np.asarray(positions)


@check.register(4, "split 60/20/20 without mixing rows up")
def _split(ns: Namespace) -> str:
    parts = {p: (need(ns, f"X_{p}", "the features of the part"), need(ns, f"y_{p}", "the years of the part"))
             for p in PARTS}
    data = _data(ns)
    sizes = {p: len(X) for p, (X, _) in parts.items()}
    for p, (X, yp) in parts.items():
        expect(len(yp) == len(X), f"`X_{p}` has {len(X):,} rows but `y_{p}` has {len(yp):,}: they must describe "
                                  "the same songs")
    expect(sizes == SIZES,
           f"the parts have {sizes['train']:,} / {sizes['val']:,} / {sizes['test']:,} rows; a 60/20/20 split of "
           f"{ROWS:,} songs gives 30,000 / 10,000 / 10,000 (after taking 20% for testing, the validation share "
           "of what is left is 0.25, not 0.2)")
    lookup: dict[bytes, list[int]] = {}
    for position, row in enumerate(np.ascontiguousarray(_features(data))):
        lookup.setdefault(row[:4].tobytes(), []).append(position)
    years = data[0].to_numpy(dtype=np.float64)
    positions = {}
    for p, (X, yp) in parts.items():
        rows = _rows_of(X, f"X_{p}", data, lookup)
        aligned = float(np.mean(_array(yp, f"y_{p}").reshape(-1) == years[rows]))
        expect(aligned > 0.999,
               f"only {aligned:.1%} of `y_{p}` are the years of the songs in the same rows of `X_{p}`: features "
               "and years were shuffled separately (the book's X.sample() / Y.sample() bug, erratum E2.4). "
               "Shuffle them together, e.g. with one train_test_split call on X and y")
        if isinstance(X, pd.DataFrame) and isinstance(yp, pd.Series):
            expect(X.index.equals(yp.index),
                   f"`X_{p}` and `y_{p}` have different row labels: features and years were shuffled separately "
                   "(the book's X.sample() / Y.sample() bug, erratum E2.4)")
        positions[p] = set(rows.tolist())
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = len(positions[a] & positions[b])
        expect(shared == 0, f"{shared:,} songs are in both the {a} and the {b} rows: each song must be in "
                            "exactly one part, or the error measured on it is not an error on unseen songs")
    blocks = all(max(rows) - min(rows) + 1 == len(rows) for rows in positions.values())
    expect(not blocks, "each part is one block of consecutive rows of the file: the split did not shuffle "
                       "(`shuffle=False`, or cutting by position). The file is not in random order, so shuffle "
                       "features and years together before cutting, e.g. train_test_split(..., random_state=0)")
    return "30,000 / 10,000 / 10,000 songs, no song in two parts, every year still next to its own features"


@check.register(5, "standardise with the training rows' statistics")
def _standardise(ns: Namespace) -> str:
    scaled = {p: need(ns, f"X_{p}_s", "the standardised features") for p in PARTS}
    raw = {p: _array(need(ns, f"X_{p}", "step 4"), f"X_{p}") for p in PARTS}
    got = {p: _array(scaled[p], f"X_{p}_s") for p in PARTS}
    for p in PARTS:
        expect(got[p].shape == raw[p].shape, f"`X_{p}_s` has shape {got[p].shape}; `X_{p}` has {raw[p].shape}")
    train = got["train"]
    expect(not (np.allclose(train.min(axis=0), 0, atol=1e-6) and np.allclose(train.max(axis=0), 1, atol=1e-6)),
           "that is min-max normalisation (0 to 1); this activity standardises: (x - mean) / std")
    mean = raw["train"].mean(axis=0)
    candidates = [raw["train"].std(axis=0, ddof=1), raw["train"].std(axis=0, ddof=0)]
    if not any(np.allclose(train, (raw["train"] - mean) / std, atol=1e-4) for std in candidates):
        everything = np.concatenate([raw[p] for p in PARTS])
        leaky = (raw["train"] - everything.mean(axis=0)) / everything.std(axis=0, ddof=1)
        expect(not np.allclose(train, leaky, atol=1e-3),
               "the mean and standard deviation come from all 50,000 songs, test songs included (the book's leak, "
               "erratum E2.2): compute them on the training rows only")
        spread = train.std(axis=0)
        expect(not (np.allclose(train.mean(axis=0), 0, atol=1e-6) and not np.allclose(spread, 1, atol=1e-2)),
               f"the training columns have mean 0 but standard deviations from {spread.min():.3f} to "
               f"{spread.max():.3f}: divide by the standard deviation (`std()`), not by the variance or another spread")
        raise Wrong("the training features are not (x - mean) / std with the training rows' mean and standard "
                    f"deviation (their column means range from {train.mean(axis=0).min():.3f} to "
                    f"{train.mean(axis=0).max():.3f}; they should all be 0)")
    for p in ("val", "test"):
        if any(np.allclose(got[p], (raw[p] - mean) / std, atol=1e-4) for std in candidates):
            continue
        expect(not np.allclose(got[p].mean(axis=0), 0, atol=1e-6),
               f"the {p} rows were scaled with their own mean and standard deviation: apply the training rows' "
               "numbers to them, as a model in use would have to")
        raise Wrong(f"`X_{p}_s` is not (X_{p} - mean) / std with the training rows' mean and standard deviation")
    return ("training features have mean 0 and standard deviation 1; validation and test rows use the same "
            "training statistics")
