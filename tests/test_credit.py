"""Chapter 3's data preparation (utils.credit_data) and model and metrics (utils.credit_model)."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from utils.credit_data import (
    TARGET,
    CreditSplits,
    MinMaxScaler,
    clean_credit_data,
    features_and_target,
    honest_splits,
    leaky_book_splits,
    oversample_minority,
    shared_clients,
)
from utils.credit_model import MLPClassifier, balanced_accuracy, classification_figures, train_classifier


def raw_table(n: int = 500, default_share: float = 0.2, seed: int = 0) -> pd.DataFrame:
    """A small table shaped like the raw credit data: ID, SEX, three features and the target."""
    rng = np.random.default_rng(seed)
    target = (rng.random(n) < default_share).astype(int)
    return pd.DataFrame({
        "ID": np.arange(1, n + 1),
        "LIMIT_BAL": rng.integers(10, 100, n) * 1000,
        "SEX": rng.integers(1, 3, n),
        "PAY_0": target * 2 + rng.integers(-1, 1, n),  # informative: defaulters pay late
        "AGE": rng.integers(21, 70, n),
        TARGET: target,
    })


@pytest.fixture(autouse=True)
def one_cpu_thread():
    """These networks are tiny: one thread is fastest, and far faster on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def data() -> pd.DataFrame:
    return clean_credit_data(raw_table())


def test_clean_drops_id_and_sex_and_refuses_other_tables():
    cleaned = clean_credit_data(raw_table())
    assert list(cleaned.columns) == ["LIMIT_BAL", "PAY_0", "AGE", TARGET]
    with pytest.raises(ValueError, match="SEX"):
        clean_credit_data(raw_table().drop(columns="SEX"))


def test_oversampling_balances_with_copies_of_minority_rows(data):
    X, y = features_and_target(data)
    X_over, y_over = oversample_minority(X, y, seed=3)
    majority = int((y == 0).sum())
    assert y_over.value_counts().to_dict() == {0: majority, 1: majority}
    # majority rows first and untouched, then drawn minority rows that are real rows of X
    assert X_over.iloc[:majority].equals(X[y == 0])
    drawn = X_over.iloc[majority:]
    assert set(drawn.index) <= set(X.index[y == 1])
    assert drawn.equals(X.loc[drawn.index])
    assert drawn.index.duplicated().any(), "drawing with replacement repeats clients"
    again = oversample_minority(X, y, seed=3)
    assert again[0].equals(X_over) and again[1].equals(y_over)


def test_oversampling_refuses_misaligned_inputs(data):
    X, y = features_and_target(data)
    with pytest.raises(ValueError, match="rows"):
        oversample_minority(X, y.iloc[:-1])
    with pytest.raises(ValueError, match="index"):
        oversample_minority(X, y.reset_index(drop=True).set_axis(range(1, len(y) + 1)))


def test_min_max_scaler_uses_fitted_range_and_survives_a_round_trip():
    train = pd.DataFrame({"a": [0.0, 5.0, 10.0], "flat": [3.0, 3.0, 3.0]})
    scaler = MinMaxScaler.fit(train)
    scaled = scaler.transform(train)
    assert scaled["a"].tolist() == [0.0, 0.5, 1.0]
    assert scaled["flat"].tolist() == [0.0, 0.0, 0.0]  # constant column: no division by zero
    other = scaler.transform(pd.DataFrame({"a": [20.0], "flat": [4.0]}))
    assert other["a"].tolist() == [2.0]  # outside the training range stays outside [0, 1]
    restored = MinMaxScaler.from_dict(json.loads(json.dumps(scaler.to_dict())))
    assert restored.transform(train).equals(scaled)
    with pytest.raises(ValueError, match="columns"):
        scaler.transform(pd.DataFrame({"b": [1.0], "a": [1.0]}))
    with pytest.raises(ValueError, match="empty"):
        MinMaxScaler.fit(train.iloc[:0])


def test_honest_splits_keep_clients_apart_and_real_class_shares(data):
    splits = honest_splits(data, seed=0)
    assert shared_clients(splits)["test_rows_seen_in_training"] == 0
    assert shared_clients(splits)["validation_rows_seen_in_training"] == 0
    share = data[TARGET].mean()
    assert splits.y_val.mean() == pytest.approx(share, abs=0.01)
    assert splits.y_test.mean() == pytest.approx(share, abs=0.01)
    assert splits.y_train.mean() == 0.5
    assert len(set(splits.X_val.index) | set(splits.X_test.index) | set(splits.X_train.index)) == len(data)
    # the scaler saw training rows only: training spans exactly [0, 1]
    assert splits.X_train.min().min() == 0.0 and splits.X_train.max().max() == 1.0
    raw_train = data.loc[splits.X_train.index.unique()].drop(columns=TARGET)
    assert splits.scaler.minimum.equals(raw_train.min().astype(float))


