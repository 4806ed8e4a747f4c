"""The commands that README.md, datasets/README.md and docs/*.md show, checked without running them.

The commands are read from the Markdown files themselves (shell code blocks, and ``python tools/...`` /
``python bench/...`` code spans in the prose), so an edited document is checked as written. Each
``python tools/X.py`` / ``python bench/X.py`` / ``torchrun ... tools/X.py`` / console-script command is
parsed by that tool's own argparse parser (nothing runs; flags must be written in full), its
``--config-file`` and ``KEY VALUE`` overrides go through ``setup_cfg`` (strict keys and types), a
checkpoint it reads from ``output/`` is one that a config or another documented command writes there, and
``pip`` / ``pytest`` lines name files, extras, pins and markers that exist.

Placeholders, the one convention the documents follow: ``<name>`` or an all-capitals word (``CFG``,
``CKPT``, ``GALLERY_DIR``, ``HOST:PORT``) stands for a value the reader fills in; ``<a|b>`` is the
first of its choices; ``configs/X.yaml`` or ``<task>`` inside a config path is every config it
matches; an optional ``[--flag VALUE]`` / ``[KEY VALUE]`` group is checked as if written. A placeholder
config file means the defaults; a placeholder ``KEY`` value is checked for its key only. A usage
synopsis is not a command: the documents put it in a ```` ```text ```` block.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import dataclasses
import fnmatch
import glob
import importlib
import importlib.util
import inspect
import os
import re
import shlex
import sys

import pytest

from reid_dff.cli.common import config_keys
from reid_dff.config import setup_cfg

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC_FILES = ["README.md", "datasets/README.md", "docs/*.md"]
SHELL_FENCES = {"", "bash", "sh", "shell", "console"}
SEPARATORS = {"&&", "||", ";", "|", "&"}
ENV_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=\S*")
PLACEHOLDER = re.compile(r"<[^<>|]+>|[A-Z][A-Z0-9_]*(?::[A-Z]+)?")
CHOICES = re.compile(r"<([^<>|]+)(?:\|[^<>]*)>")  # <a|b>: the first choice
OPTIONAL_GROUP = re.compile(r"\[((?:--|[A-Z][A-Z0-9_]*(?:\.[A-Z0-9_]+)* )[^\[\]]*)\]")  # [--flag V] [KEY V]


def console_scripts() -> dict[str, str]:
    """``reid-dff-eval`` -> ``reid_dff.cli.evaluate:main``, from setup.cfg."""
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    lines = parser["options.entry_points"]["console_scripts"].strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=")) for line in lines)


PROGRAMS = {"python", "torchrun", "pip", "pytest", "ruff", "mypy", "pre-commit", *console_scripts()}


@dataclasses.dataclass
class DocCommand:
    where: str  # file:line of the block (or prose line)
    words: list[str]  # after environment assignments, $VARs expanded

    @property
    def program(self) -> str:
        return self.words[0]


def _optional(group: str) -> str:
    """``[--type a|b]`` -> ``--type a``; ``[KEY VALUE ...]`` (any number of them) -> nothing."""
    return "" if "..." in group else group.split("|")[0]


def _expand_choices(text: str) -> str:
    return CHOICES.sub(lambda m: m.group(1), OPTIONAL_GROUP.sub(lambda m: _optional(m.group(1)), text))


def _commands_of(lines: str, where: str, variables: dict[str, str]) -> list[DocCommand]:
    commands = []
    for line in lines.replace("\\\n", " ").splitlines():
        first = [w for w in line.split() if not ENV_ASSIGNMENT.fullmatch(w.rstrip(";"))][:1]
        if first and first[0] not in PROGRAMS:
            continue  # a directory tree or sample output, not a command
        words: list[str] = []
        for word in shlex.split(_expand_choices(line), comments=True) + [";"]:
            if word.endswith(";") and word != ";":
                words.append(word[:-1])
                word = ";"
            if word not in SEPARATORS:
                words.append(word)
                continue
            while words and ENV_ASSIGNMENT.fullmatch(words[0]):
                name, value = words.pop(0).split("=", 1)
                if not words:  # `DFF=...` on its own: a variable of the block
                    variables[name] = value
            words = [re.sub(r"\$(\w+)", lambda m: variables.get(m.group(1), m.group(0)), w) for w in words]
            if words and words[0] in PROGRAMS:
                commands.append(DocCommand(where, words))
            words = []
    return commands


def doc_commands() -> list[DocCommand]:
    """Every command of the documents' shell blocks and tool code spans, in document order."""
    commands = []
    for pattern in DOC_FILES:
        for path in sorted(glob.glob(os.path.join(REPO, pattern))):
            name = os.path.relpath(path, REPO)
            with open(path, encoding="utf-8") as f:
                lines = f.read().splitlines()
            fence, block, start, variables = None, [], 0, {}
            for number, line in enumerate(lines, 1):
                if line.lstrip().startswith("```"):
                    if fence is None:
                        fence, block, start, variables = line.strip()[3:].strip(), [], number, {}
                        continue
                    if fence in SHELL_FENCES:
                        commands += _commands_of("\n".join(block), f"{name}:{start}", variables)
                    fence = None
                elif fence is not None:
                    block.append(line)
                else:
                    for span in re.findall(r"`((?:python|torchrun) [^`]*(?:tools|bench)/[^`]+)`", line):
                        commands += _commands_of(span, f"{name}:{number}", {})
    return commands


