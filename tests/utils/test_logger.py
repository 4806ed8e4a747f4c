"""setup_logger: idempotent handlers, and a console that follows sys.stdout."""

import io
import logging
import sys

from reid_dff.utils.env import setup_logger


def test_the_console_follows_sys_stdout_after_the_first_stream_is_closed(monkeypatch, tmp_path):
    """A tool run twice in one process: the stdout of the first run (a capture, a notebook cell) is closed."""
    first = io.StringIO()
    monkeypatch.setattr(sys, "stdout", first)
    logger = setup_logger(str(tmp_path), name="reid_dff.test_console")
    logger.info("first run")
    assert "first run" in first.getvalue()
    first.close()

    second = io.StringIO()
    monkeypatch.setattr(sys, "stdout", second)
    errors = io.StringIO()
    monkeypatch.setattr(sys, "stderr", errors)  # where logging reports a failed emit
    logger = setup_logger(str(tmp_path), name="reid_dff.test_console")
    logger.info("second run")
    assert "second run" in second.getvalue()
    assert errors.getvalue() == ""
    # Idempotent: one console and one file handler, so each record is written once to each.
    assert second.getvalue().count("second run") == 1
    assert len(logger.handlers) == 2
    assert (tmp_path / "log.txt").read_text().count("run") == 2
    for handler in logger.handlers:
        handler.close()
    logger.handlers.clear()
    logging.getLogger("reid_dff.test_console").handlers.clear()
