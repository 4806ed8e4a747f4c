"""Command-line tools: one module per command, each with ``main(argv=None) -> int | None``.

The commands are declared in setup.cfg (``[options.entry_points] console_scripts``, e.g. ``reid-dff-train``
-> ``reid_dff.cli.train_net:main``); ``tools/<name>.py`` are thin wrappers that run the same ``main`` from a
checkout. A module here only parses arguments and calls the library.
"""
