"""tools/visualize.py mask-stats: a checkpoint's mask diagnostics on datasets, one domain per --dataset."""

import json

import pytest
from test_figures import load_tool
from tiny_reid import write_market_images

from reid_dff.inference.extractor import FeatureExtractor
from reid_dff.modeling.backbones import FourierUnit


def write_folder(root, folder, seed):
    names = [f"{pid:04d}_c{cam}s1_00000{i}_00.jpg" for pid in (1, 2) for cam in (1, 2) for i in (1, 2)]
    write_market_images(root / folder / "bounding_box_train", names[:4], seed=seed)
    write_market_images(root / folder / "query", names[4:6], seed=seed + 1)
    write_market_images(root / folder / "gallery", names[6:], seed=seed + 2)


def test_mask_stats_of_a_checkpoint_on_two_datasets(tiny_models, tmp_path):
    write_folder(tmp_path / "data", "a", 0)
    write_folder(tmp_path / "data", "b", 10)
    output = tmp_path / "stats.json"
    argv = ["mask-stats", "--weights", str(tiny_models[0]), "--dataset", "image_folder:a"]
    argv += ["--dataset", "image_folder:b", "--data-root", str(tmp_path / "data"), "--max-images", "12"]
    load_tool("visualize").main([*argv, "--output", str(output), "--device", "cpu"])
    stats = json.loads(output.read_text())
    model = FeatureExtractor(tiny_models[0], device="cpu").model
    assert len(stats["units"]) == sum(isinstance(m, FourierUnit) for m in model.modules()) > 0
    assert stats["images"] == 12 and stats["domains"] == [0, 1] and stats["split"] == "all"
    assert stats["summary"]["domain_difference"] is not None


def test_mask_stats_of_a_model_without_masks_is_one_line(tiny_models, tmp_path, capsys):
    write_folder(tmp_path / "data", "a", 0)
    argv = ["mask-stats", "--weights", str(tiny_models[1]), "--dataset", "image_folder:a"]
    with pytest.raises(SystemExit) as info:
        load_tool("visualize").main(
            [*argv, "--data-root", str(tmp_path / "data"), "--output", str(tmp_path / "s.json")]
        )
    assert info.value.code == 1
    assert "has no masks" in capsys.readouterr().err and not (tmp_path / "s.json").exists()
