import numpy as np
import pytest
import torch
from eval_reference import (
    brute_force_metrics,
    min_relative_gap,
    random_problem,
    torchreid_distances,
    torchreid_evaluate,
)

from reid_dff.evaluation import NoValidQueryError, evaluate, relevant_ranks
from reid_dff.evaluation.distance import build_distance


def tie_free_problem(seed, metric, **kw):
    """The first random problem from ``seed`` on whose distances have no near-ties (within ~16 float32 ulps).

    Two evaluators computing the same distance with different rounding may order near-ties differently;
    the exactness contract is about everything else.
    """
    for candidate in range(1000 * seed, 1000 * seed + 1000):
        problem = random_problem(candidate, **kw)
        distmat = torchreid_distances(problem[0], problem[1], metric)
        if min_relative_gap(distmat) > 1e-6:
            return problem, distmat
    raise AssertionError("no tie-free problem found")


def assert_same_as_torchreid(ours, cmc, mAP):
    n = ours["num_valid_queries"]
    assert abs(ours["mAP"] - mAP) <= 1e-6
    assert ours["cmc"].shape == cmc.shape
    # torchreid's CMC is float32 (hit count / n); the hit counts must be identical.
    np.testing.assert_array_equal(np.rint(ours["cmc"] * n), np.rint(cmc.astype(np.float64) * n))
    np.testing.assert_allclose(ours["cmc"], cmc, rtol=0, atol=1e-7)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_torchreid_on_tie_free_problems(metric, seed):
    (qf, gf, q_pids, g_pids, q_camids, g_camids), distmat = tie_free_problem(seed, metric)
    cmc, mAP = torchreid_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    # A tiny budget forces one or two queries per block: blocking must not change anything.
    for budget in (0.002, 512):
        ours = evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric=metric, max_memory_mb=budget)
        assert_same_as_torchreid(ours, cmc, mAP)
        assert ours["num_skipped_queries"] > 0  # the problem has queries without a match
        assert ours["num_valid_queries"] + ours["num_skipped_queries"] == len(q_pids)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_equals_brute_force_on_tie_free_problem_including_minp(metric):
    (qf, gf, q_pids, g_pids, q_camids, g_camids), _ = tie_free_problem(3, metric)
    exact = {
        "cosine": lambda q, g: 1 - q @ g.T,
        "euclidean": lambda q, g: ((q[:, None] - g[None]) ** 2).sum(-1),
    }
    q64, g64 = qf.astype(np.float64), gf.astype(np.float64)
    if metric == "cosine":
        q64 /= np.linalg.norm(q64, axis=1, keepdims=True)
        g64 /= np.linalg.norm(g64, axis=1, keepdims=True)
    reference = brute_force_metrics(exact[metric](q64, g64), q_pids, g_pids, q_camids, g_camids, 50)
    ours = evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric=metric)
    assert ours["mINP"] == pytest.approx(reference["mINP"], abs=1e-12)
    assert ours["mAP"] == pytest.approx(reference["mAP"], abs=1e-12)
    np.testing.assert_array_equal(ours["cmc"], reference["cmc"])


def tied_problem(seed, metric):
    """Features with entries in {-1, 0, 1} (cosine: +-1, norm 2): dot products are exact, ties abound."""
    rng = np.random.default_rng(seed)
    num_query, num_gallery, dim = 30, 120, 4
    values = (-1.0, 1.0) if metric == "cosine" else (-1.0, 0.0, 1.0)
    qf = rng.choice(values, (num_query, dim)).astype(np.float32)
    gf = rng.choice(values, (num_gallery, dim)).astype(np.float32)
    q_pids, g_pids = rng.integers(0, 6, num_query), rng.integers(0, 6, num_gallery)
    q_camids, g_camids = rng.integers(0, 2, num_query), rng.integers(0, 2, num_gallery)
    q64, g64 = qf.astype(np.float64), gf.astype(np.float64)
    if metric == "cosine":
        distmat = 1 - (q64 / 2) @ (g64 / 2).T
    else:
        distmat = ((q64[:, None] - g64[None]) ** 2).sum(-1)
    return (qf, gf, q_pids, g_pids, q_camids, g_camids), distmat


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("seed", [0, 1])
def test_ties_are_broken_by_gallery_index(metric, seed):
    (qf, gf, q_pids, g_pids, q_camids, g_camids), distmat = tied_problem(seed, metric)
    # The problem really has ties between true matches and other valid items.
    assert any(
        np.intersect1d(distmat[i][g_pids == q_pids[i]], distmat[i][g_pids != q_pids[i]]).size
        for i in range(30)
    )
    reference = brute_force_metrics(distmat, q_pids, g_pids, q_camids, g_camids, 50)
    for budget in (0.001, 512):
        ours = evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric=metric, max_memory_mb=budget)
        assert ours["mAP"] == pytest.approx(reference["mAP"], abs=1e-12)
        assert ours["mINP"] == pytest.approx(reference["mINP"], abs=1e-12)
        np.testing.assert_array_equal(ours["cmc"], reference["cmc"])
        assert ours["num_valid_queries"] == reference["num_valid_queries"]


