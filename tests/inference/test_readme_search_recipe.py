"""The README's gallery-search recipe, run as written (issue 18 item 7) with tiny checkpoints placed at the
paths it names: it writes only under output/, and its Base model is the one the README says to train."""

import json
import os
import shlex

import pytest
from script_loader import REPO, load_tool
from tiny_reid import save_tiny_checkpoint, tiny_cfg

from reid_dff.config import setup_cfg
from reid_dff.data import build_test_sets
from reid_dff.data.synthetic import ensure_synthetic_data


def readme_commands(section):
    """The shell commands of the code blocks of README section ``section`` (continuations joined)."""
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as f:
        text = f.read()
    body = text.split(f"## {section}\n", 1)[1].split("\n## ", 1)[0]
    commands, fence, block = [], None, []
    for line in body.splitlines():
        if line.startswith("```"):
            if fence is None:
                fence, block = line, []
                continue
            if fence == "```":  # a plain block: shell commands (not ```python)
                for command in "\n".join(block).replace("\\\n", " ").splitlines():
                    words = shlex.split(command, comments=True)
                    if words:
                        commands.append(words)
            fence = None
        elif fence is not None:
            block.append(line)
    return commands


@pytest.mark.e2e
def test_readme_search_recipe_runs_as_written_and_writes_only_under_output(tmp_path, monkeypatch, capsys):
    cfg = tiny_cfg(str(tmp_path / "data"))
    ensure_synthetic_data(cfg)
    query_dir = os.path.dirname(build_test_sets(cfg, "synthetic:0")[0].query[0].path)
    monkeypatch.chdir(tmp_path)
    # Tiny models where the README's runs leave theirs (the configs' OUTPUT_DIRs).
    demo_dir = setup_cfg(os.path.join(REPO, "configs", "synthetic_demo.yaml")).OUTPUT_DIR
    os.makedirs(tmp_path / demo_dir)
    save_tiny_checkpoint(tmp_path / demo_dir / "last.pth", cfg)
    commands = readme_commands("Gallery search and pictures")
    tools = [os.path.basename(words[1]) for words in commands]
    assert tools == ["extract_features.py", "build_index.py", "search.py", "visualize.py", "train_net.py",
                     "visualize.py"], tools  # fmt: skip
    train = commands[4]  # the Base run: not trained here; its config must be valid and land where read
    config, opts = train[train.index("--config-file") + 1], train[train.index("--config-file") + 2 :]
    base_cfg = setup_cfg(os.path.join(REPO, config), opts)
    assert base_cfg.MODEL.BACKBONE == "resnet18"
    base_weights = commands[5][commands[5].index("--base-weights") + 1]
    assert base_weights == os.path.join(base_cfg.OUTPUT_DIR, "last.pth")
    assert commands[0][commands[0].index("--weights") + 1] == os.path.join(demo_dir, "last.pth")
    os.makedirs(os.path.dirname(tmp_path / base_weights))
    save_tiny_checkpoint(tmp_path / base_weights, tiny_cfg(str(tmp_path / "data"), backbone="resnet18"))
    before = set(os.listdir(tmp_path))
    for words in [c for c in commands if c[1] != "tools/train_net.py"]:
        # The tiny tree has one domain: its domain 0 plays the demo's unseen domain 3.
        stand_in = {"synthetic:3": "synthetic:0", "datasets/synthetic/domain3/query": query_dir}
        argv = [stand_in.get(word, word) for word in words]
        assert argv[0] == "python" and argv[1].startswith("tools/")
        load_tool(os.path.basename(argv[1])[: -len(".py")]).main(argv[2:])
    assert set(os.listdir(tmp_path)) == before  # nothing beside output/ (and the data)
    search = tmp_path / demo_dir / "search"
    assert sorted(os.listdir(search)) == [
        "gallery.npz",
        "index",
        "ranked.png",
        "results.html",
        "results.json",
    ]
    report = json.loads((search / "results.json").read_text())
    assert report["camera_filtering"] is True and set(report["cmc"]) >= {"1", "5", "10"}
    assert (tmp_path / demo_dir / "activations.png").stat().st_size > 0
    assert "valid queries: R1" in capsys.readouterr().err