COMMANDS = doc_commands()


def script_and_argv(command: DocCommand) -> tuple[str, list[str]] | None:
    """(``tools/x.py`` or a console script, its arguments) for a tool command, else ``None``."""
    words = command.words
    if words[0] in console_scripts():
        return words[0], words[1:]
    if words[0] == "torchrun":  # torchrun's own options come before the script
        script = next(i for i, w in enumerate(words) if w.endswith(".py"))
        return words[script], words[script + 1 :]
    if words[0] == "python" and len(words) > 1 and re.fullmatch(r"(tools|bench)/\w+\.py", words[1]):
        return words[1], words[2:]
    return None


# A command whose arguments end in ``...`` is a sketch
# (``torchrun --nproc_per_node=N tools/train_net.py ...``): only its script is checked.
TOOL_COMMANDS = [c for c in COMMANDS if script_and_argv(c)]
SKETCHES = [c for c in TOOL_COMMANDS if c.words[-1] == "..."]
TOOL_COMMANDS = [c for c in TOOL_COMMANDS if c not in SKETCHES]


class _Parsed(Exception):
    def __init__(self, namespace):
        self.namespace = namespace


def _load_script(script: str):
    if script in console_scripts():
        module, _ = console_scripts()[script].split(":")
        return importlib.import_module(module)
    path = os.path.join(REPO, script)
    assert os.path.isfile(path), f"{script} does not exist"
    name = f"docs_{os.path.dirname(script)}_{os.path.basename(script)[:-3]}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        with contextlib.ExitStack() as stack:
            stack.callback(sys.path.remove, os.path.dirname(path))
            sys.path.insert(0, os.path.dirname(path))  # bench scripts import their neighbours
            spec.loader.exec_module(module)
        sys.modules[name] = module
    module = sys.modules[name]
    # tools/x.py re-exports the main of reid_dff.cli.x, whose module has the parser
    main = getattr(module, "main", None)
    return sys.modules[main.__module__] if main is not None and main.__module__ != name else module


def parse_tool_args(script: str, argv: list[str], monkeypatch) -> argparse.Namespace:
    """The namespace ``script``'s own parser makes of ``argv``; the tool itself does not run.

    Flags are matched exactly: a document does not rely on argparse completing an abbreviated flag.
    """
    module = _load_script(script)
    init = argparse.ArgumentParser.__init__

    def init_without_abbreviations(parser, *args, **kwargs):
        init(parser, *args, **{**kwargs, "allow_abbrev": False})

    monkeypatch.setattr(argparse.ArgumentParser, "__init__", init_without_abbreviations)
    if hasattr(module, "parse_args"):
        return module.parse_args(argv)
    original = argparse.ArgumentParser.parse_args

    def parse_and_stop(parser, args=None, namespace=None):
        raise _Parsed(original(parser, args, namespace))

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", parse_and_stop)
    monkeypatch.setattr(sys, "argv", [script, *argv])
    try:
        module.main(argv) if inspect.signature(module.main).parameters else module.main()
    except _Parsed as parsed:
        return parsed.namespace
    raise AssertionError(f"{script}: main() returned without parsing its arguments")


def is_placeholder(word: str) -> bool:
    return bool(PLACEHOLDER.fullmatch(word))


def config_files(value: str | None) -> list[str | None]:
    """The config files a ``--config-file`` value stands for (``None``: a placeholder, the defaults)."""
    if value is None or is_placeholder(value):
        return [None]
    pattern = re.sub(r"<[^>]*>|\b[xX]\b", "*", value)
    matches = sorted(glob.glob(os.path.join(REPO, pattern)))
    assert matches, f"config file {value} does not exist"
    return matches


def checked_overrides(opts: list[str]) -> list[str]:
    """``opts`` without the pairs whose value is a placeholder (their keys checked here)."""
    assert len(opts) % 2 == 0, f"KEY VALUE overrides do not pair up: {opts}"
    kept = []
    for key, value in zip(opts[::2], opts[1::2]):
        assert key in config_keys(), f"{key} is not a config key"
        if not is_placeholder(value):
            kept += [key, value]
    return kept


