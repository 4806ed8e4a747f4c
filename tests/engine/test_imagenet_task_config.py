"""The imagenet task's config checks and its report table (no training)."""

from __future__ import annotations

import pytest

from reid_dff.config import ConfigError, setup_cfg
from reid_dff.data.datasets import DatasetOptionError
from reid_dff.tasks import TASK_REGISTRY, ClassificationTask, ImageNetTask, build_task
from reid_dff.tasks.imagenet import build_pretraining_data, format_imagenet_markdown

CONFIG = "configs/imagenet/dff_resnet18.yaml"


def test_the_stage1_recipes_build_the_imagenet_task():
    task = build_task(setup_cfg(CONFIG))
    assert type(task) is ImageNetTask and isinstance(task, ClassificationTask)
    assert TASK_REGISTRY.get("imagenet") is ImageNetTask
    task.check_config()  # TARGETS [] is accepted


def test_a_target_is_a_config_error():
    task = build_task(setup_cfg(CONFIG, ["DATASETS.TARGETS", "['officehome:Art']"]))
    with pytest.raises(ConfigError, match=r"DATASETS.TARGETS is \['officehome:Art'\]"):
        task.check_config()


def test_exactly_one_source_is_required(tmp_path):
    cfg = setup_cfg(
        CONFIG, ["DATASETS.SOURCES", "['imagenet', 'class_folder:x']", "DATASETS.ROOT", str(tmp_path)]
    )
    with pytest.raises(DatasetOptionError, match="trains on one dataset"):
        build_pretraining_data(cfg)


def test_the_report_table_shows_last_and_selected_top1_top5():
    report = {
        "sources": ["imagenet"],
        "num_classes": 1000,
        "num_images": 50000,
        "top1": 0.7231,
        "top5": 0.9012,
        "epoch": 90,
        "selected": {"epoch": 88, "top1": 0.7245, "top5": 0.9020},
    }
    table = format_imagenet_markdown(report)
    assert "| last (epoch 90) | 72.31 | 90.12 |" in table
    assert "| selected (epoch 88) | 72.45 | 90.20 |" in table
    assert table.startswith("source: imagenet; 1000 classes; val images 50000")
