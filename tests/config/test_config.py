import textwrap

import pytest
import yaml

from reid_dff.config import (
    ConfigError,
    ConfigKeyError,
    ConfigTypeError,
    cfg_from_text,
    get_cfg,
    save_cfg,
    setup_cfg,
)


def write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_defaults_are_complete_and_independent_copies():
    a, b = get_cfg(), get_cfg()
    a.MODEL.DFF.RATIO = 0.25
    assert b.MODEL.DFF.RATIO == 0.5
    assert "MODEL.BACKBONE" in a.leaf_keys()


def test_base_chain_is_relative_to_including_file_and_nested(tmp_path):
    write(tmp_path / "base" / "root.yaml", "SOLVER:\n  BASE_LR: 0.1\n  MAX_EPOCHS: 5\nSEED: 1\n")
    write(tmp_path / "base" / "mid.yaml", "_BASE_: root.yaml\nSOLVER:\n  MAX_EPOCHS: 7\nSEED: 2\n")
    leaf = write(tmp_path / "exp" / "leaf.yaml", "_BASE_: ../base/mid.yaml\nSEED: 3\n")
    cfg = get_cfg()
    cfg.merge_from_file(leaf)
    assert cfg.SOLVER.BASE_LR == 0.1  # from the root
    assert cfg.SOLVER.MAX_EPOCHS == 7  # mid overrides root
    assert cfg.SEED == 3  # leaf overrides mid
    assert cfg.SOLVER.WEIGHT_DECAY == get_cfg().SOLVER.WEIGHT_DECAY  # untouched default


def test_multiple_bases_merge_in_order(tmp_path):
    write(tmp_path / "a.yaml", "SEED: 1\nOUTPUT_DIR: a\n")
    write(tmp_path / "b.yaml", "SEED: 2\n")
    leaf = write(tmp_path / "c.yaml", "_BASE_: [a.yaml, b.yaml]\n")
    cfg = setup_cfg(str(leaf))
    assert (cfg.SEED, cfg.OUTPUT_DIR) == (2, "a")


def test_a_list_of_bases_is_deep_merged_in_order_each_relative_to_its_own_includer(tmp_path):
    # models/m.yaml and schedules/s.yaml sit in other folders than the leaf; s.yaml has its own base
    write(tmp_path / "models" / "m.yaml", "MODEL:\n  BACKBONE: resnet18\nSOLVER:\n  BASE_LR: 0.5\n")
    write(tmp_path / "schedules" / "common.yaml", "SOLVER:\n  MAX_EPOCHS: 3\n  GAMMA: 0.5\n")
    write(
        tmp_path / "schedules" / "s.yaml",
        "_BASE_: [common.yaml]\nSOLVER:\n  BASE_LR: 0.25\n  GAMMA: 0.75\n",
    )
    leaf = write(
        tmp_path / "runs" / "leaf.yaml",
        "_BASE_: [../models/m.yaml, ../schedules/s.yaml]\nSOLVER:\n  GAMMA: 0.125\n",
    )
    cfg = setup_cfg(str(leaf))
    assert cfg.MODEL.BACKBONE == "resnet18"  # only the first base sets it
    assert cfg.SOLVER.BASE_LR == 0.25  # the later base wins over the earlier
    assert cfg.SOLVER.MAX_EPOCHS == 3  # the later base's own base, kept beside its siblings (deep merge)
    assert cfg.SOLVER.GAMMA == 0.125  # the including file wins over all its bases
    assert cfg.SOLVER.STEPS == get_cfg().SOLVER.STEPS  # untouched default


def test_two_bases_may_share_a_base(tmp_path):
    write(tmp_path / "root.yaml", "SEED: 4\n")
    write(tmp_path / "a.yaml", "_BASE_: root.yaml\nOUTPUT_DIR: a\n")
    write(tmp_path / "b.yaml", "_BASE_: root.yaml\nSOLVER:\n  MAX_EPOCHS: 2\n")
    cfg = setup_cfg(str(write(tmp_path / "leaf.yaml", "_BASE_: [a.yaml, b.yaml]\n")))  # a diamond, no cycle
    assert (cfg.SEED, cfg.OUTPUT_DIR, cfg.SOLVER.MAX_EPOCHS) == (4, "a", 2)


