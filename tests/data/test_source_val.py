"""Source-val identities: drawn from SEED, out of training, Market-style query/gallery."""

import pytest

from reid_dff.config import get_cfg
from reid_dff.data.datasets.base import DatasetOptionError, Sample
from reid_dff.data.source_val import carve_source_val, query_gallery


def material(num_ids=8, cameras=(0, 1), per_camera=2):
    return [
        (Sample(f"/d/{pid:03d}_c{cam}_{i}.jpg", pid, cam), "train")
        for pid in range(num_ids)
        for cam in cameras
        for i in range(per_camera)
    ]


def cfg_with(rule="source_val", num_ids=3, seed=0):
    cfg = get_cfg()
    cfg.TEST.SELECTION, cfg.DATASETS.SOURCE_VAL.NUM_IDS, cfg.SEED = rule, num_ids, seed
    return cfg


def test_held_out_identities_leave_training_and_follow_the_seed():
    kept, held = carve_source_val(cfg_with(), "s", 0, material())
    held_paths = {s.path for s in held}
    held_pids = {s.path.split("/")[-1][:3] for s in held}
    assert len(held_pids) == 3 and len(held) == 3 * 4
    assert not held_paths & {s.path for s, _ in kept}
    assert not held_pids & {f"{s.pid:03d}" for s, _ in kept}
    assert len(kept) + len(held) == len(material())
    again = carve_source_val(cfg_with(), "s", 0, material())[1]
    assert again == held
    draws = {
        frozenset(s.path for s in carve_source_val(cfg_with(seed=k), "s", 0, material())[1]) for k in range(6)
    }
    assert len(draws) > 1  # another SEED holds out other identities


def test_last_holds_nothing_out_and_bad_counts_are_refused():
    kept, held = carve_source_val(cfg_with(rule="last"), "s", 0, material())
    assert held == [] and kept == material()
    for bad in (1, 7):
        with pytest.raises(DatasetOptionError, match="DATASETS.SOURCE_VAL.NUM_IDS is"):
            carve_source_val(cfg_with(num_ids=bad), "s", 0, material())


def test_query_is_one_image_per_camera_and_single_camera_ids_are_distractors():
    samples = [
        Sample("/a/1_c0_0.jpg", 1, 0),
        Sample("/a/1_c0_1.jpg", 1, 0),
        Sample("/a/1_c1_0.jpg", 1, 1),
        Sample("/a/1_c1_1.jpg", 1, 1),
        Sample("/a/2_c0_0.jpg", 2, 0),
        Sample("/a/2_c0_1.jpg", 2, 0),
    ]
    query, gallery = query_gallery(list(reversed(samples)))
    assert query == [samples[0], samples[2]]
    assert gallery == [samples[1], samples[3], samples[4], samples[5]]
    # camera 1's only image as a query would leave camera 0's query no cross-camera match: camera 0 is
    # all gallery, and camera 1's image (matched by camera 0's) is the one query
    query, gallery = query_gallery(samples[:3])
    assert query == [samples[2]] and gallery == samples[:2]


def test_every_query_keeps_a_gallery_image_of_its_identity_in_another_camera():
    samples = [Sample("/b/3_c0.jpg", 3, 0), Sample("/b/3_c1.jpg", 3, 1), Sample("/b/3_c2.jpg", 3, 2)]
    query, gallery = query_gallery(samples)
    assert query == samples[1:] and gallery == samples[:1]
    for q in query:
        assert any(g.pid == q.pid and g.camid != q.camid for g in gallery)
    two = [Sample("/b/4_c0.jpg", 4, 0), Sample("/b/4_c1.jpg", 4, 1)]
    assert query_gallery(two) == (two[1:], two[:1])
