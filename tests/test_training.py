import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from utils import History, accuracy, binary_accuracy, evaluate, fit, predict, seed_everything
from utils.plots import plot_history, show_images, tensor_to_image


def toy_regression(n=256):
    gen = seed_everything(0)
    x = torch.randn(n, 3, generator=gen)
    y = x @ torch.tensor([[1.5], [-2.0], [0.5]]) + 0.1 * torch.randn(n, 1, generator=gen)
    return TensorDataset(x, y)


def test_fit_lowers_the_loss_on_a_toy_problem():
    loader = DataLoader(toy_regression(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    model = nn.Linear(3, 1)
    before, _ = evaluate(model, loader, nn.MSELoss())
    history = fit(model, loader, nn.MSELoss(), torch.optim.Adam(model.parameters(), lr=0.05), epochs=30,
                  val_batches=loader, device=torch.device("cpu"), progress=False)
    assert len(history) == 30 and len(history.val_loss) == 30
    assert history.train_loss[-1] < before / 10
    assert history.val_loss[-1] < 0.05


def test_fit_works_with_a_single_batch_and_continues_without_reinitialising():
    x, y = toy_regression(64).tensors
    single = [(x, y)]
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    history = fit(model, single, nn.MSELoss(), opt, epochs=5, device=torch.device("cpu"), progress=False)
    weights = model.weight.detach().clone()
    history = fit(model, single, nn.MSELoss(), opt, epochs=5, device=torch.device("cpu"), history=history,
                  progress=False)
    assert len(history) == 10
    assert history.train_loss[5] <= history.train_loss[4] * 1.01, "second call must continue, not restart"
    assert not torch.equal(weights, model.weight)


def test_epoch_loss_is_weighted_by_batch_size():
    model = nn.Linear(1, 1)
    with torch.no_grad():
        model.weight.fill_(0.0)
        model.bias.fill_(0.0)
    batches = [(torch.zeros(3, 1), torch.ones(3, 1)), (torch.zeros(1, 1), torch.full((1, 1), 3.0))]
    loss, _ = evaluate(model, batches, nn.MSELoss())
    assert loss == pytest.approx((3 * 1.0 + 1 * 9.0) / 4)


def test_evaluate_uses_eval_mode_and_no_grad():
    seen = {}

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 2)
            self.drop = nn.Dropout(0.9)

        def forward(self, x):
            seen["training"], seen["grad"] = self.training, torch.is_grad_enabled()
            return self.drop(self.lin(x))

    model = Probe()
    batches = [(torch.randn(8, 2), torch.randint(0, 2, (8,)))]
    _, acc = evaluate(model, batches, nn.CrossEntropyLoss(), metric=accuracy)
    assert seen == {"training": False, "grad": False} and 0 <= acc <= 1
    fit(model, batches, nn.CrossEntropyLoss(), torch.optim.SGD(model.parameters(), lr=0.1), 1,
        metric=accuracy, device=torch.device("cpu"), progress=False)
    assert seen == {"training": True, "grad": True}


def test_metrics():
    assert accuracy(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1])).item() == 0.5
    assert binary_accuracy(torch.tensor([0.7, 0.2, 0.6]), torch.tensor([1, 0, 0])).item() == pytest.approx(2 / 3)


class OnAccelerator(torch.Tensor):
    """Stands in for a tensor left on a GPU: only ``.cpu()`` turns it back into a plain CPU tensor."""

    @property
    def device(self):
        return torch.device("meta")

    def cpu(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor)


class AcceleratorModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x):
        return self.lin(x).as_subclass(OnAccelerator)


def test_predict_returns_cpu_outputs_for_tensor_and_loader():
    model = AcceleratorModel()
    x = torch.randn(5, 3)
    for out, rows in [(predict(model, x), 5), (predict(model, [(x, None), (x, None)]), 10)]:
        assert type(out) is torch.Tensor and out.device.type == "cpu", "predict must move outputs to the CPU"
        assert out.shape == (rows, 2) and not out.requires_grad
    assert torch.allclose(predict(model, x), model.lin(x).detach())


@pytest.mark.skipif(not (torch.cuda.is_available() or torch.backends.mps.is_available()), reason="no accelerator")
def test_predict_returns_cpu_outputs_from_a_real_accelerator():
    device = torch.device("cuda" if torch.cuda.is_available() else "mps")
    out = predict(nn.Linear(3, 2).to(device), torch.randn(5, 3))
    assert out.device.type == "cpu"


def test_empty_loader_is_an_error():
    with pytest.raises(ValueError, match="no batches"):
        evaluate(nn.Linear(1, 1), [], nn.MSELoss())


def test_history_frame_and_plot():
    history = History([1.0, 0.5], [1.1, 0.7], [0.5, 0.7], [0.4, 0.6], "accuracy")
    frame = history.as_frame()
    assert list(frame.columns) == ["train_loss", "val_loss", "train_accuracy", "val_accuracy"]
    assert len(plot_history(history).axes) == 2


def test_tensor_to_image_denormalises_and_clamps():
    img = torch.tensor([[[0.0, 2.0]], [[-3.0, 0.0]], [[1.0, 1.0]]])  # (3, 1, 2)
    out = tensor_to_image(img, mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5])
    assert out.shape == (1, 2, 3)
    assert out.min() >= 0 and out.max() <= 1
    assert out[0, 0].tolist() == [0.5, 0.0, 1.0]
    with pytest.raises(ValueError):
        tensor_to_image(torch.zeros(2, 3, 4, 4))


