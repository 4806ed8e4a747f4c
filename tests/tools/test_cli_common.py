"""reid_dff.cli.common: one line per user error (with the tool's remedy) and flags-first parsing."""

import argparse

import pytest

from reid_dff.cli.common import (
    ToolUsageError,
    add_overrides,
    config_keys,
    exit_on_user_error,
    parse_flags_first,
    user_error_line,
)
from reid_dff.config import ConfigError, ConfigKeyError, get_cfg
from reid_dff.data.datasets.base import DatasetLayoutError
from reid_dff.errors import ReidDffError


def test_a_user_error_is_one_line_with_the_remedy_of_its_most_specific_class(capsys):
    remedies = {ConfigError: "general remedy", ConfigKeyError: "key remedy"}
    with pytest.raises(SystemExit) as info, exit_on_user_error("tool.py", remedies):
        raise ConfigKeyError("unknown config key MODEL.X.")
    assert info.value.code == 1
    assert capsys.readouterr().err == "tool.py: error: unknown config key MODEL.X; key remedy\n"
    assert (
        user_error_line("t", ConfigError("bad value 3"), remedies) == "t: error: bad value 3; general remedy"
    )
    assert user_error_line("t", ToolUsageError("give --weights")) == "t: error: give --weights"


@pytest.mark.parametrize("error", [ToolUsageError("x"), DatasetLayoutError("x"), FileNotFoundError("x")])
def test_the_family_and_missing_files_are_user_errors(error, capsys):
    with pytest.raises(SystemExit) as info, exit_on_user_error("tool.py"):
        raise error
    assert info.value.code == 1 and capsys.readouterr().err == "tool.py: error: x\n"


def test_other_exceptions_are_bugs_and_keep_their_traceback():
    with pytest.raises(ZeroDivisionError), exit_on_user_error("tool.py", {ZeroDivisionError: "no"}):
        raise ZeroDivisionError("a bug")
    assert issubclass(ToolUsageError, ReidDffError)


def test_config_keys_are_the_leaves_of_the_defaults():
    keys = config_keys()
    assert {"SEED", "OUTPUT_DIR", "MODEL.WEIGHTS", "TEST.RERANK.ENABLED"} <= keys
    assert "MODEL" not in keys and "TEST.RERANK" not in keys  # nodes are not overridable values
    cfg = get_cfg()
    for key in keys:
        node = cfg
        for part in key.split("."):
            node = node[part]
        assert not isinstance(node, dict), key


def subcommand_parser():
    parser = argparse.ArgumentParser(prog="tool.py")
    commands = parser.add_subparsers(dest="command", required=True)
    sub = commands.add_parser("draw")
    sub.add_argument("--weights", required=True)
    add_overrides(sub)
    return parser


def test_flags_first_with_a_subcommand(capsys):
    args = parse_flags_first(subcommand_parser(), ["draw", "--weights", "w.pth", "MODEL.DEVICE", "cpu"])
    assert args.weights == "w.pth" and args.opts == ["MODEL.DEVICE", "cpu"]
    with pytest.raises(SystemExit) as info:
        parse_flags_first(subcommand_parser(), ["draw", "MODEL.DEVICE", "cpu", "--weights", "w.pth"])
    assert info.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "tool.py: error: --weights follows the KEY VALUE overrides; flags go before them: [flags] KEY VALUE ..."
    )


def test_flag_values_and_negative_numbers_are_not_flags():
    parser = argparse.ArgumentParser(prog="tool.py")
    parser.add_argument("--output")
    add_overrides(parser)
    args = parse_flags_first(parser, ["--output", "out", "SEED", "-3", "SOLVER.BASE_LR", "-1e-3"])
    assert args.output == "out" and args.opts == ["SEED", "-3", "SOLVER.BASE_LR", "-1e-3"]


def test_a_list_flag_does_not_swallow_the_overrides():
    """``--models base SEED 1``: argparse alone reads SEED as a model (and fails on "invalid choice")."""
    parser = argparse.ArgumentParser(prog="tool.py")
    parser.add_argument("--models", nargs="+", choices=["base", "dff"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    add_overrides(parser)
    args = parse_flags_first(parser, ["--models", "base", "dff", "DATALOADER.NUM_WORKERS", "1", "SEED", "2"])
    assert args.models == ["base", "dff"] and args.opts == ["DATALOADER.NUM_WORKERS", "1", "SEED", "2"]
    args = parse_flags_first(parser, ["--seeds", "1", "2", "MODEL.DEVICE", "cpu"])
    assert args.seeds == [1, 2] and args.opts == ["MODEL.DEVICE", "cpu"]
    args = parse_flags_first(parser, ["--seeds", "3"])
    assert args.seeds == [3] and args.opts == []
    # A key right after a flag is that flag's value (refused by it, if at all), not the overrides' start.
    parser.add_argument("--rerun", action="store_true")
    parser.add_argument("--key")
    args = parse_flags_first(parser, ["--key", "SEED", "--rerun", "SEED", "1", "MODEL.DEVICE", "cpu"])
    assert (args.key, args.rerun, args.opts) == ("SEED", True, ["SEED", "1", "MODEL.DEVICE", "cpu"])
