import hashlib
import os

import numpy as np
import pytest

from reid_dff.data.synthetic import SyntheticDataError
from reid_dff.data.synthetic.officehome import (
    CLASSES,
    DOMAINS,
    ensure_synthetic_officehome,
    generate_synthetic_officehome,
    render_object_image,
)


def tree_hashes(root):
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, root)] = hashlib.sha256(open(path, "rb").read()).hexdigest()
    return out


def test_layout_and_determinism(tmp_path):
    generate_synthetic_officehome(tmp_path / "a", seed=3, images_per_class=2, size=32)
    generate_synthetic_officehome(tmp_path / "b", seed=3, images_per_class=2, size=32)
    a = tree_hashes(tmp_path / "a")
    assert a == tree_hashes(tmp_path / "b")
    images = [k for k in a if k.endswith(".jpg")]
    assert len(images) == len(DOMAINS) * len(CLASSES) * 2
    assert "OfficeHomeDataset/Real_World/Star/00002.jpg" in a
    generate_synthetic_officehome(tmp_path / "c", seed=4, images_per_class=2, size=32)
    assert tree_hashes(tmp_path / "c") != a


def test_domains_differ_and_classes_are_not_colour():
    # The same (class, index) drawn in two styles differs; a class is not tied to one colour.
    art = render_object_image(0, "Art", "Star", 0)
    clip = render_object_image(0, "Clipart", "Star", 0)
    assert np.abs(art.astype(int) - clip.astype(int)).mean() > 20
    colours = {tuple(render_object_image(0, "Product", "Disc", i)[32, 32] // 64) for i in range(12)}
    assert len(colours) > 3


def test_ensure_generates_once_and_refuses_mismatch(tmp_path):
    path = ensure_synthetic_officehome(tmp_path, seed=0, images_per_class=1, size=32)
    before = tree_hashes(path)
    assert ensure_synthetic_officehome(tmp_path, seed=0, images_per_class=1, size=32) == path
    assert tree_hashes(path) == before
    with pytest.raises(SyntheticDataError, match="seed: on disk 0, asked 1"):
        ensure_synthetic_officehome(tmp_path, seed=1, images_per_class=1, size=32)
    with pytest.raises(FileExistsError, match="already exists"):
        generate_synthetic_officehome(tmp_path, seed=0, images_per_class=1, size=32)


def test_foreign_folder_is_not_overwritten(tmp_path):
    (tmp_path / "OfficeHomeDataset" / "Art").mkdir(parents=True)
    with pytest.raises(SyntheticDataError, match="not a generated"):
        ensure_synthetic_officehome(tmp_path)
    assert (tmp_path / "OfficeHomeDataset" / "Art").is_dir()


def test_unknown_domain_or_class():
    with pytest.raises(KeyError, match="Real_World"):
        render_object_image(0, "Photo", "Star", 0)
    with pytest.raises(KeyError, match="Triangle"):
        render_object_image(0, "Art", "Hexagon", 0)


def test_generated_tree_has_the_permissions_of_an_ordinary_folder(tmp_path):
    import stat

    old = os.umask(0o022)
    try:
        generate_synthetic_officehome(tmp_path, seed=0, images_per_class=1, size=32)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "OfficeHomeDataset").st_mode) == 0o755
