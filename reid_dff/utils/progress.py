"""Progress output: log lines that do not break a progress bar, and a steady time-to-finish estimate."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence


@contextlib.contextmanager
def logs_above_bars(names: Sequence[str] = ("reid_dff",)) -> Iterator[None]:
    """While active, console log lines of the loggers ``names`` (and the root logger) go through
    ``tqdm.write``: printed above the progress bars on their own lines instead of into a bar's line."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    loggers = [logging.getLogger(name) for name in names] + [logging.root]
    with logging_redirect_tqdm(loggers=loggers):
        yield


class BarWithLogs:
    """An iterable (a tqdm bar) whose iteration runs inside :func:`logs_above_bars`; ``len`` as the bar's."""

    def __init__(self, bar):
        self.bar = bar

    def __len__(self) -> int:
        return len(self.bar)

    def __iter__(self):
        with logs_above_bars():
            yield from self.bar


class SmoothedEta:
    """Seconds left, from an exponential moving average of the seconds per iteration.

    ``update(seconds, iterations)`` adds a window of ``iterations`` iterations that took ``seconds``; the
    window's mean iteration time enters the average with weight ``1 - (1 - alpha) ** iterations`` (so the
    result does not depend on how often it is updated). The first window (loader start-up, the first
    batches) only stands until a second arrives, which replaces it.
    """

    def __init__(self, alpha: float = 0.05):
        if not 0.0 < alpha <= 1.0:
            raise ValueError(f"alpha must be in (0, 1], got {alpha}")
        self.alpha = alpha
        self.seconds_per_iteration: float | None = None
        self._windows = 0

    def update(self, seconds: float, iterations: int) -> None:
        if iterations <= 0:
            return
        mean = max(0.0, float(seconds)) / iterations
        self._windows += 1
        if self.seconds_per_iteration is None or self._windows == 2:
            self.seconds_per_iteration = mean
            return
        weight = 1.0 - (1.0 - self.alpha) ** iterations
        self.seconds_per_iteration += weight * (mean - self.seconds_per_iteration)

    def eta(self, remaining_iterations: int) -> float:
        """Seconds for ``remaining_iterations`` more iterations (0 before any update)."""
        if self.seconds_per_iteration is None:
            return 0.0
        return self.seconds_per_iteration * max(0, remaining_iterations)


def smoothed_eta(
    iteration_seconds: Sequence[float], remaining_iterations: int, alpha: float = 0.05, window: int = 1
) -> float:
    """The :class:`SmoothedEta` estimate after ``iteration_seconds``, fed ``window`` iterations at a time."""
    estimator = SmoothedEta(alpha)
    for start in range(0, len(iteration_seconds), window):
        chunk = iteration_seconds[start : start + window]
        estimator.update(sum(chunk), len(chunk))
    return estimator.eta(remaining_iterations)
