"""Chapter 3, Activity 6: the C++ program loads the traced model and predicts what Python predicts,
and final_model.py saves and loads checkpoints (with clear errors for bad files).

The program is built once per test session with its Makefile (into ``cpp/build/``, ignored by git;
``make`` rebuilds only when ``main.cpp`` or the Makefile changed). Building against libtorch takes
about half a minute the first time. Without a C++ compiler the tests are skipped, saying so.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch

from utils.credit_data import BOOK_EXAMPLE

ROOT = Path(__file__).resolve().parent.parent
SOLUTION = ROOT / "solutions" / "ch03_classification"
CPP = SOLUTION / "cpp"
BINARY = CPP / "build" / "predict"


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("g++") or shutil.which("clang++") or shutil.which("c++")


def _build_without_make(compiler: str) -> None:
    """The Makefile's command, for machines that have a compiler but no ``make``."""
    torch_dir = Path(torch.__file__).parent
    abi = int(torch.compiled_with_cxx11_abi())
    BINARY.parent.mkdir(exist_ok=True)
    subprocess.run([compiler, "-O2", "-std=c++20", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
                    "-isystem", str(torch_dir / "include"),
                    "-isystem", str(torch_dir / "include" / "torch" / "csrc" / "api" / "include"),
                    str(CPP / "main.cpp"), "-o", str(BINARY), f"-L{torch_dir / 'lib'}",
                    f"-Wl,-rpath,{torch_dir / 'lib'}", "-ltorch", "-ltorch_cpu", "-lc10"],
                   check=True, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="session")
def predict_binary() -> Path:
    compiler = _compiler()
    if compiler is None:
        pytest.skip("no C++ compiler found (g++, clang++ or c++, or $CXX): the C++ deployment cannot be built")
    try:
        if shutil.which("make"):
            subprocess.run(["make", "-C", str(CPP), f"PYTHON={sys.executable}", f"CXX={compiler}"],
                           check=True, capture_output=True, text=True, timeout=900)
        else:
            _build_without_make(compiler)
    except subprocess.CalledProcessError as err:
        pytest.fail(f"building the C++ program failed:\n{err.stdout[-3000:]}\n{err.stderr[-3000:]}")
    assert BINARY.is_file()
    return BINARY


def _final_model():
    """solutions/ch03_classification/final_model.py, imported once (registered so pickling can find it)."""
    name = "final_model_for_tests"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SOLUTION / "final_model.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def traced(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """A final_model.Classifier (seeded random weights) in eval mode, and its TorchScript trace on disk."""
    torch.manual_seed(3)
    model = _final_model().Classifier().eval()
    example = torch.tensor([BOOK_EXAMPLE])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, message=r".*torch\.jit")
        script = torch.jit.trace(model, example)
    path = tmp_path_factory.mktemp("cpp") / "traced_model.pt"
    script.save(str(path))
    return model, path


def _run(binary: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary), *args], capture_output=True, text=True, timeout=120)


def _parse(stdout: str) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in stdout.strip().splitlines())


def test_cpp_prediction_matches_python_for_the_book_example(predict_binary, traced):
    model, path = traced
    result = _run(predict_binary, str(path))
    assert result.returncode == 0, result.stderr
    lines = _parse(result.stdout)
    cpp_log_probs = torch.tensor([float(v) for v in lines["log_probabilities"].split()])
    with torch.no_grad():
        python_log_probs = model(torch.tensor([BOOK_EXAMPLE]))[0]
    torch.testing.assert_close(cpp_log_probs, python_log_probs, rtol=1e-5, atol=1e-6)
    probabilities = [float(v) for v in lines["probabilities"].split()]
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-5)
    assert lines["predicted_class"].startswith(str(int(python_log_probs.argmax())))


def test_cpp_prediction_matches_python_for_other_features(predict_binary, traced):
    model, path = traced
    torch.manual_seed(1)
    features = torch.rand(22) * 2  # also values outside [0, 1], as unseen clients can have
    result = _run(predict_binary, str(path), ",".join(f"{v:.9g}" for v in features.tolist()))
    assert result.returncode == 0, result.stderr
    cpp_log_probs = torch.tensor([float(v) for v in _parse(result.stdout)["log_probabilities"].split()])
    with torch.no_grad():
        python_log_probs = model(features.unsqueeze(0))[0]
    torch.testing.assert_close(cpp_log_probs, python_log_probs, rtol=1e-5, atol=1e-6)


def test_cpp_program_explains_bad_input(predict_binary, traced, tmp_path):
    _, path = traced
    too_few = _run(predict_binary, str(path), "0.1,0.2")
    assert too_few.returncode == 2 and "expected 22" in too_few.stderr
    not_numbers = _run(predict_binary, str(path), ",".join(["x"] * 22))
    assert not_numbers.returncode == 2 and "could not read the features" in not_numbers.stderr
    junk = tmp_path / "not_a_model.pt"
    junk.write_text("hello")
    missing = _run(predict_binary, str(junk))
    assert missing.returncode == 1 and "could not load" in missing.stderr
    usage = _run(predict_binary)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_checkpoint_round_trip_and_clear_errors_for_bad_files(tmp_path):
    """final_model.py, the Python side of the deployment: what it saves it loads; bad files are explained."""
    final_model = _final_model()
    torch.manual_seed(0)
    model = final_model.Classifier(22, [8, 4], dropout=0.2)
    path = final_model.save_checkpoint(model, tmp_path / "good.pth", feature_names=["f"] * 22)
    loaded = final_model.load_checkpoint(path)
    assert not loaded.training and loaded.config == model.config
    x = torch.rand(3, 22)
    assert torch.equal(loaded(x), model.eval()(x))

    good = torch.load(path, weights_only=True)
    torch.save({k: v for k, v in good.items() if k != "output_size"}, tmp_path / "missing.pth")
    torch.save({**good, "hidden_sizes": [9, 4]}, tmp_path / "shapes.pth")
    (tmp_path / "text.pth").write_text("not a checkpoint")
    torch.save(model, tmp_path / "pickled_model.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    expected = {"missing.pth": "lacks the key", "shapes.pth": "do not fit", "text.pth": "not a PyTorch checkpoint",
                "pickled_model.pth": "weights_only=True refuses", "list.pth": "not a checkpoint dictionary"}
    for name, message in expected.items():
        with pytest.raises(final_model.CheckpointError, match=message):
            final_model.load_checkpoint(tmp_path / name)
    with pytest.raises(FileNotFoundError):
        final_model.load_checkpoint(tmp_path / "absent.pth")
