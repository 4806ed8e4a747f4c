import subprocess
import sys

import numpy as np
import pytest
import torch
from tiny_reid import save_tiny_checkpoint, tiny_cfg, write_market_images

import reid_dff
from reid_dff.config import ConfigError, setup_cfg
from reid_dff.data import build_transforms, read_image
from reid_dff.inference.extractor import FeatureExtractor
from reid_dff.modeling import WeightsMismatchError, build_model
from reid_dff.modeling.checkpoint import CheckpointError, load_checkpoint
from reid_dff.tasks import build_task
from reid_dff.utils import sha256_file


def reference_embeddings(cfg, checkpoint, images, flip=False):
    """The model rebuilt by hand, weights loaded with load_state_dict, images through the test transforms."""
    model = build_model(cfg, 7)
    model.load_state_dict(torch.load(checkpoint, weights_only=True)["model"])
    model.eval()
    transform = build_transforms(cfg, is_train=False)
    batch = torch.stack([transform(image).as_subclass(torch.Tensor) for image in images])
    with torch.no_grad():
        out = model(batch)
        if flip:
            out = (out + model(torch.flip(batch, dims=[3]))) / 2
    return out.numpy()


def random_images(count, seed=0):
    return list(np.random.default_rng(seed).integers(0, 256, (count, 80, 40, 3), dtype=np.uint8))


def test_arrays_give_the_models_embeddings(tiny_checkpoint):
    cfg, checkpoint = tiny_checkpoint
    extractor = FeatureExtractor(checkpoint, device="cpu")
    images = random_images(5)
    feats = extractor(images)
    assert feats.shape == (5, 512) and feats.dtype == np.float32
    np.testing.assert_allclose(feats, reference_embeddings(cfg, checkpoint, images), rtol=1e-4, atol=1e-5)
    # One (N, H, W, 3) array is N images.
    np.testing.assert_array_equal(extractor(np.stack(images)), feats)
    assert extractor.dim == 512 and extractor.model_name == "dff_resnet18"
    assert extractor.checkpoint_sha256 == sha256_file(checkpoint) and extractor.normalized


def test_paths_tensors_and_batching_agree(tiny_checkpoint, tmp_path):
    cfg, checkpoint = tiny_checkpoint
    extractor = FeatureExtractor(checkpoint, device="cpu")
    paths = write_market_images(tmp_path, [f"000{i}_c1s1_000000_0{i}.jpg" for i in range(5)])
    from_paths = extractor(paths)
    from_arrays = extractor([read_image(p) for p in paths])
    np.testing.assert_array_equal(from_paths, from_arrays)
    np.testing.assert_allclose(extractor(paths[0]), from_paths[:1], rtol=1e-4, atol=1e-5)
    batch = torch.stack([extractor.transform(read_image(p)).as_subclass(torch.Tensor) for p in paths])
    np.testing.assert_allclose(extractor(batch), from_paths, rtol=1e-5, atol=1e-6)
    extractor.batch_size = 2  # three batches instead of one: eval-mode BN makes rows independent
    np.testing.assert_allclose(extractor(paths), from_paths, rtol=1e-4, atol=1e-5)


def test_config_file_cfgnode_and_checkpoint_build_the_same_model(tiny_checkpoint, tmp_path):
    cfg, checkpoint = tiny_checkpoint
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(cfg.dump())
    images = random_images(3, seed=1)
    expected = FeatureExtractor(checkpoint, device="cpu")(images)
    from_file = FeatureExtractor(config_file, device="cpu", opts=["MODEL.WEIGHTS", checkpoint])
    np.testing.assert_allclose(from_file(images), expected, rtol=1e-5, atol=1e-6)
    node = setup_cfg(str(config_file), ["MODEL.WEIGHTS", checkpoint])
    np.testing.assert_allclose(FeatureExtractor(node)(images), expected, rtol=1e-5, atol=1e-6)
    with_weights_arg = FeatureExtractor(config_file, weights=checkpoint)
    assert with_weights_arg.checkpoint_path == checkpoint


