"""Explaining a crash in a learner's step cell: which exception, in one line, and the known pitfall behind it.

When a step's cell raises, what it should have defined is missing or stale, so its check alone would
only say "not done yet: define `losses`". :func:`install` registers an IPython ``post_run_cell``
callback that remembers the last cell that raised (its exception and source) and forgets it when a
later run of that cell succeeds; :class:`utils.checks.Checker` then adds :func:`explain_error` of
that exception to its "not done" and "needs another look" verdicts. Outside IPython, the exception
IPython-like shells keep in ``sys.last_value`` is used instead.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn


@dataclass
class Crash:
    """The last failed cell: its exception, its source and (where the front end sends one) its cell id."""

    error: BaseException
    source: str = ""
    cell_id: str | None = None

    def first_line(self) -> str:
        """The cell's first non-empty line (the step's comment, in a learner notebook), shortened."""
        line = next((s.strip() for s in self.source.splitlines() if s.strip()), "")
        return line if len(line) <= 60 else line[:57] + "..."


_state: dict[str, Any] = {"crash": None, "installed": False}


def _same_cell(crash: Crash, source: str, cell_id: str | None) -> bool:
    if crash.cell_id and cell_id:
        return crash.cell_id == cell_id
    if source == crash.source:
        return True
    mine = next((s.strip() for s in source.splitlines() if s.strip()), "")
    return mine.startswith("#") and mine == crash.first_line()


def _post_run_cell(result: Any) -> None:
    """IPython callback: remember a cell that raised; forget it when that cell later runs cleanly."""
    try:
        info = getattr(result, "info", None)
        source = getattr(info, "raw_cell", "") or ""
        cell_id = getattr(info, "cell_id", None)
        error = getattr(result, "error_in_exec", None) or getattr(result, "error_before_exec", None)
        if error is not None:
            _state["crash"] = Crash(error, source, cell_id)
        elif _state["crash"] is not None and _same_cell(_state["crash"], source, cell_id):
            _state["crash"] = None
    except Exception:  # a callback must never disturb the learner's session
        pass


def install() -> bool:
    """Register the crash memory in the running IPython shell (once); False outside IPython."""
    if _state["installed"]:
        return True
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None:
        return False
    shell.events.register("post_run_cell", _post_run_cell)
    _state["installed"] = True
    return True


def last_crash() -> Crash | None:
    """The last cell that raised and has not run cleanly since, or ``sys.last_value`` outside IPython."""
    if _state["installed"]:
        return _state["crash"]
    error = getattr(sys, "last_value", None)
    return Crash(error) if isinstance(error, BaseException) else None


def forget() -> None:
    """Forget the remembered crash (a check that passed, or a test that starts a fresh answer)."""
    _state["crash"] = None
    if not _state["installed"] and hasattr(sys, "last_value"):
        del sys.last_value


# --------------------------------------------------------------------------- known pitfalls

_MATMUL = re.compile(r"mat1 and mat2 shapes cannot be multiplied \((\d+)x(\d+) and (\d+)x(\d+)\)")
_SIZE_MISMATCH = re.compile(r"size mismatch for ([\w.]+): copying a param with shape torch\.Size\(\[([\d, ]*)\]\) "
                            r"from checkpoint, the shape in current model is torch\.Size\(\[([\d, ]*)\]\)")
_BROADCAST = re.compile(r"The size of tensor a \((\d+)\) must match the size of tensor b \((\d+)\) "
                        r"at non-singleton dimension (\d+)")
_BATCH = re.compile(r"Expected input batch_size \((\d+)\) to match target batch_size \((\d+)\)")


def _failing_module(error: BaseException) -> nn.Module | None:
    """The innermost ``nn.Module`` whose ``forward`` was running when ``error`` was raised."""
    found, tb = None, error.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("self")
        if isinstance(candidate, nn.Module):
            found = candidate
        tb = tb.tb_next
    return found


def _name_in(namespace: Mapping[str, Any] | None, layer: nn.Module | None, inputs: int, outputs: int) -> str:
    """Where a linear layer lives in the notebook's networks, e.g. "`model.fc2`" (the layer itself, or else
    the first ``nn.Linear(inputs, outputs)`` found); "" when none is found."""
    if not namespace:
        return ""
    for variable, value in list(namespace.items()):
        if variable.startswith("_") or not isinstance(value, nn.Module):
            continue
        for name, module in value.named_modules():
            hit = module is layer if layer is not None else (
                isinstance(module, nn.Linear) and (module.in_features, module.out_features) == (inputs, outputs))
            if hit:
                return f"`{variable}.{name}`" if name else f"`{variable}`"
    return ""


def _non_leaf_from_clamp(namespace: Mapping[str, Any] | None) -> str | None:
    """The name of a notebook tensor that requires grad but was made by a clamp (a leaf replaced by
    ``x = x.clamp(...)``), if there is one."""
    for name, value in (namespace or {}).items():
        if isinstance(value, torch.Tensor) and value.requires_grad and not value.is_leaf \
                and "Clamp" in type(value.grad_fn).__name__:
            return name
    return None


def pitfall(error: BaseException, namespace: Mapping[str, Any] | None = None) -> str:
    """What a known mistake behind ``error`` is and how to fix it, or "" for an unknown error.

    ``namespace`` (the notebook's variables) lets a shape mismatch name the layer that failed.
    """
    text = str(error)
    if "backward through the graph a second time" in text:
        made = _non_leaf_from_clamp(namespace)
        if made:
            return (f"`{made}` is no longer the leaf being optimised: `{made} = {made}.clamp(...)` made it the "
                    "result of an operation, so each iteration goes back through the first iteration's graph. "
                    f"Clamp it in place instead, inside `with torch.no_grad():` (`{made}.clamp_(...)`)")
        return ("the graph of an earlier batch was already used and freed: detach the hidden states before "
                "each batch, `states = tuple(s.detach() for s in states)` (E6.5), or compute fixed targets once "
                "under `torch.no_grad()`; `retain_graph=True` is not the fix")
    if "leaf Variable that requires grad is being used in an in-place operation" in text:
        return ("a tensor that requires grad (a leaf, such as the image being optimised) was changed in place: "
                "do it inside `with torch.no_grad():`, e.g. `with torch.no_grad(): image.clamp_(0, 1)`")
    if "can't optimize a non-leaf Tensor" in text:
        return ("the optimiser was given a tensor computed from another (e.g. after `x = x.clamp(0, 1)` or "
                "`.to(device)` on a tensor that requires grad): give it the leaf itself, and change it in place "
                "inside `with torch.no_grad():`")
    if "modified by an inplace operation" in text:
        return ("an in-place operation (`+=`, `clamp_`, `relu_`, `inplace=True`) changed a tensor that backward "
                "still needs: use the out-of-place form (`x = x + ...`)")
    match = _MATMUL.search(text)
    if match:
        rows, got, wanted, outputs = map(int, match.groups())
        layer = _failing_module(error)
        layer = layer if isinstance(layer, nn.Linear) else None
        where = _name_in(namespace, layer, wanted, outputs)
        return (f"a linear layer{' ' + where if where else ''}, nn.Linear({wanted}, {outputs}), expects {wanted} "
                f"inputs per row but received {got} (a batch of {rows} rows): make its in_features match the "
                "size of what reaches it (the data's columns, or the previous layer's outputs)")
    match = _SIZE_MISMATCH.search(text)
    if match:
        name, saved, current = match.groups()
        return (f"the saved `{name}` has shape ({saved}) but your network's has ({current}): build the network "
                "with the same sizes as the one that was saved")
    match = _BATCH.search(text)
    if match:
        a, b = match.groups()
        return (f"the loss got {a} predictions but {b} labels: the labels should have shape (N,) and the "
                "predictions (N, classes) for the same N rows")
    match = _BROADCAST.search(text)
    if match:
        a, b, dim = match.groups()
        return (f"two tensors with {a} and {b} entries along dimension {dim} were combined: compare their shapes "
                "(e.g. predictions (N, 1) against targets (N,)) and give them the same one")
    if "multi-target not supported" in text or "0D or 1D target tensor expected" in text:
        return "the labels have a column too many: the loss wants labels of shape (N,), e.g. `y.squeeze(1)`"
    if "Expected all tensors to be on the same device" in text:
        return "the model and the data are on different devices: move both with `.to(device)`"
    if re.search(r"expected scalar type \w+ but found \w+|same dtype|Found dtype \w+ but expected \w+", text):
        return ("two tensors of different types met (float32 and float64, or float and long): the features as "
                "`torch.float32`, class labels as `torch.long`")
    if "does not require grad and does not have a grad_fn" in text:
        return ("the loss is not connected to the network's parameters: it was computed under `torch.no_grad()`, "
                "from `.item()`/`.detach()`, or from NumPy values")
    if isinstance(error, NameError):
        return "a name this cell uses is not defined yet: run the cells above it (and the earlier steps) first"
    return ""


def explain_error(error: BaseException, namespace: Mapping[str, Any] | None = None) -> str:
    """``error`` in one line, "RuntimeError: <first line of its message>", followed by :func:`pitfall`'s advice."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    first = lines[0] if lines else ""
    if len(first) > 160:
        first = first[:157] + "..."
    advice = pitfall(error, namespace)
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return f"{text} ({advice})" if advice else text