def test_base_cycle_and_missing_base_are_errors(tmp_path):
    write(tmp_path / "x.yaml", "_BASE_: y.yaml\n")
    write(tmp_path / "y.yaml", "_BASE_: x.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        setup_cfg(str(tmp_path / "x.yaml"))
    write(tmp_path / "z.yaml", "_BASE_: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml"):
        setup_cfg(str(tmp_path / "z.yaml"))


def test_a_missing_base_names_the_file_that_named_it(tmp_path):
    write(tmp_path / "real.yaml", "SEED: 1\n")
    write(tmp_path / "mid" / "mid.yaml", "_BASE_: [../real.yaml, ../nowhere.yaml]\n")
    leaf = write(tmp_path / "leaf.yaml", "_BASE_: mid/mid.yaml\n")
    with pytest.raises(ConfigError) as info:
        setup_cfg(str(leaf))
    assert str(info.value) == (
        f"config file not found: {tmp_path / 'nowhere.yaml'} (named in _BASE_ of {tmp_path / 'mid' / 'mid.yaml'})"
    )
    with pytest.raises(ConfigError) as info:  # the file given directly: nothing included it
        setup_cfg(str(tmp_path / "absent.yaml"))
    assert str(info.value) == f"config file not found: {tmp_path / 'absent.yaml'}"


@pytest.mark.parametrize("base", ["{a: 1}", "[a.yaml, 3]", "['']", "7"])
def test_a_base_that_is_not_file_names_is_an_error(tmp_path, base):
    write(tmp_path / "a.yaml", "SEED: 1\n")
    leaf = write(tmp_path / "leaf.yaml", f"_BASE_: {base}\n")
    with pytest.raises(ConfigError, match=rf"_BASE_ in {leaf} must be a file name or a list of file names"):
        setup_cfg(str(leaf))


def test_overrides_parse_values_by_default_type():
    cfg = setup_cfg(
        None,
        ["SOLVER.BASE_LR", "1", "SOLVER.STEPS", "[5, 9]", "OUTPUT_DIR", "123", "TEST.RERANK.ENABLED", "true"],
    )
    assert cfg.SOLVER.BASE_LR == 1.0 and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.STEPS == [5, 9]
    assert cfg.OUTPUT_DIR == "123"  # a str key keeps the raw text
    assert cfg.TEST.RERANK.ENABLED is True


def test_override_odd_number_of_items():
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        setup_cfg(None, ["SEED"])


def test_misspelt_key_in_yaml_suggests_the_right_one(tmp_path):
    bad = write(tmp_path / "bad.yaml", "MODEL:\n  BAKCBONE: resnet50\n")
    with pytest.raises(ConfigKeyError) as info:
        setup_cfg(str(bad))
    message = str(info.value)
    assert "MODEL.BAKCBONE" in message and message.endswith("did you mean MODEL.BACKBONE?")  # not a list
    assert str(bad) in message


def test_misspelt_key_on_command_line_suggests_the_right_one():
    with pytest.raises(ConfigKeyError, match=r"MODEL\.DFF\.RATO.*MODEL\.DFF\.RATIO"):
        setup_cfg(None, ["MODEL.DFF.RATO", "0.3"])


@pytest.mark.parametrize(
    "opts, expected",
    [
        (["SOLVER.MAX_EPOCHS", "abc"], r"SOLVER\.MAX_EPOCHS.*expects int.*got str"),
        (["SOLVER.STEPS", "3"], r"SOLVER\.STEPS.*expects list.*got int"),
        (["MODEL.DFF.RATIO", "[0.5]"], r"MODEL\.DFF\.RATIO.*expects float.*got list"),
        (["TEST.RERANK.ENABLED", "1"], r"TEST\.RERANK\.ENABLED.*expects bool.*got int"),
    ],
)
def test_type_mismatch_names_key_and_both_types(opts, expected):
    with pytest.raises(ConfigTypeError, match=expected):
        setup_cfg(None, opts)


def test_yaml_type_mismatch_and_group_as_value(tmp_path):
    with pytest.raises(ConfigTypeError, match=r"SOLVER\.STEPS.*list.*int"):
        setup_cfg(str(write(tmp_path / "a.yaml", "SOLVER:\n  STEPS: 30\n")))
    with pytest.raises(ConfigTypeError, match="MODEL.*mapping"):
        setup_cfg(str(write(tmp_path / "b.yaml", "MODEL: resnet50\n")))
    with pytest.raises(ConfigTypeError, match="group of keys"):
        setup_cfg(None, ["MODEL.DFF", "1"])


def test_not_a_mapping_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="mapping"):
        setup_cfg(str(write(tmp_path / "a.yaml", "- 1\n- 2\n")))
    with pytest.raises(ConfigError, match="cannot parse"):
        setup_cfg(str(write(tmp_path / "b.yaml", "SEED: [1\n")))


