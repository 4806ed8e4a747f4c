import json
import os

import numpy as np
import pytest

from reid_dff.inference import (
    GalleryIndex,
    IndexCompatibilityError,
    IndexFormatError,
    UnsafeIndexPathError,
    cmc_from_search,
)
from reid_dff.inference.index_format import INDEX_FILE, ITEMS_FILE, META_FILE
from reid_dff.utils import sha256_file


def clustered(num, dim, num_ids, seed=0, noise=0.3):
    """Identity-like clusters around centres shared by all seeds: (features, pids)."""
    centres = np.random.default_rng(1000 + dim + num_ids).standard_normal((num_ids, dim))
    rng = np.random.default_rng(seed)
    pids = rng.integers(0, num_ids, num)
    return (centres[pids] + noise * rng.standard_normal((num, dim))).astype(np.float32), pids


def brute_force_distances(q, g, metric):
    q, g = q.astype(np.float64), g.astype(np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
        return 1.0 - q @ g.T
    return ((q[:, None, :] - g[None, :, :]) ** 2).sum(-1)


def names(n):
    return [f"g/{i:04d}.jpg" for i in range(n)]


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_flat_search_equals_brute_force(metric):
    g, _ = clustered(300, 24, 30, seed=1)
    q, _ = clustered(25, 24, 30, seed=2)
    index = GalleryIndex.build(g, names(300), metric=metric)
    result = index.search(q, topk=10)
    dist = brute_force_distances(q, g, metric)
    expected = np.argsort(dist, axis=1, kind="stable")[:, :10]
    np.testing.assert_array_equal(result.indices, expected)
    np.testing.assert_allclose(result.distances, np.take_along_axis(dist, expected, 1), atol=1e-4)


def test_ties_are_ordered_by_gallery_index_even_at_the_cut():
    # 12 identical gallery vectors: FAISS returns ties in reverse order and may cut anywhere among them.
    g = np.tile(np.array([[1.0, 0.0, 0.0, 0.0]], np.float32), (12, 1))
    g = np.concatenate([g, np.array([[0.0, 1.0, 0.0, 0.0]] * 3, np.float32)])
    index = GalleryIndex.build(g, names(15), metric="cosine")
    result = index.search(np.array([[1.0, 0.1, 0.0, 0.0]], np.float32), topk=5)
    np.testing.assert_array_equal(result.indices[0], [0, 1, 2, 3, 4])


def test_camera_filtering_matches_a_brute_force_loop():
    g, g_pids = clustered(200, 16, 20, seed=3)
    q, q_pids = clustered(30, 16, 20, seed=4)
    rng = np.random.default_rng(5)
    g_cams, q_cams = rng.integers(0, 3, 200), rng.integers(0, 3, 30)
    index = GalleryIndex.build(g, names(200), pids=g_pids, camids=g_cams)
    result = index.search(q, topk=8, query_pids=q_pids, query_camids=q_cams)
    dist = brute_force_distances(q, g, "cosine")
    for qi in range(len(q)):
        order = np.argsort(dist[qi], kind="stable")
        kept = [j for j in order if not (g_pids[j] == q_pids[qi] and g_cams[j] == q_cams[qi])][:8]
        assert list(result.indices[qi]) == kept
        assert not (
            (g_pids[result.indices[qi]] == q_pids[qi]) & (g_cams[result.indices[qi]] == q_cams[qi])
        ).any()


def test_camera_filtering_fetches_past_many_excluded_items():
    # The 20 nearest items all share the query's identity and camera: all must be skipped.
    g = np.concatenate([np.tile([[1.0, 0.0]], (20, 1)), [[0.9, 0.1], [0.0, 1.0], [0.5, 0.5]]]).astype(
        np.float32
    )
    pids = np.array([7] * 20 + [7, 1, 2])
    cams = np.array([0] * 20 + [1, 0, 0])
    index = GalleryIndex.build(g, names(23), pids=pids, camids=cams)
    result = index.search(np.array([[1.0, 0.0]], np.float32), topk=3, query_pids=[7], query_camids=[0])
    np.testing.assert_array_equal(result.indices[0], [20, 22, 21])


def test_topk_beyond_gallery_size_pads_with_minus_one():
    g, _ = clustered(5, 8, 2)
    result = GalleryIndex.build(g, names(5)).search(g[:2], topk=7)
    assert (result.indices[:, 5:] == -1).all() and np.isinf(result.distances[:, 5:]).all()
    assert sorted(result.indices[0, :5]) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("index_type, params", [("ivf", {"nlist": 16, "nprobe": 4}), ("hnsw", {"M": 16})])
def test_approximate_indexes_find_most_true_neighbours(index_type, params):
    g, _ = clustered(2000, 32, 100, seed=6)
    q, _ = clustered(50, 32, 100, seed=7)
    exact = GalleryIndex.build(g, names(2000)).search(q, 10).indices
    approx = GalleryIndex.build(g, names(2000), index_type=index_type, params=params).search(q, 10).indices
    recall = np.mean([len(set(a) & set(e)) / 10 for a, e in zip(approx, exact)])
    assert recall >= 0.9


def test_ivfpq_keeps_the_identities_in_a_fraction_of_the_memory(tmp_path):
    # Product quantization ranks by approximate distances: within an identity's ~20 near-equal images
    # it reorders, so check what a user sees (the query's identity in the top-10) and the index size.
    g, g_pids = clustered(2000, 32, 100, seed=6, noise=0.5)
    q, q_pids = clustered(50, 32, 100, seed=7, noise=0.5)
    flat = GalleryIndex.build(g, names(2000))
    pq = GalleryIndex.build(g, names(2000), index_type="ivfpq", params={"nlist": 8, "nprobe": 8})
    assert pq.meta.params["pq_m"] == 4 and pq.meta.params["pq_nbits"] == 8  # defaults: dim/8, 8 bits

    def same_identity(result):
        return np.mean(g_pids[result.indices] == q_pids[:, None])

    assert same_identity(pq.search(q, 10)) >= 0.95 * same_identity(flat.search(q, 10))
    pq.save(tmp_path / "pq")
    flat.save(tmp_path / "flat")
    size = {name: os.path.getsize(tmp_path / name / INDEX_FILE) for name in ("pq", "flat")}
    assert size["pq"] < size["flat"] / 4  # 4-byte codes + ids per image instead of 128 bytes
    loaded = GalleryIndex.load(tmp_path / "pq")
    np.testing.assert_array_equal(loaded.search(q, 10).indices, pq.search(q, 10).indices)
    loaded.set_search_params(nprobe=2)
    assert loaded.meta.params["nprobe"] == 2


def test_ivfpq_rejects_parameters_it_cannot_train():
    g, _ = clustered(300, 12, 10, seed=3)
    with pytest.raises(ValueError, match="pq_m to divide the feature dimension 12"):
        GalleryIndex.build(g, names(300), index_type="ivfpq", params={"nlist": 4, "pq_m": 5})
    with pytest.raises(ValueError, match="at least that many gallery vectors"):
        GalleryIndex.build(g, names(300), index_type="ivfpq", params={"nlist": 4, "pq_nbits": 10})
    with pytest.raises(ValueError, match="1 <= pq_nbits <= 16"):
        GalleryIndex.build(g, names(300), index_type="ivfpq", params={"nlist": 4, "pq_nbits": 0})


def test_ivf_with_all_lists_probed_is_exact():
    g, _ = clustered(1000, 16, 50, seed=8)
    q, _ = clustered(20, 16, 50, seed=9)
    ivf = GalleryIndex.build(g, names(1000), index_type="ivf", params={"nlist": 8, "nprobe": 1})
    ivf.set_search_params(nprobe=8)
    exact = GalleryIndex.build(g, names(1000)).search(q, 10)
    np.testing.assert_array_equal(ivf.search(q, 10).indices, exact.indices)
    with pytest.raises(ValueError, match="no search parameter"):
        ivf.set_search_params(ef_search=3)


@pytest.mark.parametrize("index_type", ["flat", "ivf", "hnsw"])
def test_save_and_load_round_trip(tmp_path, index_type):
    g, pids = clustered(400, 16, 20, seed=10)
    cams = np.arange(400) % 3
    index = GalleryIndex.build(
        g,
        names(400),
        root=str(tmp_path),
        pids=pids,
        camids=cams,
        index_type=index_type,
        model_name="dff_resnet50",
        checkpoint_sha256="ab" * 32,
    )
    before = index.search(g[:10], 5)
    index.save(tmp_path / "idx")
    assert sorted(os.listdir(tmp_path / "idx")) == sorted(
        [INDEX_FILE, ITEMS_FILE, META_FILE]
    )  # no temp files
    loaded = GalleryIndex.load(tmp_path / "idx")
    after = loaded.search(g[:10], 5)
    np.testing.assert_array_equal(before.indices, after.indices)
    np.testing.assert_allclose(before.distances, after.distances, rtol=1e-6)
    assert list(loaded.paths) == names(400)
    np.testing.assert_array_equal(loaded.pids, pids)
    np.testing.assert_array_equal(loaded.camids, cams)
    assert loaded.meta.model_name == "dff_resnet50" and loaded.meta.params == index.meta.params
    meta = json.loads((tmp_path / "idx" / META_FILE).read_text())
    assert meta["dim"] == 16 and meta["normalized"] is True and meta["num_items"] == 400
    GalleryIndex.load(tmp_path / "idx", dim=16, normalized=True, model_name="dff_resnet50")
    with pytest.raises(IndexCompatibilityError, match="dimension: index 16, queries 32"):
        GalleryIndex.load(tmp_path / "idx", dim=32)


def saved_index(tmp_path):
    g, pids = clustered(50, 8, 5)
    index = GalleryIndex.build(g, names(50), root=str(tmp_path), pids=pids, camids=np.zeros(50, int))
    index.save(tmp_path / "idx")
    return tmp_path / "idx"


def rehash(directory):
    """Make meta.json describe the files as they are now (to get past the hash check)."""
    meta = json.loads((directory / META_FILE).read_text())
    for name in meta["files"]:
        path = directory / name
        meta["files"][name] = {"bytes": path.stat().st_size, "sha256": sha256_file(path)}
    (directory / META_FILE).write_text(json.dumps(meta))


def test_load_refuses_missing_directory_and_missing_files(tmp_path):
    with pytest.raises(IndexFormatError, match="does not exist"):
        GalleryIndex.load(tmp_path / "nope")
    directory = saved_index(tmp_path)
    (directory / INDEX_FILE).unlink()
    with pytest.raises(IndexFormatError, match=INDEX_FILE):
        GalleryIndex.load(directory)
    (directory / META_FILE).unlink()
    with pytest.raises(IndexFormatError, match="not a reid-dff index"):
        GalleryIndex.load(directory)


def test_load_refuses_files_from_another_build(tmp_path):
    directory = saved_index(tmp_path)
    other = tmp_path / "other"
    g, _ = clustered(50, 8, 5, seed=99)
    GalleryIndex.build(g, names(50)).save(other)
    (directory / INDEX_FILE).write_bytes((other / INDEX_FILE).read_bytes())
    with pytest.raises(IndexFormatError, match="different builds"):
        GalleryIndex.load(directory)


def test_load_refuses_wrong_version_and_corrupt_meta(tmp_path):
    directory = saved_index(tmp_path)
    meta = json.loads((directory / META_FILE).read_text())
    (directory / META_FILE).write_text(json.dumps({**meta, "version": 99}))
    with pytest.raises(IndexFormatError, match="version 99"):
        GalleryIndex.load(directory)
    (directory / META_FILE).write_text("{not json")
    with pytest.raises(IndexFormatError, match="cannot read"):
        GalleryIndex.load(directory)
    # hand-edited descriptions are format errors naming the field, not TypeErrors from deep inside
    for change, field in (
        ({"params": {"nprobe": "x"}}, "'params'"),
        ({"params": {"bogus": 3}}, "'params'"),
        ({"files": {INDEX_FILE: 1, ITEMS_FILE: 2}}, "'files'"),
        ({"model": "resnet"}, "'model'"),
        ({"dim": "512"}, "'dim'"),
    ):
        (directory / META_FILE).write_text(json.dumps({**meta, **change}))
        with pytest.raises(IndexFormatError, match=field):
            GalleryIndex.load(directory)


def test_load_refuses_pickled_items(tmp_path):
    directory = saved_index(tmp_path)
    with open(directory / ITEMS_FILE, "wb") as f:
        np.savez(f, paths=np.array([object()] * 50, dtype=object), pids=np.zeros(50), camids=np.zeros(50))
    rehash(directory)
    with pytest.raises(IndexFormatError, match="without pickled objects"):
        GalleryIndex.load(directory)


def test_load_refuses_corrupt_faiss_file(tmp_path):
    directory = saved_index(tmp_path)
    (directory / INDEX_FILE).write_bytes(b"garbage" * 10)
    rehash(directory)
    with pytest.raises(IndexFormatError, match="FAISS cannot read"):
        GalleryIndex.load(directory)


def test_check_compatible_names_every_mismatch(tmp_path):
    g, _ = clustered(20, 8, 4)
    index = GalleryIndex.build(g, names(20), model_name="dff_resnet50", checkpoint_sha256="a" * 64)
    index.check_compatible(dim=8, normalized=True, model_name="dff_resnet50", checkpoint_sha256="a" * 64)
    with pytest.raises(IndexCompatibilityError) as info:
        index.check_compatible(dim=16, normalized=False, model_name="resnet50", checkpoint_sha256="b" * 64)
    text = str(info.value)
    for part in ("dimension: index 8, queries 16", "normalization", "model: index 'dff_resnet50'", "SHA-256"):
        assert part in text
    with pytest.raises(IndexCompatibilityError, match="dimension 16 but the index holds dimension 8"):
        index.search(np.zeros((1, 16), np.float32), 3)


def test_build_rejects_bad_inputs():
    g, _ = clustered(10, 4, 2)
    with pytest.raises(ValueError, match="gallery features is empty"):
        GalleryIndex.build(np.zeros((0, 4), np.float32), [])
    with pytest.raises(ValueError, match="NaN"):
        GalleryIndex.build(np.full((2, 4), np.nan, np.float32), names(2))
    with pytest.raises(ValueError, match="3 paths for 10"):
        GalleryIndex.build(g, names(3))
    with pytest.raises(ValueError, match="unknown index type 'lsh'"):
        GalleryIndex.build(g, names(10), index_type="lsh")
    with pytest.raises(ValueError, match="unknown hnsw parameters"):
        GalleryIndex.build(g, names(10), index_type="hnsw", params={"nlist": 4})
    with pytest.raises(ValueError, match="unknown metric"):
        GalleryIndex.build(g, names(10), metric="dot")
    with pytest.raises(UnsafeIndexPathError, match="inside it"):
        GalleryIndex.build(g, ["../escape.jpg"] + names(9))
    with pytest.raises(UnsafeIndexPathError):
        GalleryIndex.build(g, ["/etc/passwd"] + names(9))


def test_filtering_needs_gallery_identities():
    g, _ = clustered(10, 4, 2)
    index = GalleryIndex.build(g, names(10))
    with pytest.raises(IndexCompatibilityError, match="without them"):
        index.search(g[:1], 3, query_pids=[1], query_camids=[0])


def test_gallery_paths_are_checked_before_use(tmp_path):
    root = tmp_path / "gallery"
    (root / "g").mkdir(parents=True)
    (root / "g" / "0000.jpg").write_bytes(b"x")
    (tmp_path / "secret.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "secret.jpg", root / "g" / "0001.jpg")  # a link that leaves the root
    g, _ = clustered(3, 4, 2)
    index = GalleryIndex.build(g, names(3), root=str(root))
    assert index.gallery_path(0) == os.path.realpath(root / "g" / "0000.jpg")
    with pytest.raises(UnsafeIndexPathError, match="outside the gallery root"):
        index.gallery_path(1)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        index.gallery_path(2)
    index.paths[0] = "../secret.jpg"  # as a tampered items.npz would hold
    with pytest.raises(UnsafeIndexPathError):
        index.gallery_path(0)
    rootless = GalleryIndex.build(g, names(3))
    with pytest.raises(UnsafeIndexPathError, match="no gallery root"):
        rootless.gallery_path(0)


@pytest.mark.filterwarnings("ignore:Cython evaluation")
def test_cmc_from_filtered_search_equals_torchreid():
    from torchreid.reid.metrics import evaluate_rank

    g, g_pids = clustered(150, 16, 15, seed=11, noise=1.0)
    q, q_pids = clustered(40, 16, 15, seed=12, noise=1.0)
    rng = np.random.default_rng(13)
    g_cams, q_cams = rng.integers(0, 3, 150), rng.integers(0, 3, 40)
    index = GalleryIndex.build(g, names(150), pids=g_pids, camids=g_cams)
    result = index.search(q, 10, query_pids=q_pids, query_camids=q_cams)
    cmc, num_valid = cmc_from_search(result, g_pids, g_cams, q_pids, q_cams)
    distmat = brute_force_distances(q, g, "cosine")
    expected_cmc, _ = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10, use_cython=False)
    np.testing.assert_allclose(cmc, expected_cmc, atol=1e-9)
    assert 0 < num_valid <= 40


def test_queries_of_unknown_identity_exclude_nothing():
    g, _ = clustered(40, 8, 4, seed=20)
    pids = np.where(np.arange(40) % 2 == 0, -1, 3)  # half the gallery has no known identity
    index = GalleryIndex.build(g, names(40), pids=pids, camids=np.zeros(40, int))
    unfiltered = index.search(g[:3], 10)
    filtered = index.search(g[:3], 10, query_pids=[-1, -1, -1], query_camids=[0, 0, 0])
    np.testing.assert_array_equal(filtered.indices, unfiltered.indices)
    known = index.search(g[:3], 10, query_pids=[3, 3, 3], query_camids=[0, 0, 0])
    assert (pids[known.indices] == -1).all()  # every pid-3 item shares the camera and is excluded


# ------------------------------------------------------------------------------ large galleries, streamed
def _saved_gallery(tmp_path, num, dim, seed=11):
    from reid_dff.evaluation import Features
    from reid_dff.inference import save_features

    g, pids = clustered(num, dim, 50, seed=seed)
    path = tmp_path / "gallery.npz"
    save_features(path, Features(g, names(num), pids=pids, camids=np.zeros(num, np.int64)))
    return path, g


def test_load_features_can_map_the_matrix_instead_of_reading_it(tmp_path):
    from reid_dff.inference import load_features

    path, g = _saved_gallery(tmp_path, 300, 8)
    mapped, read = load_features(path, mmap=True), load_features(path)
    assert isinstance(mapped.feats.base, np.memmap) and not mapped.feats.flags.writeable
    np.testing.assert_array_equal(mapped.feats, g)
    np.testing.assert_array_equal(mapped.feats, read.feats)
    assert mapped.paths == read.paths and (mapped.pids == read.pids).all()
    # a compressed file (not what we write, but a valid .npz) is read instead of mapped
    with np.load(path) as data:
        arrays = {name: data[name] for name in data.files}
    np.savez_compressed(tmp_path / "compressed.npz", **arrays)
    compressed = load_features(tmp_path / "compressed.npz", mmap=True)
    assert not isinstance(compressed.feats.base, np.memmap)
    np.testing.assert_array_equal(compressed.feats, g)


@pytest.mark.parametrize(
    "index_type, params",
    [("flat", {}), ("ivf", {"nlist": 4, "nprobe": 4, "train_per_list": 40})],
)
@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_build_from_a_mapped_gallery_reads_it_in_batches(tmp_path, index_type, params, metric):
    import tracemalloc

    from reid_dff.inference import load_features

    path, g = _saved_gallery(tmp_path, 10000, 512)  # 20 MB of features
    q, _ = clustered(30, 512, 50, seed=12)
    features = load_features(path, mmap=True)
    tracemalloc.start()
    index = GalleryIndex.build(
        features.feats,
        features.paths,
        metric=metric,
        index_type=index_type,
        params=dict(params),
        add_batch_size=250,
    )
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    # numpy's and Python's allocations are traced (FAISS's own storage is not): the paths and ids (~1 MB),
    # a few batches and the 160-row training sample, never a normalized copy or a mask of the whole gallery
    assert peak < g.nbytes / 5
    reference = GalleryIndex.build(g, names(10000), metric=metric)
    index.set_search_params(**({"nprobe": 4} if index_type == "ivf" else {}))
    np.testing.assert_array_equal(index.search(q, 10).indices, reference.search(q, 10).indices)


def test_streamed_build_reports_the_gallery_row_of_a_nan(tmp_path):
    g, _ = clustered(5000, 8, 10)
    g[3210, 5] = np.inf
    with pytest.raises(ValueError, match="first in row 3210"):
        GalleryIndex.build(g, names(5000), add_batch_size=1000)
    with pytest.raises(ValueError, match="first in row 3210"):
        GalleryIndex.build(
            g, names(5000), index_type="ivf", params={"nlist": 2, "train_per_list": 39}, add_batch_size=1000
        )