def resolved_configs(namespace: argparse.Namespace):
    """The configs a parsed tool command resolves (defaults + file + overrides), one per config file."""
    opts = getattr(namespace, "opts", None) or getattr(namespace, "overrides", None) or []
    opts = checked_overrides(list(opts))
    return [setup_cfg(path, opts) for path in config_files(getattr(namespace, "config_file", None))]


def test_the_documents_show_the_tools_commands():
    scripts = {script_and_argv(c)[0] for c in TOOL_COMMANDS}
    # a sample that must be found (the extraction would otherwise pass by finding nothing)
    assert {"tools/train_net.py", "tools/eval.py", "tools/search.py", "bench/eval_speed.py"} <= scripts
    assert len(TOOL_COMMANDS) > 50
    assert any(c.words[0] == "pip" for c in COMMANDS) and any(c.words[0] == "pytest" for c in COMMANDS)
    for sketch in SKETCHES:
        assert os.path.isfile(os.path.join(REPO, script_and_argv(sketch)[0])), sketch.where


@pytest.mark.parametrize("command", TOOL_COMMANDS, ids=[c.where for c in TOOL_COMMANDS])
def test_tool_command_parses_and_its_config_resolves(command, monkeypatch):
    script, argv = script_and_argv(command)
    text = shlex.join(command.words)
    try:
        namespace = parse_tool_args(script, argv, monkeypatch)
    except SystemExit as e:
        pytest.fail(f"{command.where}: {script} refuses its arguments (exit {e.code}): {text}")
    monkeypatch.undo()
    for cfg in resolved_configs(namespace):
        assert cfg.OUTPUT_DIR, text


# Where a documented command reads a checkpoint from.
CHECKPOINT_FLAGS = {"--weights", "--base-weights", "MODEL.WEIGHTS", "MODEL.PRETRAIN_PATH"}


def written_run_folders() -> list[str]:
    """Glob patterns of the run folders the configs and the documented commands write."""
    folders = [setup_cfg(path).OUTPUT_DIR for path in glob.glob(os.path.join(REPO, "configs", "**", "*.yaml"),
                                                                  recursive=True)]  # fmt: skip
    for command in TOOL_COMMANDS:
        words = command.words
        folders += [re.sub(r"<[^>]*>|\b[A-Z]+\b", "*", words[i + 1]) for i, w in enumerate(words[:-1])
                    if w in ("OUTPUT_DIR", "--out")]  # fmt: skip
    # tools/run_demo_table.py writes <--out>/<variant>/<trained|untrained>/seed<SEED>
    folders += [f"{out}/*/*/seed*" for out in list(folders)]
    return folders


def test_checkpoints_read_from_output_are_ones_a_run_writes():
    folders = written_run_folders()
    unknown = []
    for command in TOOL_COMMANDS:
        words = command.words
        for flag, value in zip(words, words[1:]):
            if flag in CHECKPOINT_FLAGS and value.startswith("output/"):
                if not any(fnmatch.fnmatch(os.path.dirname(value), folder) for folder in folders):
                    unknown.append(f"{command.where}: {flag} {value}")
    assert not unknown, f"checkpoints in no config's OUTPUT_DIR nor a documented run's: {unknown}"


def test_pip_commands_name_pins_extras_and_files_that_exist():
    with open(os.path.join(REPO, "constraints.txt"), encoding="utf-8") as f:
        pins = dict(line.split("==") for line in f.read().split() if "==" in line)
    parser = configparser.ConfigParser()
    parser.read(os.path.join(REPO, "setup.cfg"))
    extras = set(parser["options.extras_require"])
    pip_commands = [c for c in COMMANDS if c.words[:2] == ["pip", "install"]]
    assert pip_commands
    for command in pip_commands:
        words = command.words[2:]
        for flag, value in zip(words, words[1:]):
            if flag == "-c":
                assert os.path.isfile(os.path.join(REPO, value)), f"{command.where}: no {value}"
            if flag == "-e":
                named = re.fullmatch(r"\.(?:\[([\w,-]+)\])?", value)
                assert named, f"{command.where}: -e {value} is not this repository"
                assert set((named.group(1) or "").split(",")) - {""} <= extras, f"{command.where}: {value}"
        for word in words:
            if "==" in word:
                name, version = word.split("==")
                assert pins.get(name) == version, f"{command.where}: {word} is not the pin of constraints.txt"


def test_pytest_commands_name_paths_and_markers_that_exist():
    with open(os.path.join(REPO, "pyproject.toml"), encoding="utf-8") as f:
        markers = set(re.findall(r'^\s*"(\w+):', f.read(), flags=re.M))
    for command in (c for c in COMMANDS if c.program == "pytest"):
        words = command.words[1:]
        for i, word in enumerate(words):
            if words[i - 1] == "-m" and i > 0:
                assert set(re.findall(r"\w+", word)) - {"not", "and", "or"} <= markers, command.where
            elif not word.startswith("-"):
                assert os.path.exists(os.path.join(REPO, word.split("::")[0])), f"{command.where}: {word}"
