"""One error family: every exception class of reid_dff derives from ReidDffError, and library messages
(everything outside reid_dff/cli/) name no tool and no command-line flag; the CLI adds those remedies."""

import ast
import importlib
import inspect
import os
import pkgutil
import re

import reid_dff
from reid_dff.errors import ReidDffError

PACKAGE_DIR = os.path.dirname(os.path.abspath(reid_dff.__file__))

# Exception classes that never reach a user, each with the reason. Keep this list short and explained.
NEVER_REACH_USERS: dict[str, str] = {}


def all_modules() -> list:
    """Every module of the reid_dff package, imported."""
    names = [info.name for info in pkgutil.walk_packages(reid_dff.__path__, prefix="reid_dff.")]
    return [reid_dff, *(importlib.import_module(name) for name in names)]


def exception_classes() -> dict[str, type]:
    """``{"module.Class": class}`` of every Exception class (not Warning) defined, not imported, in reid_dff."""
    found = {}
    for module in all_modules():
        for _, obj in inspect.getmembers(module, inspect.isclass):
            # Warning classes are Exceptions too, but they are issued (warnings.warn), not raised.
            if (
                issubclass(obj, Exception)
                and not issubclass(obj, Warning)
                and obj.__module__ == module.__name__
            ):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


def test_the_walk_finds_the_known_error_classes():
    # The check below means something only if the walk sees the package's exception classes.
    names = exception_classes()
    for expected in (
        "reid_dff.errors.ReidDffError",
        "reid_dff.config.config.ConfigError",
        "reid_dff.data.io.BadImageError",
        "reid_dff.cli.common.ToolUsageError",
    ):
        assert expected in names
    assert len(names) >= 20


def test_every_exception_class_derives_from_reid_dff_error():
    classes = exception_classes()
    assert set(NEVER_REACH_USERS) <= set(classes), "the allowlist names a class that no longer exists"
    outside = sorted(
        name
        for name, cls in classes.items()
        if not issubclass(cls, ReidDffError) and name not in NEVER_REACH_USERS
    )
    assert outside == [], f"exception classes outside the ReidDffError family: {outside}"


# "tools/", "train_net.py"-like script names and --flags are the CLI's words, not the library's.
TOOL_WORDS = re.compile(r"tools/|\b\w+\.py\b|\breid-dff-[a-z-]+|(?<![\w-])--[a-z][a-z0-9-]*")
TOOL_SCRIPTS = {
    os.path.splitext(n)[0] for n in os.listdir(os.path.join(os.path.dirname(PACKAGE_DIR), "tools"))
}


def raise_strings(tree: ast.AST):
    """(line, text) of every string constant (f-string parts included) inside a ``raise`` statement."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and node.exc is not None:
            for sub in ast.walk(node.exc):
                if isinstance(sub, ast.Constant) and isinstance(sub.value, str):
                    yield node.lineno, sub.value


def tool_wording(text: str) -> list[str]:
    """The words of ``text`` that name a tool (``tools/...``, ``<tool>.py``, ``reid-dff-*``) or a ``--flag``."""
    words = []
    for match in TOOL_WORDS.finditer(text):
        word = match.group()
        if word.endswith(".py") and word[:-3] not in TOOL_SCRIPTS:
            continue  # a Python file that is not a tool
        words.append(word)
    return words


def test_tool_wording_recognises_tools_and_flags_only():
    assert tool_wording("run tools/make_synthetic.py first") == ["tools/", "make_synthetic.py"]
    assert tool_wording("pass --weights, or --config-file X") == ["--weights", "--config-file"]
    assert tool_wording("as train_net.py does, or reid-dff-train") == ["train_net.py", "reid-dff-train"]
    assert tool_wording("MODEL.WEIGHTS 'a--b.pth' is not a file; got -1, expected >= 0") == []
    assert tool_wording("setup.py and model.py are not tools") == []


def test_no_library_raise_names_a_tool_or_a_flag():
    offenders = []
    for root, _, files in sorted(os.walk(PACKAGE_DIR)):
        if os.path.relpath(root, PACKAGE_DIR).split(os.sep)[0] == "cli":
            continue  # the CLI layer is where tool names and flags belong
        for name in sorted(files):
            if not name.endswith(".py"):
                continue
            path = os.path.join(root, name)
            with open(path, encoding="utf-8") as f:
                tree = ast.parse(f.read(), path)
            for line, text in sorted(raise_strings(tree)):
                words = tool_wording(text)
                if words:
                    offenders.append(f"{os.path.relpath(path, PACKAGE_DIR)}:{line}: {words}")
    assert offenders == [], "library raise statements naming a tool or a flag:\n" + "\n".join(offenders)
