"""Every YAML under configs/: it loads, a runnable config is model + protocol + schedule, no file restates
a value it would have anyway, names follow one scheme, and every config path the docs name exists."""

from __future__ import annotations

import glob
import itertools
import os
import re

import pytest

from reid_dff.config import get_cfg, load_yaml_with_base, setup_cfg
from reid_dff.config.config import parse_yaml
from reid_dff.data.datasets import parse_dataset_spec

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIGS = os.path.join(REPO, "configs")

# The fragment folders and the top-level sections each may set.
FRAGMENT_SECTIONS = {
    "models": {"MODEL"},
    "protocols": {"DATASETS"},
    "schedules": {"INPUT", "DATALOADER", "SOLVER", "TEST"},
}
ALL = sorted(
    os.path.relpath(p, CONFIGS).replace(os.sep, "/")
    for p in glob.glob(os.path.join(CONFIGS, "**", "*.y*ml"), recursive=True)
)
FRAGMENTS = [p for p in ALL if p.split("/")[0] in FRAGMENT_SECTIONS]
RUNNABLE = [p for p in ALL if p not in FRAGMENTS]

# The paper's dataset codes, as the config names use them.
CODES = {"ma": "market1501", "ms": "msmt17", "cs": "cuhksysu", "c3": "cuhk03", "c2": "cuhk02"}
PROTOCOL1 = {
    "all": ["market1501", "cuhk02", "cuhk03", "cuhksysu"],
    "vpgi": ["viper", "prid", "grid", "ilids"],
}


def read_raw(rel: str) -> dict:
    with open(os.path.join(CONFIGS, rel), encoding="utf-8") as f:
        return parse_yaml(f) or {}


def bases_of(rel: str) -> list[str]:
    """The file's own _BASE_ entries as paths relative to configs/."""
    bases = read_raw(rel).get("_BASE_") or []
    bases = [bases] if isinstance(bases, str) else bases
    folder = os.path.dirname(os.path.join(CONFIGS, rel))
    return [
        os.path.relpath(os.path.normpath(os.path.join(folder, b)), CONFIGS).replace(os.sep, "/")
        for b in bases
    ]