def test_flip_setting_averages_with_the_mirror_image(tiny_checkpoint):
    cfg, checkpoint = tiny_checkpoint
    extractor = FeatureExtractor(checkpoint, device="cpu", opts=["TEST.FLIP_FEATS", "True"])
    images = random_images(3, seed=2)
    expected = reference_embeddings(cfg, checkpoint, images, flip=True)
    np.testing.assert_allclose(extractor(images), expected, rtol=1e-4, atol=1e-5)


def test_missing_weights_and_bad_checkpoints_are_refused(tiny_checkpoint, tmp_path):
    cfg, checkpoint = tiny_checkpoint
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(cfg.dump())
    with pytest.raises(ConfigError, match="MODEL.WEIGHTS"):
        FeatureExtractor(config_file)
    with pytest.raises(CheckpointError, match="not found"):
        FeatureExtractor(tmp_path / "missing.pth")
    no_cfg = tmp_path / "no_cfg.pth"
    torch.save({"model": torch.load(checkpoint, weights_only=True)["model"]}, no_cfg)
    with pytest.raises(ConfigError, match="holds no 'cfg'"):
        FeatureExtractor(no_cfg)
    bad_cfg = tmp_path / "bad_cfg.pth"
    torch.save(
        {"model": torch.load(checkpoint, weights_only=True)["model"], "cfg": "MODEL: [unclosed"}, bad_cfg
    )
    with pytest.raises(ConfigError, match=r"the 'cfg' entry of .*bad_cfg\.pth is not valid YAML"):
        FeatureExtractor(bad_cfg)
    # Weights of another architecture under this config.
    other = save_tiny_checkpoint(tmp_path / "r18.pth", tiny_cfg(backbone="resnet18"))
    with pytest.raises(WeightsMismatchError, match="does not match the model"):
        FeatureExtractor(config_file, weights=other)


def test_a_dff_checkpoint_under_a_resnet_config_names_the_backbone_setting(tiny_checkpoint, tmp_path):
    _, dff_checkpoint = tiny_checkpoint  # trained (saved) as dff_resnet18; its "cfg" entry says so
    resnet = tiny_cfg(backbone="resnet18")
    with pytest.raises(WeightsMismatchError) as extractor:
        FeatureExtractor(resnet, weights=dff_checkpoint)
    with pytest.raises(WeightsMismatchError) as evaluation:  # the evaluation path: the task's loader
        build_task(resnet).load_weights_for_evaluation(load_checkpoint(dff_checkpoint), "w.pth")
    for info in (extractor, evaluation):
        message = str(info.value)
        assert "MODEL.BACKBONE (checkpoint has dff_resnet18, config has resnet18)" in message, message
        assert "MODEL.DFF" not in message and "\n" not in message  # no longer blames the filter setting
    # Only the filter differs: that is the setting named.
    other_filter = save_tiny_checkpoint(tmp_path / "ins_channel.pth", filtered("ins_channel"))
    with pytest.raises(WeightsMismatchError) as info:
        FeatureExtractor(filtered("ins_spatial"), weights=other_filter)
    message = str(info.value)
    assert "MODEL.DFF.FILTER (checkpoint has ins_channel, config has ins_spatial)" in message, message
    assert "MODEL.BACKBONE" not in message


def filtered(name):
    cfg = tiny_cfg(backbone="dff_resnet18")
    cfg.MODEL.DFF.FILTER = name
    return cfg


def test_bad_inputs_are_refused(tiny_checkpoint):
    _, checkpoint = tiny_checkpoint
    extractor = FeatureExtractor(checkpoint, device="cpu")
    with pytest.raises(ValueError, match="uint8 RGB"):
        extractor([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match="uint8 RGB"):
        extractor([np.zeros((8, 8), np.uint8)])
    with pytest.raises(TypeError, match="one \\(B, 3, H, W\\) tensor"):
        extractor([torch.zeros(3, 64, 32)])
    with pytest.raises(ValueError, match="preprocessed float"):
        extractor(torch.zeros(2, 1, 64, 32))
    with pytest.raises(TypeError, match="expected an image path"):
        extractor([42])
    with pytest.raises(ValueError, match="no images"):
        extractor([])


def test_import_stays_light_and_exports_the_extractor_lazily():
    code = "import sys, reid_dff; print('torch' in sys.modules)"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )
    assert reid_dff.FeatureExtractor is FeatureExtractor
    with pytest.raises(AttributeError):
        reid_dff.NoSuchThing  # noqa: B018
