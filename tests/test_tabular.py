import numpy as np
import pandas as pd
import pytest
import torch

from utils.tabular import outlier_share, split_train_val_test, tensor_loader


def test_outlier_share_finds_the_extreme_column():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({"calm": rng.normal(size=1000), "wild": rng.normal(size=1000), "text": ["a"] * 1000})
    df.loc[:29, "wild"] = 100.0
    shares = outlier_share(df)
    assert list(shares.index) == ["wild", "calm"]
    assert shares["wild"] == pytest.approx(0.03)


def test_split_keeps_rows_together_and_has_60_20_20_sizes():
    X = pd.DataFrame({"x": np.arange(1000)})
    y = pd.Series(np.arange(1000) * 2)
    X_train, X_val, X_test, y_train, y_val, y_test = split_train_val_test(X, y, seed=1)
    assert (len(X_train), len(X_val), len(X_test)) == (600, 200, 200)
    for features, target in [(X_train, y_train), (X_val, y_val), (X_test, y_test)]:
        assert (features["x"].to_numpy() * 2 == target.to_numpy()).all()
    assert sorted(pd.concat([X_train, X_val, X_test])["x"]) == list(range(1000))


def test_stratified_split_keeps_class_shares():
    y = pd.Series([1] * 220 + [0] * 780)
    parts = split_train_val_test(pd.DataFrame({"x": range(1000)}), y, stratify=True)
    for target in parts[3:]:
        assert target.mean() == pytest.approx(0.22, abs=0.005)


def test_split_refuses_mismatched_lengths():
    with pytest.raises(ValueError, match="same examples"):
        split_train_val_test(np.zeros((10, 2)), np.zeros(9))


def test_tensor_loader_batches_and_dtypes():
    loader = tensor_loader(np.zeros((10, 3)), np.arange(10), batch_size=4, shuffle=True, y_dtype=torch.long)
    batches = list(loader)
    assert [len(b[1]) for b in batches] == [4, 4, 2]
    assert batches[0][0].dtype == torch.float32 and batches[0][1].dtype == torch.long
    again = [b[1].tolist() for b in tensor_loader(np.zeros((10, 3)), np.arange(10), 4, True, y_dtype=torch.long)]
    assert again == [b[1].tolist() for b in batches]


def test_as_tensor_copies_read_only_pandas_data_without_warning(recwarn):
    from utils.tabular import as_tensor

    frame = pd.DataFrame({"a": [1.0, 2.0]})
    tensor = as_tensor(frame)
    tensor[0, 0] = 5.0
    assert frame.loc[0, "a"] == 1.0 and not [w for w in recwarn if "writable" in str(w.message)]


def test_tensor_loader_covers_every_row_once_per_epoch():
    loader = tensor_loader(np.arange(23).reshape(23, 1), np.arange(23), batch_size=5, shuffle=True)
    assert len(loader) == 5
    seen = torch.cat([x[:, 0] for x, _ in loader])
    assert sorted(seen.tolist()) == list(range(23))
    assert all((x[:, 0] == y).all() for x, y in loader), "features and targets stay paired"