def test_show_images_grid():
    fig = show_images(torch.rand(10, 3, 8, 8), titles=[str(i) for i in range(10)], ncols=4)
    assert len(fig.axes) == 12


def test_fit_appends_to_an_empty_history_passed_in():
    history = History()
    x, y = toy_regression(64).tensors
    model = nn.Linear(3, 1)
    before = model.weight.detach().clone()
    returned = fit(model, [(x, y)], nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1),
                   epochs=3, device=torch.device("cpu"), history=history, progress=False)
    assert returned is history and len(history) == 3
    assert not torch.equal(before, model.weight), "fit must update the model it was given"
    assert history.train_loss[-1] < history.train_loss[0]


def _old_style_means(model, batches, loss_fn, optimizer, epochs, metric):
    """The loop fit replaced: a Python float per batch, sample-weighted means per epoch."""
    means = []
    for _ in range(epochs):
        model.train()
        total, score, seen = 0.0, 0.0, 0
        for x, y in batches:
            out = model(x)
            loss = loss_fn(out, y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(y)
            score += metric(out.detach(), y).item() * len(y)
            seen += len(y)
        means.append((total / seen, score / seen))
    return means


def test_fit_reports_the_same_sample_weighted_means_as_a_per_batch_item_loop():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(203, 5, generator=gen), torch.randint(0, 3, (203,), generator=gen)
    batches = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 203, 16)]  # last batch has 11 rows

    def make():
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
        return model, torch.optim.SGD(model.parameters(), lr=0.1)

    model, opt = make()
    expected = _old_style_means(model, batches, nn.CrossEntropyLoss(), opt, 3, accuracy)
    model, opt = make()
    history = fit(model, batches, nn.CrossEntropyLoss(), opt, 3, metric=accuracy, device=torch.device("cpu"),
                  progress=False)
    assert list(zip(history.train_loss, history.train_metric)) == expected


@pytest.mark.parametrize("check_every", [1, 4, 50])
def test_fit_stops_at_the_first_nan_loss_naming_epoch_batch_and_causes(check_every, monkeypatch):
    import utils.training as training

    x, y = torch.randn(40, 3), torch.randn(40, 1)
    x[25, 1] = float("nan")  # row 25 is in the 7th batch of 4
    batches = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 40, 4)]
    model = nn.Linear(3, 1)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    history = fit(model, batches[:6], nn.MSELoss(), opt, 2, device=torch.device("cpu"), progress=False)
    original = training.run_epoch
    monkeypatch.setattr(training, "run_epoch", lambda *a, **k: original(*a, **{**k, "check_every": check_every}))
    with pytest.raises(training.NonFiniteLossError) as info:
        fit(model, batches, nn.MSELoss(), opt, 5, device=torch.device("cpu"), history=history, progress=False)
    message = str(info.value)
    assert "epoch 3, batch 7" in message and "nan" in message
    assert "learning rate" in message and "scaled" in message and "NaN" in message
    assert info.value.epoch == 3 and info.value.batch == 7
    assert len(history) == 2 and info.value.history is history, "the epochs before stay in the history"
    assert all(map(math.isfinite, history.train_loss))


def test_fit_stops_when_the_loss_explodes_to_infinity():
    x, y = torch.full((8, 1), 1e30), torch.zeros(8, 1)
    model = nn.Linear(1, 1)
    with pytest.raises(FloatingPointError, match="epoch 1, batch 1"):
        fit(model, [(x, y)], nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=1.0), 3,
            device=torch.device("cpu"), progress=False)


def test_ctrl_c_during_fit_returns_the_epochs_done_and_closes_the_bar(monkeypatch, capsys):
    import utils.training as training

    bars = []

    class Bar:
        def __init__(self, iterable, **options):
            self.closed = False
            bars.append(self)

        def update(self, n=1):
            pass

        def set_postfix(self, shown):
            pass

        def close(self):
            self.closed = True

    monkeypatch.setattr(training, "tqdm", Bar)

    class Interrupting:
        """A loader whose third pass is interrupted halfway, as a learner pressing Ctrl-C would."""

        def __init__(self):
            self.passes = 0

        def __iter__(self):
            self.passes += 1
            yield torch.randn(4, 3), torch.randn(4, 1)
            if self.passes == 3:
                raise KeyboardInterrupt
            yield torch.randn(4, 3), torch.randn(4, 1)

    model = nn.Linear(3, 1)
    history = fit(model, Interrupting(), nn.MSELoss(), torch.optim.SGD(model.parameters(), lr=0.1), 10,
                  device=torch.device("cpu"))
    assert isinstance(history, History) and len(history) == 2
    assert bars and bars[0].closed
    assert "interrupted during epoch 3" in capsys.readouterr().out


def test_evaluate_uses_inference_mode_but_lazy_modules_still_work():
    seen = {}

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(2, 1)

        def forward(self, x):
            seen["inference"] = torch.is_inference_mode_enabled()
            return self.lin(x)

    batches = [(torch.randn(4, 2), torch.randn(4, 1))]
    evaluate(Probe(), batches, nn.MSELoss())
    assert seen["inference"] is True
    lazy = nn.LazyLinear(1)
    evaluate(lazy, batches, nn.MSELoss())  # creates its weights while measuring
    fit(lazy, batches, nn.MSELoss(), torch.optim.SGD(lazy.parameters(), lr=0.1), 1, device=torch.device("cpu"),
        progress=False)  # and those weights can still be trained
