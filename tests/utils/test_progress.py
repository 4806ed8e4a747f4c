"""The smoothed ETA (a pure function of iteration times) and log lines printed above progress bars."""

import io
import logging
import re
import sys

import pytest
from tqdm import tqdm

from reid_dff.utils.progress import BarWithLogs, SmoothedEta, logs_above_bars, smoothed_eta


def test_eta_of_steady_iterations_is_exact():
    assert smoothed_eta([0.5] * 40, 100, window=10) == pytest.approx(50.0)


def test_first_window_is_replaced_by_the_second():
    # a slow start-up window (workers starting) does not linger in the estimate
    times = [5.0] * 10 + [1.0] * 10
    assert smoothed_eta(times, 10, window=10) == pytest.approx(10.0)
    assert smoothed_eta([5.0] * 10, 10, window=10) == pytest.approx(50.0)  # the only one stands meanwhile


def test_eta_swings_less_than_the_window_speed():
    # a loaded machine: windows alternate between 1 s and 3 s per iteration
    times = ([1.0] * 5 + [3.0] * 5) * 20
    remaining = 1000
    estimates = [smoothed_eta(times[:n], remaining, window=5) for n in range(50, len(times) + 1, 5)]
    window_estimates = [t * remaining for t in (1.0, 3.0)]  # what a per-window speed would say
    assert max(estimates) - min(estimates) < 0.3 * (max(window_estimates) - min(window_estimates))
    assert all(1500 < e < 2500 for e in estimates)  # around the true mean of 2 s per iteration


def test_eta_does_not_depend_on_the_log_period():
    times = [1.0] * 30 + [2.0] * 30
    assert smoothed_eta(times, 10, window=3) == pytest.approx(smoothed_eta(times, 10, window=6), rel=1e-9)


def test_eta_follows_a_lasting_change():
    # the machine gets busy for good: the estimate moves to the new speed
    times = [1.0] * 50 + [4.0] * 200
    assert smoothed_eta(times, 100, window=10) == pytest.approx(400.0, rel=0.01)


def test_eta_before_any_iteration_and_bad_alpha():
    assert SmoothedEta().eta(100) == 0.0
    with pytest.raises(ValueError):
        SmoothedEta(alpha=0.0)


def _bar_and_log(monkeypatch, redirect: bool) -> str:
    stream = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    # a console handler on the package logger, as setup_logger's; modules log to its children
    monkeypatch.setattr(logging.getLogger("reid_dff"), "handlers", [logging.StreamHandler(sys.stderr)])
    logger = logging.getLogger("reid_dff.test_progress")
    bar = tqdm(range(3), file=sys.stderr, disable=False, desc="epoch", mininterval=0)
    for i in BarWithLogs(bar) if redirect else bar:
        if i == 1:
            logger.warning("a log line")
    return stream.getvalue()


def test_log_lines_print_above_the_bar(monkeypatch):
    with_redirect = re.split(r"[\r\n]", _bar_and_log(monkeypatch, redirect=True))
    assert "a log line" in with_redirect  # a line of its own
    without = re.split(r"[\r\n]", _bar_and_log(monkeypatch, redirect=False))
    assert "a log line" not in without  # the reference: the line runs into the bar's text
    assert any(part.startswith("epoch") and part.endswith("a log line") for part in without)


def test_logs_above_bars_restores_the_handlers():
    logger = logging.getLogger("reid_dff")
    before = list(logger.handlers)
    with logs_above_bars():
        pass
    assert logger.handlers == before
