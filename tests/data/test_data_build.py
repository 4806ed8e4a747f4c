"""Training-set composition, loaders (batch dicts, bad images, resume) and protocol test sets."""

from __future__ import annotations

import os
import warnings
from collections import Counter

import pytest
import torch
from fake_trees import make_duke, make_market1501, make_market_style, make_msmt17, make_viper

from reid_dff.config import get_cfg
from reid_dff.data import build as data_build
from reid_dff.data.build import (
    all_samples,
    build_test_loader,
    build_test_sets,
    build_train_loader,
    build_train_set,
)
from reid_dff.data.datasets import DatasetOptionError, DatasetStatisticsWarning, packaged_split_file
from reid_dff.data.io import BadImageError
from reid_dff.utils import sha256_file

pytestmark = pytest.mark.filterwarnings("ignore::reid_dff.data.datasets.DatasetStatisticsWarning")


@pytest.fixture
def ensure_calls(monkeypatch):
    """Stub the synthetic generator's ``ensure_synthetic_data``; records the roots it was called with."""
    import reid_dff.data.synthetic as synthetic

    calls = []
    monkeypatch.setattr(
        synthetic, "ensure_synthetic_data", lambda cfg, specs: calls.append(cfg.DATASETS.ROOT)
    )
    return calls


@pytest.fixture
def root(tmp_path, ensure_calls):
    """Market-1501, DukeMTMC-reID and two synthetic domains (Market-style fakes)."""
    make_market1501(str(tmp_path))
    make_duke(str(tmp_path))
    for k in (0, 1):
        make_market_style(str(tmp_path / "synthetic" / f"domain{k}"), {1: [1, 2], 2: [3]}, {3: [1]}, {3: [2]})
    return tmp_path


def cfg_for(root, sources, combine_all=False, **overrides):
    cfg = get_cfg()
    cfg.DATASETS.ROOT = str(root)
    cfg.DATASETS.SOURCES = list(sources)
    cfg.DATASETS.COMBINE_ALL = combine_all
    cfg.INPUT.SIZE_TRAIN = [16, 8]
    cfg.INPUT.SIZE_TEST = [16, 8]
    cfg.INPUT.PADDING = 2
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.DATALOADER.NUM_INSTANCES = 2
    cfg.SOLVER.IMS_PER_BATCH = 6
    cfg.TEST.IMS_PER_BATCH = 4
    for key, value in overrides.items():
        node = cfg
        *parents, leaf = key.split(".")
        for p in parents:
            node = node[p]
        node[leaf] = value
    return cfg


def test_train_set_relabels_contiguously_with_domains(root, ensure_calls):
    ts = build_train_set(cfg_for(root, ["market1501", "dukemtmcreid", "synthetic:1"]))
    assert ensure_calls == [str(root)]  # synthetic source -> ensure_synthetic_data(cfg) first
    assert ts.names == ["market1501", "dukemtmcreid", "synthetic:1"] and ts.num_domains == 3
    labels = sorted({s.pid for s in ts.samples})
    assert labels == list(range(ts.num_classes)) == list(range(3 + 2 + 2))
    # every label belongs to exactly one source, and its images are the source's images of one raw id
    by_label = {}
    for s in ts.samples:
        by_label.setdefault(s.pid, set()).add(s.domain)
    assert all(len(d) == 1 for d in by_label.values())
    assert Counter(s.domain for s in ts.samples) == {0: 7, 1: 3, 2: 3}
    assert ts.pid_names[0] == "market1501/train/2"
    assert all(ts.samples[i].path.startswith(str(root / "synthetic" / "domain1")) for i in range(10, 13))
    # cameras of different sources never share an id: market 0..5, duke from 6
    market_cams = {s.camid for s in ts.samples if s.domain == 0}
    duke_cams = {s.camid for s in ts.samples if s.domain == 1}
    assert max(market_cams) < min(duke_cams)


def test_combine_all_adds_query_gallery_without_junk_and_keeps_id_spaces_apart(root):
    ts = build_train_set(cfg_for(root, ["market1501"], combine_all=True))
    # market: train 3 ids/7 images + test ids {1, 3}: query 3 images + gallery 3 (distractor 0 and junk -1 dropped)
    assert ts.num_classes == 5 and len(ts.samples) == 13
    make_msmt17(str(root))
    ts = build_train_set(cfg_for(root, ["msmt17"], combine_all=True))
    # train ids {0,1,2} (+ val id 3) and test ids {0,1,2} overlap numerically but are different people
    assert ts.num_classes == 4 + 3
    assert len(ts.samples) == 4 + 2 + 2 + 4
    assert sum(name.startswith("msmt17/test/") for name in ts.pid_names) == 3


