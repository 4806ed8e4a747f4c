"""The committed split files, their regeneration rule and hashes, the inspect tool."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fake_trees import make_market1501, make_viper

from reid_dff.data.datasets import (
    DatasetLayoutError,
    DatasetOptionError,
    SplitFileError,
    build_dataset,
)
from reid_dff.data.datasets.protocol_splits import (
    SPLIT_SPECS,
    format_split_document,
    generate_splits,
    load_split_file,
    packaged_split_file,
    resolve_ilids_choice,
    split_sha256,
)
from reid_dff.utils import sha256_file

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("name", sorted(SPLIT_SPECS))
def test_committed_split_files_regenerate_byte_for_byte(name):
    path = packaged_split_file(name)
    with open(path, encoding="utf-8") as f:
        committed = f.read()
    doc = json.loads(committed)
    assert format_split_document(generate_splits(name, doc["seed"])) == committed
    assert split_sha256(path) == sha256_file(path)
    assert "/" not in json.dumps(doc["splits"])  # ids only, no paths


@pytest.mark.parametrize(
    ("name", "num_ids", "num_train"), [("viper", 632, 316), ("prid", 200, 100), ("ilids", 119, 59)]
)
def test_split_contents(name, num_ids, num_train):
    splits = load_split_file(packaged_split_file(name), name)
    assert [s["split_id"] for s in splits] == list(range(10))
    all_ids = set(SPLIT_SPECS[name][0])
    assert len(all_ids) == num_ids
    for split in splits:
        assert len(split["train_ids"]) == num_train
        assert set(split["train_ids"]) | set(split["test_ids"]) == all_ids
        assert not set(split["train_ids"]) & set(split["test_ids"])
    assert len({tuple(s["test_ids"]) for s in splits}) == 10  # ten different splits


def test_ilids_choice_picks_two_distinct_indices():
    for n in range(2, 9):
        for a in range(0, 40, 3):
            for b in range(0, 40, 5):
                q, g = resolve_ilids_choice(n, (a, b))
                assert 0 <= q < n and 0 <= g < n and q != g


def test_bad_split_files_are_specific_errors(tmp_path):
    make_viper(str(tmp_path), num_pairs=20)
    cases = {
        "not json": ("{oops", "cannot read split file"),
        "other dataset": (json.dumps({"dataset": "prid", "splits": []}), "is not a viper split file"),
        "overlap": (
            json.dumps({"dataset": "viper", "splits": [{"train_ids": [1, 2], "test_ids": [2, 3]}]}),
            "in both train_ids and test_ids",
        ),
        "types": (
            json.dumps({"dataset": "viper", "splits": [{"train_ids": ["a"], "test_ids": []}]}),
            "lists of non-negative integers",
        ),
        # a negative pair index would silently take cam_a[-1]
        "negative": (
            json.dumps({"dataset": "viper", "splits": [{"train_ids": [1], "test_ids": [-1, 2]}]}),
            "lists of non-negative integers",
        ),
        "one image list": (
            json.dumps(
                {
                    "dataset": "viper",
                    "splits": [{"train_ids": [1], "test_ids": [2], "query_images": ["a.bmp"]}],
                }
            ),
            'only one of "query_images" and "gallery_images"',
        ),
        "image outside the folder": (
            json.dumps(
                {
                    "dataset": "viper",
                    "splits": [
                        {
                            "train_ids": [1],
                            "test_ids": [2],
                            "query_images": ["../../secret.jpg"],
                            "gallery_images": ["a.bmp"],
                        }
                    ],
                }
            ),
            r"query_images must be a list of file names .*no '\.\.'",
        ),
    }
    for label, (text, message) in cases.items():
        path = tmp_path / f"{label}.json"
        path.write_text(text)
        with pytest.raises(SplitFileError, match=message):
            build_dataset("viper", str(tmp_path), split_file=str(path))
    with pytest.raises(SplitFileError, match="not found"):
        build_dataset("viper", str(tmp_path), split_file=str(tmp_path / "nope.json"))
    with pytest.raises(DatasetOptionError, match=r"split_id must be in 0..9"):
        build_dataset("viper", str(tmp_path), split_id=10)
    # the packaged split needs all 632 pairs: a partial copy is an error naming the count
    with pytest.raises(DatasetLayoutError, match="has only 20 pairs"):
        build_dataset("viper", str(tmp_path))


def test_inspect_tool_prints_table_and_problems(tmp_path):
    make_market1501(str(tmp_path))
    (tmp_path / "viper").mkdir()  # present but broken
    result = subprocess.run(
        [sys.executable, "tools/inspect_datasets.py", "--root", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    out = result.stdout
    assert (
        "[differs] market1501" in out and "3 (751)" in out and "market1501 train: 3 ids, published 751" in out
    )
    assert "[error] viper" in out and "cam_a/" in out
    assert "absent" in out and "msmt17" in out


def test_inspect_tool_names_a_missing_root_and_unknown_datasets(tmp_path, capsys):
    from reid_dff.cli.inspect_datasets import main

    assert main(["--root", str(tmp_path / "nowhere")]) == 1
    assert "--root " + str(tmp_path / "nowhere") + " is not a directory" in capsys.readouterr().err
    make_market1501(str(tmp_path))
    assert main(["--root", str(tmp_path), "--datasets", "markt1501", "market1501"]) == 1
    out = capsys.readouterr().out
    assert "unknown dataset 'markt1501'; known names:" in out and "market1501" in out.split("known names:")[1]
