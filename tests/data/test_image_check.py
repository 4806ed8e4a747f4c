"""Up-front image checks (DATALOADER.CHECK_IMAGES): which files each mode finds, and the one-line report."""

import cv2
import numpy as np
import pytest
from PIL import Image

from reid_dff.config import get_cfg
from reid_dff.data.build import TrainSet
from reid_dff.data.datasets.base import DatasetOptionError, Sample
from reid_dff.data.image_check import (
    BadImagesError,
    apply_bad_images,
    check_image_header,
    find_bad_images,
    removed_images_message,
)
from reid_dff.data.io import BadImageError


def jpeg_bytes(seed=0):
    image = np.random.default_rng(seed).integers(0, 255, (64, 32, 3), dtype=np.uint8)
    ok, buffer = cv2.imencode(".jpg", image)
    assert ok
    return buffer.tobytes()


@pytest.fixture
def files(tmp_path):
    good = jpeg_bytes()
    sos = good.find(b"\xff\xda")  # start of scan: the header ends here
    paths = {
        "good.jpg": good,
        "truncated.jpg": good[: len(good) // 2],  # no end-of-image marker: a cut download
        "empty.jpg": b"",
        "text.jpg": b"this is not an image",
        "no_scan.jpg": good[:sos] + b"\xff\xd9",  # a sound header, no picture: only a decode finds it
    }
    for name, data in paths.items():
        (tmp_path / name).write_bytes(data)
    Image.fromarray(np.zeros((8, 4, 3), np.uint8)).save(tmp_path / "good.png")
    png = (tmp_path / "good.png").read_bytes()
    (tmp_path / "bad_crc.png").write_bytes(png[:40] + bytes([png[40] ^ 0xFF]) + png[41:])  # corrupt chunk
    return {name: str(tmp_path / name) for name in [*paths, "good.png", "bad_crc.png"]}


def test_header_check_finds_what_a_header_shows(files):
    bad = dict(find_bad_images(list(files.values()), "header"))
    assert set(bad) == {files[n] for n in ("truncated.jpg", "empty.jpg", "text.jpg", "bad_crc.png")}
    assert bad[files["truncated.jpg"]] == "truncated JPEG (no end-of-image marker)"
    assert bad[files["empty.jpg"]] == "empty image file"
    check_image_header(files["good.jpg"])
    check_image_header(files["good.png"])
    with pytest.raises(BadImageError, match="cannot read image file"):
        check_image_header(files["good.jpg"] + ".missing")


def test_full_check_decodes_and_none_checks_nothing(files):
    full = {path for path, _ in find_bad_images(list(files.values()), "full")}
    assert files["no_scan.jpg"] in full  # decoded: no picture behind the header
    assert {files[n] for n in ("truncated.jpg", "empty.jpg", "text.jpg")} <= full
    assert files["good.jpg"] not in full and files["good.png"] not in full
    assert find_bad_images(list(files.values()), "none") == []
    with pytest.raises(ValueError, match="CHECK_IMAGES"):
        find_bad_images([], "quick")


def make_set(files, names):
    samples = [Sample(files[name], pid, 0, 0) for pid, name in enumerate(names)]
    return TrainSet(samples, len(names), 1, ["x"], [str(i) for i in range(len(names))])


def test_bad_files_are_one_error_listing_them_or_dropped_with_a_warning(files, caplog):
    names = ["good.jpg", "truncated.jpg", "text.jpg", "good.png"]
    train_set = make_set(files, names)
    bad = find_bad_images([s.path for s in train_set.samples], "header")
    cfg = get_cfg()
    with pytest.raises(BadImagesError) as info:
        apply_bad_images(cfg, train_set, bad, [], 0)
    message = str(info.value)
    assert message == (
        f"2 of 4 training images cannot be read: {files['truncated.jpg']} (truncated JPEG (no end-of-image "
        f"marker)); {files['text.jpg']} (not an image PIL can identify)"
    )
    assert "\n" not in message
    cfg.DATALOADER.ON_BAD_IMAGE = "skip"
    with caplog.at_level("WARNING", logger="reid_dff.data"):
        kept = apply_bad_images(cfg, train_set, bad, [], 0)
    assert [s.path for s in kept.samples] == [files["good.jpg"], files["good.png"]]
    assert kept.num_classes == 4  # labels stay: the classifier keeps its outputs
    assert files["truncated.jpg"] in caplog.text and files["text.jpg"] in caplog.text
    cfg.DATALOADER.CHECK_IMAGES = "all"
    with pytest.raises(DatasetOptionError, match="DATALOADER.CHECK_IMAGES must be one of"):
        apply_bad_images(cfg, train_set, bad, [], 0)


def test_long_lists_name_the_first_files_and_count_the_rest():
    bad = [(f"/d/{i}.jpg", "empty image file") for i in range(8)]
    with pytest.raises(
        BadImagesError, match=r"8 of 9 evaluation images .*/d/4\.jpg \(empty image file\); and 3 more$"
    ):
        apply_bad_images(get_cfg(), make_set({"a": "/d/a.jpg"}, ["a"]), [], bad, 9)
    assert removed_images_message(["a", "b", "c"], ["a", "c"]).startswith(
        "1 training image(s) of the checkpoint's run are no longer in the training set (deleted, or left out "
        "as unreadable): b;"
    )
    assert removed_images_message(["a"], ["a", "b"]) is None
