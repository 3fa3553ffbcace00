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


def test_predict_returns_cpu_outputs_for_tensor_and_loader():
    model = nn.Linear(3, 2)
    x = torch.randn(5, 3)
    assert predict(model, x).shape == (5, 2)
    assert predict(model, [(x, None), (x, None)]).shape == (10, 2)


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
    single = [(torch.randn(4, 3), torch.randn(4, 1))]
    returned = fit(nn.Linear(3, 1), single, nn.MSELoss(), torch.optim.SGD(nn.Linear(3, 1).parameters(), lr=0.1),
                   epochs=2, device=torch.device("cpu"), history=history, progress=False)
    assert returned is history and len(history) == 2
