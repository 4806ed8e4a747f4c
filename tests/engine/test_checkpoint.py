import argparse
import os
import random

import numpy as np
import pytest
import torch

from reid_dff.engine.checkpoint import capture_rng_state, check_training_checkpoint, restore_rng_state
from reid_dff.errors import ReidDffError
from reid_dff.modeling.checkpoint import CheckpointError, load_checkpoint, save_checkpoint


def draws():
    return (
        torch.rand(3).tolist(),
        np.random.rand(3).tolist(),
        np.random.randn(1).tolist(),
        [random.random() for _ in range(3)],
    )


def test_rng_state_round_trips_through_a_weights_only_checkpoint(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    save_checkpoint(tmp_path / "rng.pth", {"rng": capture_rng_state()})
    expected = draws()
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng_state(load_checkpoint(tmp_path / "rng.pth")["rng"])
    assert draws() == expected


def test_save_is_atomic_and_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    path = tmp_path / "last.pth"
    save_checkpoint(path, {"epoch": 1, "w": torch.ones(2)})

    def broken_save(obj, f):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert os.listdir(tmp_path) == ["last.pth"]  # no temporary file left behind


def test_missing_corrupt_and_unsafe_checkpoints(tmp_path):
    with pytest.raises(CheckpointError, match=r"checkpoint not found: .*nowhere\.pth"):
        load_checkpoint(tmp_path / "nowhere.pth")
    corrupt = tmp_path / "corrupt.pth"
    save_checkpoint(corrupt, {"w": torch.ones(100)})
    corrupt.write_bytes(corrupt.read_bytes()[:50])
    with pytest.raises(CheckpointError, match=r"corrupt\.pth.*corrupt or truncated"):
        load_checkpoint(corrupt)
    unsafe = tmp_path / "unsafe.pth"
    torch.save({"obj": argparse.Namespace(x=1)}, unsafe)  # any class needs pickle to rebuild
    with pytest.raises(
        CheckpointError, match=r"unsafe\.pth .*holds objects that only arbitrary code could rebuild"
    ) as info:
        load_checkpoint(unsafe)
    assert "weights_only=False" not in str(info.value) and "\n" not in str(info.value)  # not torch's advice
    not_torch = tmp_path / "config.yaml"
    not_torch.write_text("MODEL:\n  BACKBONE: resnet50\n")
    with pytest.raises(CheckpointError, match=r"config\.yaml .*not a file written by torch\.save"):
        load_checkpoint(not_torch)
    features = tmp_path / "gallery.npz"  # a features file given as weights
    np.savez(features, feats=np.zeros((2, 3), dtype=np.float32))
    with pytest.raises(CheckpointError, match=r"gallery\.npz .*a zip archive that torch\.save did not write"):
        load_checkpoint(features)
    legacy = tmp_path / "legacy.pth"  # the pre-zip torch format, cut short: struct.error inside torch
    torch.save({"w": torch.ones(3)}, legacy, _use_new_zipfile_serialization=False)
    legacy.write_bytes(legacy.read_bytes()[:30])
    with pytest.raises(CheckpointError, match=r"legacy\.pth .*corrupt or truncated"):
        load_checkpoint(legacy)
    torch.save([torch.ones(1)], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="holds a list; expected a dict"):
        load_checkpoint(tmp_path / "list.pth")


def test_incomplete_training_checkpoint_names_the_missing_keys(tmp_path):
    with pytest.raises(CheckpointError, match=r"w\.pth is not a resumable .*lacks .*optimizer"):
        check_training_checkpoint({"model": {}}, tmp_path / "w.pth")


def test_checkpoint_and_non_finite_loss_errors_are_user_errors_of_their_builtin_kind():
    from reid_dff.engine import NonFiniteLossError

    assert issubclass(CheckpointError, ReidDffError) and issubclass(CheckpointError, RuntimeError)
    assert issubclass(NonFiniteLossError, ReidDffError) and issubclass(NonFiniteLossError, FloatingPointError)


class _RunsCode:
    """A pickle payload: unpickling it would call os.getcwd (any callable would do)."""

    def __reduce__(self):
        return (os.getcwd, ())


@pytest.mark.parametrize("use_zip", [True, False])
def test_pickle_payload_is_refused_for_safety_not_called_corrupt(tmp_path, use_zip):
    payload = tmp_path / "payload.pth"
    torch.save({"model": _RunsCode(), "extra": {1, 2}}, payload, _use_new_zipfile_serialization=use_zip)
    with pytest.raises(Exception) as raw:  # torch's own refusal: the text torch_load_problem has to read
        torch.load(payload, weights_only=True)
    assert "Weights only load failed" in str(raw.value)
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(payload)
    message = str(info.value)
    assert "payload.pth" in message and "only arbitrary code could rebuild" in message
    assert "getcwd" in message and "refused for safety" in message
    assert "corrupt" not in message and "\n" not in message and "weights_only=False" not in message
