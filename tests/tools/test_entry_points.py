"""The console scripts of setup.cfg: each resolves to a reid_dff.cli main, answers --help, and is the same
main that tools/<name>.py runs from a checkout."""

import configparser
import importlib
import importlib.util
import os
import subprocess
import sys

import pytest
from script_loader import REPO, load_tool

# tools/<script>.py -> the console script that must run the same main (the run_*_table.py scripts are
# repo-maintenance drivers of tools/train_net.py, deliberately not installed).
TOOL_COMMANDS = {
    "train_net": "reid-dff-train",
    "eval": "reid-dff-eval",
    "make_synthetic": "reid-dff-make-synthetic",
    "inspect_datasets": "reid-dff-inspect-datasets",
    "complexity": "reid-dff-complexity",
    "extract_features": "reid-dff-extract-features",
    "build_index": "reid-dff-build-index",
    "search": "reid-dff-search",
    "visualize": "reid-dff-visualize",
    "export_model": "reid-dff-export-model",
}
MAINTENANCE_SCRIPTS = {"run_demo_table", "run_officehome_table", "run_two_stage_table"}


def console_scripts() -> dict[str, str]:
    """``{command: "module:function"}`` as declared in setup.cfg's ``[options.entry_points]``."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(os.path.join(REPO, "setup.cfg"), encoding="utf-8")
    lines = parser.get("options.entry_points", "console_scripts").strip().splitlines()
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


def resolve(target: str):
    """The object a ``module:function`` entry point names, imported the way console scripts do."""
    module_name, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def test_every_tool_has_exactly_its_console_script():
    scripts = {os.path.splitext(name)[0] for name in os.listdir(os.path.join(REPO, "tools"))}
    assert scripts - MAINTENANCE_SCRIPTS == set(TOOL_COMMANDS)
    assert set(console_scripts()) == set(TOOL_COMMANDS.values())


@pytest.mark.parametrize("command", sorted(TOOL_COMMANDS.values()))
def test_console_script_resolves_to_a_cli_main(command):
    target = console_scripts()[command]
    assert target.startswith("reid_dff.cli.") and target.endswith(":main"), target
    assert callable(resolve(target))


@pytest.mark.parametrize("command", sorted(TOOL_COMMANDS.values()))
def test_console_script_main_prints_help_and_exits_0(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        resolve(console_scripts()[command])(["--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith("usage: ")


@pytest.mark.parametrize(("tool", "command"), sorted(TOOL_COMMANDS.items()))
def test_tools_script_runs_the_console_scripts_main(tool, command):
    # One place per concept: the script in tools/ is a wrapper, not a second copy of the tool.
    assert load_tool(tool).main is resolve(console_scripts()[command])


def test_the_train_script_keeps_the_names_its_tests_use():
    from reid_dff.cli import train_net

    tool = load_tool("train_net")
    assert (tool.parse_args, tool.run) == (train_net.parse_args, train_net.run)


@pytest.mark.parametrize(("broken", "status"), [(False, 0), (True, 1)])
def test_main_return_value_is_the_process_exit_status(tmp_path, broken, status):
    # console_scripts run sys.exit(main()): main must return an exit status (or None), never a report.
    if broken:
        (tmp_path / "viper").mkdir()  # present but without cam_a/ and cam_b/
    code = "import sys; from reid_dff.cli.inspect_datasets import main; sys.exit(main())"
    result = subprocess.run(
        [sys.executable, "-c", code, "--root", str(tmp_path)],
        cwd=tmp_path,  # not the repo root: the installed package must be enough
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == status, result.stderr
    assert ("[error] viper" in result.stdout) == broken