def test_leaky_splits_share_clients_between_training_and_test(data):
    splits = leaky_book_splits(data, seed=0)
    majority = int((data[TARGET] == 0).sum())
    assert sum(shape[0] for shape in splits.shapes().values()) == 2 * majority
    leaks = shared_clients(splits)
    assert leaks["test_rows_seen_in_training"] > 0
    assert 0 < leaks["test_share_seen_in_training"] < 1


def test_splits_round_trip_through_a_payload_of_plain_tensors(data):
    splits = honest_splits(data)
    back = CreditSplits.from_payload(splits.to_payload())
    for part in ("train", "val", "test"):
        pd.testing.assert_frame_equal(getattr(back, f"X_{part}"), getattr(splits, f"X_{part}"), check_names=False)
        assert getattr(back, f"y_{part}").tolist() == getattr(splits, f"y_{part}").tolist()
        assert list(getattr(back, f"X_{part}").index) == list(getattr(splits, f"X_{part}").index)
    assert back.scaler.to_dict() == splits.scaler.to_dict()


def test_a_payload_that_does_not_fit_is_refused_with_a_value_error(data):
    payload = honest_splits(data).to_payload()
    payload["test"]["y"] = payload["test"]["y"][:-1]
    with pytest.raises(ValueError, match="test part"):
        CreditSplits.from_payload(payload)
    with pytest.raises(ValueError, match="not a saved set of splits"):
        CreditSplits.from_payload({"columns": ["a"]})


def test_loaders_give_long_labels_and_whole_validation_batches(data):
    splits = honest_splits(data)
    train, val, test = splits.loaders(batch_size=64)
    inputs, labels = next(iter(train))
    assert inputs.shape == (64, splits.n_features) and inputs.dtype == torch.float32
    assert labels.dtype == torch.long
    assert len(list(val)) == 1 and len(list(test)) == 1


def test_balanced_accuracy_does_not_reward_the_majority_answer():
    target = torch.tensor([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    always_no = torch.tensor([[1.0, 0.0]] * 10)
    assert float(balanced_accuracy(always_no, target)) == 0.5
    perfect = torch.nn.functional.one_hot(target, 2).float()
    assert float(balanced_accuracy(perfect, target)) == 1.0
    one_of_two_found = perfect.clone()
    one_of_two_found[9] = torch.tensor([1.0, 0.0])
    assert float(balanced_accuracy(one_of_two_found, target)) == pytest.approx(0.75)


class FirstFeatureAboveHalf(nn.Module):
    """Predicts class 1 when the first feature exceeds 0.5 (log-probabilities)."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Linear(1, 1)

    def forward(self, x):
        positive = (x[:, 0] > 0.5).float()
        return torch.log(torch.stack([1 - positive, positive], dim=1).clamp_min(1e-6))


def test_classification_figures_counts_precision_and_recall():
    X = pd.DataFrame({"a": [0.9, 0.9, 0.1, 0.1, 0.1, 0.9, 0.1, 0.1]})
    y = pd.Series([1, 1, 1, 0, 0, 0, 0, 0])
    figures = classification_figures(FirstFeatureAboveHalf(), X, y, device=torch.device("cpu"))
    assert figures["accuracy"] == 0.75
    assert figures["precision"] == round(2 / 3, 4)
    assert figures["recall"] == round(2 / 3, 4)
    assert figures["balanced_accuracy"] == round((2 / 3 + 4 / 5) / 2, 4)
    assert figures["majority_accuracy"] == 0.625


def test_mlp_classifier_outputs_log_probabilities_and_checks_arguments():
    model = MLPClassifier(5, (8, 4), dropout=0.2)
    output = model.eval()(torch.rand(3, 5))
    assert output.shape == (3, 2)
    assert torch.allclose(output.exp().sum(dim=1), torch.ones(3))
    rebuilt = MLPClassifier(**model.config)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.config == model.config
    with pytest.raises(ValueError, match="hidden"):
        MLPClassifier(5, ())
    with pytest.raises(ValueError, match="dropout"):
        MLPClassifier(5, (4,), dropout=1.0)


def test_training_learns_an_informative_feature(data):
    torch.manual_seed(0)
    splits = honest_splits(data)
    model = MLPClassifier(splits.n_features, (16,))
    history = train_classifier(model, splits, epochs=30, lr=0.01, batch_size=32, device=torch.device("cpu"),
                               progress=False)
    assert history.val_loss[-1] < history.val_loss[0]
    figures = classification_figures(model, splits.X_val, splits.y_val, device=torch.device("cpu"))
    assert figures["balanced_accuracy"] > 0.85


def test_real_data_pipelines_match_the_book(use_mirror):
    from utils import load_credit_default

    data = clean_credit_data(load_credit_default())
    assert data.shape == (30000, 23)
    assert round(data[TARGET].mean(), 4) == 0.2212
    leaky = leaky_book_splits(data)
    assert sum(s[0] for s in leaky.shapes().values()) == 46728
    honest = honest_splits(data)
    assert honest.shapes() == {"train": (28036, 22), "validation": (6000, 22), "test": (6000, 22)}
    assert honest.default_shares() == {"train": 0.5, "validation": 0.2212, "test": 0.2212}