def test_train_loader_batches(root):
    cfg = cfg_for(
        root, ["market1501", "dukemtmcreid", "synthetic:0"], **{"DATALOADER.SAMPLER": "domain_balanced"}
    )
    ts = build_train_set(cfg)
    loader = build_train_loader(cfg, ts)
    label_of = {s.path: (s.pid, s.camid, s.domain) for s in ts.samples}
    batches = [b for _, b in zip(range(5), loader)]
    for batch in batches:
        assert set(batch) == {"images", "pids", "camids", "domains", "paths"}
        assert batch["images"].shape == (6, 3, 16, 8) and batch["images"].dtype == torch.float32
        assert batch["pids"].dtype == torch.long
        for i, path in enumerate(batch["paths"]):
            assert label_of[path] == (
                int(batch["pids"][i]),
                int(batch["camids"][i]),
                int(batch["domains"][i]),
            )
        assert Counter(batch["domains"].tolist()) == {0: 2, 1: 2, 2: 2}
    assert loader.batches_consumed == 5


@pytest.mark.parametrize("workers", [0, 1])
def test_train_loader_resume_continues_exactly(root, workers):
    # with a worker the loader prefetches ahead; state_dict still reflects the batches handed out
    options = {
        "DATALOADER.SAMPLER": "random_identity",
        "SOLVER.IMS_PER_BATCH": 4,
        "DATALOADER.NUM_WORKERS": workers,
    }
    cfg = cfg_for(root, ["market1501"], **options)
    ts = build_train_set(cfg)
    reference = [b["paths"] for _, b in zip(range(8), build_train_loader(cfg, ts))]
    first = build_train_loader(cfg, ts)
    it = iter(first)
    for _ in range(3):
        next(it)
    state = first.state_dict()
    assert state["step"] == 3
    resumed = build_train_loader(cfg, ts)
    resumed.load_state_dict(state)
    assert [b["paths"] for _, b in zip(range(5), resumed)] == reference[3:]


def test_ddp_ranks_split_the_global_batch(root):
    cfg = cfg_for(root, ["market1501", "dukemtmcreid"], **{"SOLVER.IMS_PER_BATCH": 8})
    ts = build_train_set(cfg)
    loaders = [build_train_loader(cfg, ts, rank=r, world_size=2) for r in range(2)]
    for b0, b1 in zip(*(iter(loader) for loader in loaders)):
        assert len(b0["paths"]) == len(b1["paths"]) == 4
        assert not set(b0["pids"].tolist()) & set(b1["pids"].tolist())
        break


def corrupt_one(ts):
    bad = ts.samples[0].path
    with open(bad, "wb") as f:
        f.write(b"\xff\xd8 definitely not a jpeg")
    return bad


def test_bad_image_is_an_error_naming_the_file_by_default(root):
    cfg = cfg_for(root, ["market1501"], **{"DATALOADER.SAMPLER": "random", "SOLVER.IMS_PER_BATCH": 7})
    ts = build_train_set(cfg)
    bad = corrupt_one(ts)
    with pytest.raises(BadImageError, match=os.path.basename(bad)):
        next(iter(build_train_loader(cfg, ts)))
    # also through a worker process
    cfg.DATALOADER.NUM_WORKERS = 1
    with pytest.raises(BadImageError, match=os.path.basename(bad)):
        next(iter(build_train_loader(cfg, ts)))


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_image_skip_drops_and_counts(root, workers):
    cfg = cfg_for(
        root, ["market1501"], **{"DATALOADER.ON_BAD_IMAGE": "skip", "DATALOADER.NUM_WORKERS": workers}
    )
    ts = build_train_set(cfg)
    bad = corrupt_one(ts)
    loader = build_test_loader(cfg, ts.samples)  # every sample once, in order
    batches = list(loader)
    paths = [p for b in batches for p in b["paths"]]
    assert bad not in paths and len(paths) == len(ts.samples) - 1
    assert paths == [s.path for s in ts.samples if s.path != bad]
    assert loader.num_skipped == 1
    assert [len(b["paths"]) for b in batches] == [3, 3]  # 7 samples in batches of 4, one dropped


def test_test_sets_big_and_small_targets(root):
    make_viper(str(root))
    cfg = cfg_for(root, ["market1501"], **{"DATASETS.SPLIT_IDS": [0, 3]})
    (market,) = build_test_sets(cfg, "market1501")
    assert market.split_id is None and market.split_file is None and market.split_sha256 is None
    assert len(market.query) == 3 and len(market.gallery) == 5
    viper = build_test_sets(cfg, "viper")
    assert [t.split_id for t in viper] == [0, 3]
    assert viper[0].split_file == packaged_split_file("viper")
    assert viper[0].split_sha256 == sha256_file(packaged_split_file("viper"))
    union = all_samples(viper)
    assert len({s.path for s in union}) == len(union) <= 1264
    assert {s.path for t in viper for s in t.query + t.gallery} == {s.path for s in union}
    loader = build_test_loader(cfg, union[:5])
    assert next(iter(loader))["paths"] == [s.path for s in union[:4]]