def negative_zeros(x):
    y = x.copy()
    y[:8] = 0.0
    z = y.copy()
    z[:8] = -0.0
    return y, z


@pytest.mark.parametrize(
    "metric, twins",
    [
        ("cosine", lambda x: (x, x)),
        ("euclidean", lambda x: (x, x)),
        ("cosine", lambda x: (x, 2 * x)),  # equal after normalisation: same cosine distance to every query
        ("cosine", lambda x: (x, 0.5 * x)),
        ("cosine", negative_zeros),
        ("euclidean", negative_zeros),
    ],
    ids=[
        "cosine-equal",
        "euclidean-equal",
        "cosine-2x",
        "cosine-half",
        "cosine-signed-zero",
        "euclidean-signed-zero",
    ],
)
def test_duplicate_gallery_rows_tie_whatever_the_block_size(metric, twins):
    # Real-valued features: a BLAS block product may round the same dot product differently in different
    # columns, so rows at equal distance from every query must be made to tie; the later twin is the true
    # match, so the rule "ties in gallery order" puts a wrong item first.
    rng = np.random.default_rng(0)
    dim, num_q, num_g = 128, 64, 300
    x = rng.standard_normal(dim).astype(np.float32)
    qf = (x + 0.5 * rng.standard_normal((num_q, dim))).astype(np.float32)
    gf = (-3 * (x + rng.standard_normal((num_g, dim)))).astype(np.float32)
    first, twin = twins(x)
    gf[5] = gf[299] = first
    gf[150] = twin
    g_pids = np.arange(100, 100 + num_g)
    g_pids[150] = 2
    args = (qf, gf, np.full(num_q, 2), g_pids, np.zeros(num_q, int), np.ones(num_g, int))
    for budget in (512, 0.001, 1e-6):
        ours = evaluate(*args, metric=metric, max_memory_mb=budget)
        assert ours["mAP"] == 0.5 and ours["cmc"][0] == 0.0 and ours["cmc"][1] == 1.0  # always rank 2


def test_single_match_targets_map_equals_minp_equals_mean_reciprocal_rank():
    # VIPeR-like: each query has exactly one true match (its own id from the other camera).
    rng = np.random.default_rng(0)
    num_ids, dim = 25, 8
    centres = rng.standard_normal((num_ids, dim))
    qf = (centres + rng.standard_normal((num_ids, dim))).astype(np.float32)
    gf = (centres + rng.standard_normal((num_ids, dim))).astype(np.float32)
    ids = np.arange(num_ids)
    ours = evaluate(qf, gf, ids, ids, np.zeros(num_ids), np.ones(num_ids), metric="euclidean")
    distmat = torchreid_distances(qf, gf, "euclidean")
    ranks = np.array([1 + np.sum(distmat[i] < distmat[i, i]) for i in range(num_ids)])
    assert 0 < ours["mAP"] < 1  # not trivially perfect
    assert ours["mAP"] == pytest.approx(np.mean(1.0 / ranks), abs=1e-12)
    assert ours["mINP"] == pytest.approx(ours["mAP"], abs=1e-12)
    np.testing.assert_array_equal(ours["cmc"][:10], [np.mean(ranks <= r) for r in range(1, 11)])
    cmc, mAP = torchreid_evaluate(distmat, ids, ids, np.zeros(num_ids), np.ones(num_ids), max_rank=25)
    assert_same_as_torchreid(ours, cmc, mAP)


def test_junk_removed_distractors_kept_hand_computed():
    # Query: pid 7, camera 0. Gallery by distance: same pid+camera (junk), a distractor (pid 0),
    # the true match (camera 1), another identity, a second true match (camera 2).
    qf = np.array([[0.0]], dtype=np.float32)
    gf = np.array([[1.0], [2.0], [3.0], [4.0], [5.0]], dtype=np.float32)
    g_pids = np.array([7, 0, 7, 3, 7])
    g_camids = np.array([0, 0, 1, 1, 2])
    ours = evaluate(qf, gf, [7], g_pids, [0], g_camids, metric="euclidean", max_rank=10)
    # Valid list: distractor, match (rank 2), other, match (rank 4).
    assert ours["mAP"] == pytest.approx((1 / 2 + 2 / 4) / 2)
    assert ours["mINP"] == pytest.approx(2 / 4)
    np.testing.assert_array_equal(ours["cmc"], [0, 1, 1, 1, 1])  # clipped to the 5 gallery items
    assert (ours["num_valid_queries"], ours["num_skipped_queries"]) == (1, 0)