def test_yaml_is_loaded_safely(tmp_path):
    evil = write(tmp_path / "evil.yaml", "SEED: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError):
        setup_cfg(str(evil))


def test_frozen_after_setup():
    cfg = setup_cfg(None, [])
    with pytest.raises(AttributeError, match="frozen"):
        cfg.SEED = 5
    with pytest.raises(AttributeError, match="frozen"):
        cfg.MODEL.DFF.RATIO = 0.1
    with pytest.raises(AttributeError, match="frozen"):
        cfg.merge_from_list(["SEED", "1"])
    cfg.defrost()
    cfg.SEED = 5
    assert cfg.SEED == 5


def test_resolved_config_round_trips(tmp_path):
    cfg = setup_cfg(None, ["SOLVER.STEPS", "[3, 4]", "OUTPUT_DIR", str(tmp_path / "run")])
    path = save_cfg(cfg)
    assert path == str(tmp_path / "run" / "config.yaml")
    reread = setup_cfg(path)
    assert reread == cfg
    assert yaml.safe_load(open(path))["SOLVER"]["STEPS"] == [3, 4]


def test_exponent_floats_in_files_and_overrides(tmp_path):
    # YAML 1.1 (PyYAML's default) reads 1e-3 as a string; configs are written as YAML 1.2 reads them
    path = write(tmp_path / "lr.yaml", "SOLVER:\n  BASE_LR: 3.5e-4\n  WEIGHT_DECAY: 5e-4\n")
    cfg = setup_cfg(str(path), ["SOLVER.MOMENTUM", "9e-1", "INPUT.PIXEL_MEAN", "[4.85e-1, 0.456, 406e-3]"])
    assert cfg.SOLVER.BASE_LR == pytest.approx(3.5e-4) and isinstance(cfg.SOLVER.BASE_LR, float)
    assert cfg.SOLVER.WEIGHT_DECAY == pytest.approx(5e-4)
    assert cfg.SOLVER.MOMENTUM == pytest.approx(0.9)
    assert cfg.INPUT.PIXEL_MEAN == pytest.approx([0.485, 0.456, 0.406])
    assert setup_cfg(None, ["SEED", "7"]).SEED == 7  # ints stay ints


def test_null_values_and_wrong_list_items_are_type_errors(tmp_path):
    empty = write(tmp_path / "empty_value.yaml", "SOLVER:\n  MAX_EPOCHS:\n")
    with pytest.raises(ConfigTypeError, match=r"SOLVER.MAX_EPOCHS .*expects int.*NoneType.*empty YAML value"):
        setup_cfg(str(empty))
    with pytest.raises(ConfigTypeError, match="SOLVER.MAX_EPOCHS"):
        setup_cfg(None, ["SOLVER.MAX_EPOCHS", "~"])
    with pytest.raises(ConfigTypeError, match=r"SOLVER.STEPS .*list of int.*str 'x' at position 1"):
        setup_cfg(None, ["SOLVER.STEPS", "[30, x]"])
    assert setup_cfg(None, ["INPUT.PIXEL_MEAN", "[1, 2, 3]"]).INPUT.PIXEL_MEAN == [1.0, 2.0, 3.0]


def test_a_key_repeated_in_a_file_is_an_error(tmp_path):
    path = write(
        tmp_path / "dup.yaml",
        """\
        SOLVER:
          BASE_LR: 0.001
        SEED: 1
        SOLVER:
          MAX_EPOCHS: 5
        """,
    )
    with pytest.raises(ConfigError, match=r"'SOLVER' appears twice .*first 1, again 4"):
        setup_cfg(str(path))


def test_frozen_config_refuses_every_dict_mutator_and_stays_frozen_when_pickled():
    import pickle

    cfg = setup_cfg(None, [])
    for mutate in (
        lambda: cfg.SOLVER.update({"BASE_LR": "oops"}),
        lambda: cfg.__delitem__("SEED"),
        lambda: cfg.MODEL.pop("DEVICE"),
        lambda: cfg.popitem(),
        lambda: cfg.setdefault("NEW", 1),
        lambda: cfg.SOLVER.clear(),
    ):
        with pytest.raises(AttributeError, match="frozen"):
            mutate()
    assert cfg.SOLVER.BASE_LR == get_cfg().SOLVER.BASE_LR and "SEED" in cfg and "NEW" not in cfg
    copy = pickle.loads(pickle.dumps(cfg))
    assert copy == cfg and copy.is_frozen() and copy.MODEL.is_frozen()
    with pytest.raises(AttributeError, match="frozen"):
        copy.SEED = 3
    assert not pickle.loads(pickle.dumps(get_cfg())).is_frozen()


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n# and another\n", "---\n"])
def test_an_empty_config_file_is_an_error_naming_it_not_all_defaults(tmp_path, capsys, text):
    empty = write(tmp_path / "empty.yaml", text)
    with pytest.raises(ConfigError) as info:
        setup_cfg(str(empty))
    assert str(info.value).startswith(f"config file {empty} is empty (no key, only comments or blank lines)")
    from reid_dff.cli.train_net import main

    with pytest.raises(SystemExit) as exit_info:  # the tool: one line, nothing trained
        main(["--config-file", str(empty), "OUTPUT_DIR", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert exit_info.value.code == 1 and err.count("\n") == 1, err
    assert err.startswith(f"train_net.py: error: config file {empty} is empty") and "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_an_empty_base_is_an_error_naming_it_and_its_includer(tmp_path):
    base = write(tmp_path / "model.yaml", "# a model file whose keys were lost\n")
    leaf = write(tmp_path / "leaf.yaml", "_BASE_: model.yaml\nSEED: 4\n")
    with pytest.raises(ConfigError) as info:
        setup_cfg(str(leaf))
    assert str(info.value).startswith(f"config file {base} is empty (no key, only comments or blank lines) "
                                      f"(named in _BASE_ of {leaf})")  # fmt: skip


def test_a_stored_config_text_is_rebuilt_or_refused_naming_its_source():
    """cfg_from_text: what a checkpoint's "cfg" and an ONNX file's "config" metadata are read with."""
    cfg = get_cfg()
    cfg.merge_from_list(["SOLVER.BASE_LR", "0.0007", "MODEL.BACKBONE", "resnet18"])
    rebuilt = cfg_from_text(cfg.dump(), "the 'cfg' entry of m.pth")
    assert rebuilt == cfg and not rebuilt.is_frozen()
    assert cfg_from_text("", "empty") == get_cfg()  # nothing stored: the defaults
    with pytest.raises(ConfigError, match=r"^the 'cfg' entry of m\.pth is not valid YAML"):
        cfg_from_text("MODEL: [unclosed", "the 'cfg' entry of m.pth")
    with pytest.raises(
        ConfigError, match=r"^the 'config' metadata of m\.onnx must be a YAML mapping, got list"
    ):
        cfg_from_text("- 1\n- 2\n", "the 'config' metadata of m.onnx")
    with pytest.raises(ConfigKeyError, match="SOLVER.BASE_LRR"):
        cfg_from_text("SOLVER:\n  BASE_LRR: 0.1\n", "x")
