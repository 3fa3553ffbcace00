"""Timing in turns, for the benchmarks (``tools/benchmark_cifar_pipeline.py``, ``tools/benchmark_style.py``).

Each timer runs once per round, all of them in turn, so a slow spell of a shared machine falls on all of
them alike; the best round then measures the code itself and the median a busy machine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping


def take_turns(timers: Mapping[str, Callable[[], float]], rounds: int,
               report: Callable[[int, dict[str, float]], None] | None = None) -> dict[str, list[float]]:
    """``{name: [what its timer returned in round 1, round 2, ...]}``; ``report(round, latest)`` after each round."""
    chunks: dict[str, list[float]] = {name: [] for name in timers}
    for round_ in range(1, rounds + 1):
        latest = {}
        for name, timer in timers.items():
            latest[name] = timer()
            chunks[name].append(latest[name])
        if report is not None:
            report(round_, latest)
    return chunks