def test_cmc_is_clipped_to_a_gallery_smaller_than_max_rank_like_torchreid():
    (qf, gf, q_pids, g_pids, _, _), distmat = tie_free_problem(4, "euclidean", num_gallery=12, num_ids=4)
    # Queries on camera 0, gallery on 1 and 2: no junk, so torchreid keeps all 12 items per query
    # (with junk it crashes on ragged CMC rows; ours keeps the CMC at 1 after the first match).
    q_camids, g_camids = np.zeros(len(q_pids), int), 1 + np.arange(12) % 2
    cmc, mAP = torchreid_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    ours = evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric="euclidean", max_rank=50)
    assert ours["cmc"].shape == (12,)
    assert_same_as_torchreid(ours, cmc, mAP)
    g_camids[:6] = 0  # now some queries lose gallery items to the same-camera rule
    ours = evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric="euclidean", max_rank=50)
    assert ours["cmc"].shape == (12,) and ours["cmc"][-1] == 1.0


def test_relevant_ranks_counts_against_few_candidates_and_against_the_whole_row():
    rng = np.random.default_rng(0)
    keys = rng.permutation(1000).astype(np.float32)
    junk = np.array([int(np.argmin(keys)), 500])
    for relevant in (np.flatnonzero(keys < 20)[:3], np.flatnonzero(keys > 900)[:4]):  # near top / far down
        relevant = np.setdiff1d(relevant, junk)
        order = [j for j in np.argsort(keys, kind="stable") if j not in set(junk)]
        expected = sorted(order.index(j) + 1 for j in relevant)
        np.testing.assert_array_equal(relevant_ranks(keys, relevant, junk), expected)


def test_accepts_torch_tensors_and_float64():
    (qf, gf, q_pids, g_pids, q_camids, g_camids), _ = tie_free_problem(5, "cosine")
    a = evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids)
    b = evaluate(
        torch.from_numpy(qf).double(),
        torch.from_numpy(gf),
        torch.from_numpy(q_pids),
        list(g_pids),
        torch.from_numpy(q_camids),
        g_camids.astype(np.float64),
    )
    assert a["mAP"] == b["mAP"] and np.array_equal(a["cmc"], b["cmc"])


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_build_distance_accepts_float64_tensors_and_lists_like_torchreid(metric):
    rng = np.random.default_rng(0)
    qf, gf = rng.standard_normal((4, 6)), rng.standard_normal((7, 6))  # float64
    expected = torchreid_distances(qf.astype(np.float32), gf.astype(np.float32), metric)
    for query, gallery in ((qf, gf), (torch.from_numpy(qf), gf.tolist()), (qf[:, ::-1][:, ::-1], gf)):
        distances = build_distance(metric, query, gallery).distances(slice(None))
        assert distances.dtype == np.float32
        np.testing.assert_allclose(distances, expected, rtol=1e-5, atol=1e-5)


def test_no_valid_query_is_a_specific_error():
    qf, gf = np.eye(3, dtype=np.float32), np.eye(3, dtype=np.float32)
    with pytest.raises(NoValidQueryError, match="none of the 3 queries"):
        evaluate(qf, gf, [1, 2, 3], [4, 5, 6], [0, 0, 0], [1, 1, 1])
    with pytest.raises(NoValidQueryError):  # same ids but only on the same camera: all junk
        evaluate(qf, gf, [1, 2, 3], [1, 2, 3], [0, 0, 0], [0, 0, 0])


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"query_features": np.zeros((3,), np.float32)}, ValueError, "query_features must be a 2-D"),
        ({"gallery_features": np.zeros((4, 5), np.float32)}, ValueError, "dimension 4 but gallery .* 5"),
        ({"gallery_features": np.zeros((0, 4), np.float32)}, ValueError, "gallery_features is empty"),
        ({"query_features": np.full((3, 4), np.nan, np.float32)}, ValueError, "NaN or infinite .* row 0"),
        ({"query_pids": [1, 2]}, ValueError, "query_pids must be a 1-D array of 3 labels"),
        ({"gallery_camids": [0.5, 1, 1, 0]}, TypeError, "gallery_camids must hold integer"),
        ({"metric": "manhattan"}, ValueError, "unknown retrieval metric 'manhattan'.*TEST.METRIC"),
        ({"max_rank": 0}, ValueError, "TEST.MAX_RANK"),
        ({"max_memory_mb": 0}, ValueError, "TEST.MAX_MEMORY_MB"),
    ],
)
def test_bad_inputs_raise_specific_errors(change, error, message):
    rng = np.random.default_rng(0)
    args = {
        "query_features": rng.standard_normal((3, 4)).astype(np.float32),
        "gallery_features": rng.standard_normal((4, 4)).astype(np.float32),
        "query_pids": [1, 2, 3],
        "gallery_pids": [1, 2, 3, 1],
        "query_camids": [0, 0, 0],
        "gallery_camids": [1, 1, 1, 0],
    }
    args.update(change)
    with pytest.raises(error, match=message):
        evaluate(**args)
