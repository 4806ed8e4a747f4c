"""The one base of every error a user can cause: a bad config, dataset, image, checkpoint, index or argument."""


class ReidDffError(ValueError):
    """A user-facing error. Its message states the fact and the offending value; the CLI adds the remedy.

    Library code raises a subclass named for what is wrong (``ConfigError``, ``DatasetLayoutError``, ...);
    ``reid_dff/cli/`` catches this one type and prints ``<tool>: error: <message>`` instead of a traceback.
    A subclass may also derive from the built-in type callers already expect (``FileNotFoundError``,
    ``KeyError``, ``OSError``), as ``io.UnsupportedOperation`` derives from both ``OSError`` and ``ValueError``.
    """