def leaves(mapping: dict, prefix: str = ""):
    for key, value in mapping.items():
        if isinstance(value, dict):
            yield from leaves(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def lookup(mapping, dotted: str):
    for part in dotted.split("."):
        mapping = mapping[part]
    return mapping


def test_the_configs_folder_holds_fragments_and_runnable_configs():
    assert len(FRAGMENTS) >= 10 and len(RUNNABLE) >= 20
    assert all(p.endswith(".yaml") for p in ALL)  # one extension


@pytest.mark.parametrize("rel", FRAGMENTS)
def test_every_fragment_loads_and_sets_only_its_sections(rel):
    folder = rel.split("/")[0]
    merged = load_yaml_with_base(os.path.join(CONFIGS, rel))
    assert set(merged) <= FRAGMENT_SECTIONS[folder], rel
    cfg = get_cfg()
    cfg.merge_from_file(os.path.join(CONFIGS, rel))  # strict keys and types, on top of the defaults
    for base in bases_of(rel):
        assert base.split("/")[0] == folder, f"{rel} inherits {base} from another folder"


@pytest.mark.parametrize("rel", RUNNABLE)
def test_every_runnable_config_is_model_protocols_schedule_plus_a_few_keys(rel):
    raw = read_raw(rel)
    assert isinstance(raw.get("_BASE_"), list), f"{rel}: _BASE_ should list model, protocol, schedule"
    folders = [b.split("/")[0] for b in bases_of(rel)]
    assert folders[0] == "models" and folders[-1] == "schedules", (rel, folders)
    assert len(folders) >= 3 and set(folders[1:-1]) == {"protocols"}, (rel, folders)
    own = dict(leaves({k: v for k, v in raw.items() if k != "_BASE_"}))
    assert "OUTPUT_DIR" in own, rel
    extra = set(own) - {"OUTPUT_DIR", "SEED"}
    assert len(extra) <= 2 and all(k.startswith("MODEL.") for k in extra), (rel, extra)


@pytest.mark.parametrize("rel", RUNNABLE)
def test_every_runnable_config_resolves_and_its_batch_fits_its_sampler(rel):
    from reid_dff.data.datasets import Sample
    from reid_dff.data.samplers import SAMPLER_REGISTRY

    cfg = setup_cfg(os.path.join(CONFIGS, rel))
    # Stage 1 (ImageNet, the generated many-class set) evaluates on its own val split: no held-out target.
    assert cfg.is_frozen() and cfg.DATASETS.SOURCES and (cfg.DATASETS.TARGETS or cfg.MODEL.TASK == "imagenet")
    assert not set(cfg.DATASETS.SOURCES) & set(cfg.DATASETS.TARGETS), rel
    for spec in cfg.DATASETS.SOURCES + cfg.DATASETS.TARGETS:
        parse_dataset_spec(spec)
    # The sampler's own check, on stand-in samples: one identity-rich domain per configured source.
    samples = [
        Sample(f"{d}_{pid}_{i}.jpg", d * 1000 + pid, 0, d)
        for d in range(len(cfg.DATASETS.SOURCES))
        for pid in range(64)
        for i in range(cfg.DATALOADER.NUM_INSTANCES)
    ]
    SAMPLER_REGISTRY.get(cfg.DATALOADER.SAMPLER)(
        samples, cfg.SOLVER.IMS_PER_BATCH, cfg.DATALOADER.NUM_INSTANCES, cfg.SEED, 0, 1
    )


def test_runs_write_to_different_folders():
    out = {rel: setup_cfg(os.path.join(CONFIGS, rel)).OUTPUT_DIR for rel in RUNNABLE}
    assert len(set(out.values())) == len(out)


# A protocol file always names its sources and targets, even where one equals the default (market1501);
# a model file always names its backbone, even the default one (an empty config file is an error).
ALWAYS_NAMED = {"DATASETS.SOURCES", "DATASETS.TARGETS", "MODEL.BACKBONE"}


@pytest.mark.parametrize("rel", ALL)
def test_no_file_sets_a_value_it_would_have_without_it(rel):
    reference = get_cfg()  # the defaults, then the file's own bases in order
    for base in bases_of(rel):
        reference.merge_from_file(os.path.join(CONFIGS, base))
    own = dict(leaves({k: v for k, v in read_raw(rel).items() if k != "_BASE_"}))
    restated = [k for k, v in own.items() if k not in ALWAYS_NAMED and lookup(reference, k) == v]
    assert not restated, f"{rel} restates {restated}"


def test_each_protocol_is_written_once():
    seen: dict[tuple, str] = {}
    for rel in FRAGMENTS:
        datasets = read_raw(rel).get("DATASETS", {})
        if "SOURCES" in datasets or "TARGETS" in datasets:
            task = (tuple(datasets.get("SOURCES", ())), tuple(datasets.get("TARGETS", ())))
            assert task not in seen, f"{rel} repeats the sources/targets of {seen[task]}"
            seen[task] = rel
    for rel in RUNNABLE + [p for p in FRAGMENTS if not p.startswith("protocols/")]:
        assert "DATASETS" not in read_raw(rel), f"{rel} sets DATASETS: that belongs in a protocols/ file"


REID_TASKS = [p for p in RUNNABLE if "/" not in p and p != "synthetic_demo.yaml"]


def test_all_three_reid_protocols_sit_side_by_side():
    names = {p[: -len(".yaml")] for p in REID_TASKS}
    protocol2 = {"ms_cs_c3_to_ma", "ms_ma_cs_to_c3", "ma_cs_c3_to_ms"}
    assert names == {"all_to_vpgi", *protocol2, *(f"com_{n}" for n in protocol2)}


@pytest.mark.parametrize("rel", REID_TASKS)
def test_a_reid_task_is_named_by_its_protocol_file_and_the_name_says_the_data(rel):
    # [com_]<sources>_to_<targets>: com_ (protocol 3) and all_ (protocol 1) train on all images
    name = rel[: -len(".yaml")]
    assert f"protocols/{name}.yaml" in bases_of(rel)
    cfg = setup_cfg(os.path.join(CONFIGS, rel))
    combine_all = name.startswith(("com_", "all_"))
    sources, targets = name.removeprefix("com_").split("_to_")
    expected_sources = PROTOCOL1.get(sources) or [CODES[c] for c in sources.split("_")]
    expected_targets = PROTOCOL1.get(targets) or [CODES[c] for c in targets.split("_")]
    assert (cfg.DATASETS.SOURCES, cfg.DATASETS.TARGETS) == (expected_sources, expected_targets)
    assert cfg.DATASETS.COMBINE_ALL is combine_all
    assert cfg.MODEL.BACKBONE == "dff_resnet50" and cfg.OUTPUT_DIR.endswith(f"/{name}/dff_r50")


@pytest.mark.parametrize("rel", [p for p in RUNNABLE if p.startswith("officehome/")])
def test_an_officehome_task_is_named_by_its_target(rel):
    prefix, domain = re.fullmatch(r"officehome/(officehome|synthetic_officehome)_(\w+)\.yaml", rel).groups()
    assert f"protocols/officehome_{domain}.yaml" in bases_of(rel)
    cfg = setup_cfg(os.path.join(CONFIGS, rel))
    assert [t.lower() for t in cfg.DATASETS.TARGETS] == [f"officehome:{domain}"]
    assert cfg.DATASETS.OFFICEHOME.SYNTHETIC.ENABLED is (prefix == "synthetic_officehome")
    assert cfg.MODEL.TASK == "classification" and len(cfg.DATASETS.SOURCES) == 3


IMAGENET_MODELS = {"resnet18", "resnet50", "ffc_resnet50", "dff_resnet18", "dff_resnet50"}


def test_the_imagenet_recipes_are_one_per_model_with_the_standard_resnet_recipe():
    runnable = {p for p in RUNNABLE if p.startswith("imagenet/")}
    assert runnable == {f"imagenet/{m}.yaml" for m in IMAGENET_MODELS}
    schedules = set()
    for rel in sorted(runnable):
        model = rel[len("imagenet/") : -len(".yaml")]
        assert bases_of(rel) == [
            f"models/{model}_stage1.yaml",
            "protocols/imagenet.yaml",
            "schedules/imagenet_90ep.yaml",
        ]
        cfg = setup_cfg(os.path.join(CONFIGS, rel))
        assert cfg.MODEL.BACKBONE == model and cfg.MODEL.LAST_STRIDE == 2 and cfg.MODEL.HEAD.NECK == "none"
        assert cfg.MODEL.LOSSES.NAMES == ["cross_entropy"] and cfg.MODEL.LOSSES.CE.EPSILON == 0.1
        assert (cfg.DATASETS.SOURCES, cfg.DATASETS.TARGETS) == (["imagenet"], [])
        solver = cfg.SOLVER
        assert (solver.OPTIMIZER, solver.MOMENTUM, solver.WEIGHT_DECAY, solver.NO_DECAY_NORM_BIAS) == (
            "SGD",
            0.9,
            1e-4,
            True,
        )
        assert solver.BASE_LR * 256 / solver.IMS_PER_BATCH == pytest.approx(0.1)  # 0.1 per 256 images
        assert (solver.MAX_EPOCHS, solver.WARMUP_EPOCHS, solver.SCHEDULER) == (90, 5, "cosine")
        assert cfg.INPUT.STYLE == "imagenet" and cfg.INPUT.SIZE_TRAIN == cfg.INPUT.SIZE_TEST == [224, 224]
        schedules.add((str(cfg.SOLVER), str(cfg.INPUT), str(cfg.DATALOADER)))
    assert len(schedules) == 1  # the models differ, the recipe does not


def test_the_documented_configs_exist():
    expected = {
        "ms_cs_c3_to_ma.yaml",  # the README's and the guide's command
        "ms_ma_cs_to_c3.yaml",
        "ma_cs_c3_to_ms.yaml",
        "synthetic_demo.yaml",
        "all_to_vpgi.yaml",
        "com_ms_cs_c3_to_ma.yaml",
        *(f"ablations/{v}.yaml" for v in ("base_r50", "sbase_ffc_r50", "ori_local", "ori_global",
                                          "task_channel", "task_spatial", "ins_channel", "ins_spatial")),
        *(f"officehome/{p}_{d}.yaml" for p in ("officehome", "synthetic_officehome")
          for d in ("art", "clipart", "product", "real_world")),
        *(f"imagenet/{m}.yaml" for m in IMAGENET_MODELS),
        *(f"stage1_synthetic/{m}.yaml" for m in ("resnet18", "ffc_resnet18", "dff_resnet18")),
    }  # fmt: skip
    assert expected <= set(RUNNABLE)


def test_ablation_configs_differ_only_in_the_model():
    base = setup_cfg(os.path.join(CONFIGS, "ms_cs_c3_to_ma.yaml"))
    seen = set()
    for path in glob.glob(os.path.join(CONFIGS, "ablations", "*.yaml")):
        cfg = setup_cfg(path)
        assert (cfg.DATASETS, cfg.SOLVER, cfg.INPUT) == (base.DATASETS, base.SOLVER, base.INPUT), path
        assert {k: v for k, v in cfg.MODEL.items() if k not in ("BACKBONE", "DFF")} == {
            k: v for k, v in base.MODEL.items() if k not in ("BACKBONE", "DFF")
        }, path
        variant = (cfg.MODEL.BACKBONE, cfg.MODEL.DFF.FILTER if cfg.MODEL.BACKBONE.startswith("dff") else None)
        assert variant not in seen, path
        seen.add(variant)
    assert len(seen) == 8


def test_synthetic_demo_is_leave_one_domain_out():
    cfg = setup_cfg(os.path.join(CONFIGS, "synthetic_demo.yaml"))
    assert cfg.DATASETS.SOURCES == ["synthetic:0", "synthetic:1", "synthetic:2"]
    assert cfg.DATASETS.TARGETS == ["synthetic:3"]


# Where the project names config paths for a reader.
MENTION_FILES = [
    "README.md",
    "datasets/README.md",
    "docs/**/*.md",
    "tools/*.py",
    "bench/**/*.py",
    "reid_dff/**/*.py",
]
CONFIG_PATH = re.compile(r"configs/[\w./{},<>*-]*(?:\.yaml|/)")


def expand(mention: str) -> list[str]:
    """A mentioned path as glob patterns: {a,b} alternatives, and <task> / {name} / X placeholders (X or x)."""
    mention = re.sub(r"<[^>]*>|\{\w+\}|\b[xX]\b", "*", mention)
    parts = re.split(r"\{([^}]*)\}", mention)
    choices = [p.split(",") if i % 2 else [p] for i, p in enumerate(parts)]
    return ["".join(c) for c in itertools.product(*choices)]


def test_every_config_path_named_in_docs_and_code_exists():
    mentions = set()
    for pattern in MENTION_FILES:
        for path in glob.glob(os.path.join(REPO, pattern), recursive=True):
            with open(path, encoding="utf-8") as f:
                mentions |= {(os.path.relpath(path, REPO), m) for m in CONFIG_PATH.findall(f.read())}
    assert len(mentions) > 20  # the README, docs and tool docstrings do name configs
    missing = sorted(
        f"{where}: {mention}"
        for where, mention in mentions
        if not all(glob.glob(os.path.join(REPO, p)) for p in expand(mention))
    )
    assert not missing, missing