def test_configuration_errors(root):
    with pytest.raises(DatasetOptionError, match="DATASETS.SOURCES is empty"):
        build_train_set(cfg_for(root, []))
    with pytest.raises(DatasetOptionError, match="more than once"):
        build_train_set(cfg_for(root, ["market1501", "market1501"]))
    with pytest.raises(DatasetOptionError, match="training-only"):
        build_test_sets(cfg_for(root, ["market1501"]), "cuhksysu")
    ts = build_train_set(cfg_for(root, ["market1501"]))
    with pytest.raises(DatasetOptionError, match="DATALOADER.SAMPLER 'balanced' is unknown"):
        build_train_loader(cfg_for(root, ["market1501"], **{"DATALOADER.SAMPLER": "balanced"}), ts)
    with pytest.raises(DatasetOptionError, match="ON_BAD_IMAGE must be one of"):
        build_test_loader(cfg_for(root, ["market1501"], **{"DATALOADER.ON_BAD_IMAGE": "ignore"}), ts.samples)
    with pytest.raises(DatasetOptionError, match="divisible by the 4 ranks"):
        build_train_loader(cfg_for(root, ["market1501"]), ts, rank=0, world_size=4)
    assert data_build.dataset_options(get_cfg(), "cuhk03")["boxes"] == "detected"


def test_statistics_warning_is_raised_on_load(root):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        build_train_set(cfg_for(root, ["market1501"]))
    assert any(issubclass(w.category, DatasetStatisticsWarning) for w in caught)


def test_synthetic_sources_end_to_end_with_the_generator(tmp_path):
    """build_train_set generates the synthetic domains on first use and reads them with our parser."""
    pytest.importorskip("reid_dff.data.synthetic")
    cfg = cfg_for(tmp_path, ["synthetic:0", "synthetic:1"])
    section = cfg.DATASETS.SYNTHETIC
    section.NUM_DOMAINS, section.IDS_TRAIN, section.IDS_TEST = 2, 4, 2
    section.HEIGHT, section.WIDTH = 32, 16
    if "CAMERAS" in section:
        section.CAMERAS, section.IMAGES_PER_CAMERA = 2, 2
    cfg.SOLVER.IMS_PER_BATCH = 4
    ts = build_train_set(cfg)
    assert ts.num_domains == 2 and ts.num_classes == 8
    batch = next(iter(build_train_loader(cfg, ts)))
    assert batch["images"].shape == (4, 3, 16, 8)
    assert sorted(batch["domains"].tolist()) == [0, 0, 1, 1]
    (test_set,) = build_test_sets(cfg, "synthetic:1")
    assert {s.pid for s in test_set.query} <= {s.pid for s in test_set.gallery}
    with pytest.raises(DatasetOptionError, match=r"synthetic:9: .* holds domains 0, 1 only"):
        build_test_sets(cfg, "synthetic:9")


def test_augmentations_are_the_same_with_any_number_of_workers_and_after_a_resume(root):
    # flips, crops and (high-probability) random erasing all draw random numbers
    options = {
        "DATALOADER.SAMPLER": "random_identity",
        "SOLVER.IMS_PER_BATCH": 4,
        "INPUT.RANDOM_ERASING.ENABLED": True,
        "INPUT.RANDOM_ERASING.PROB": 0.9,
    }
    images = {}
    for workers in (0, 2):
        cfg = cfg_for(root, ["market1501"], **options, **{"DATALOADER.NUM_WORKERS": workers})
        ts = build_train_set(cfg)
        images[workers] = [b["images"] for _, b in zip(range(4), build_train_loader(cfg, ts))]
        # and a loader resumed at step 2 gives batches 2 and 3 again, pixels included
        resumed = build_train_loader(cfg, ts)
        resumed.load_state_dict({**resumed.state_dict(), "step": 2})
        for expected, (_, batch) in zip(images[workers][2:], zip(range(2), resumed)):
            assert torch.equal(batch["images"], expected)
    for a, b in zip(images[0], images[2]):
        assert torch.equal(a, b)
    # the seed decides the augmentation: the same seed twice gives the same pixels, other seeds vary
    dataset = build_train_loader(cfg, ts).dataset
    first = dataset[(0, 5)]["image"]
    assert torch.equal(dataset[(0, 5)]["image"], first)
    assert any(not torch.equal(dataset[(0, seed)]["image"], first) for seed in range(6, 14))


def test_loading_a_training_batch_leaves_the_main_process_random_state_alone(root):
    cfg = cfg_for(
        root, ["market1501"], **{"DATALOADER.SAMPLER": "random_identity", "SOLVER.IMS_PER_BATCH": 4}
    )
    loader = build_train_loader(cfg, build_train_set(cfg))
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    next(iter(loader))
    assert torch.equal(torch.rand(3), expected)
