import numpy as np
import pytest
from eval_reference import min_match_gap, random_problem, torchreid_evaluate, torchreid_rerank

from reid_dff.evaluation import KReciprocalReranker, evaluate, k_reciprocal_rerank


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize(
    ("num_query", "num_gallery", "k1", "k2"),
    [
        (30, 120, 20, 6),  # the paper's setting
        (10, 15, 20, 6),  # fewer items than k1 + 1 neighbours
        (25, 150, 7, 3),  # odd k1: round(k1 / 2) rounds half to even, as the reference does
        (20, 60, 20, 1),  # no query expansion
    ],
)
def test_equals_torchreid_re_ranking(metric, num_query, num_gallery, k1, k2):
    qf, gf, *_ = random_problem(7, num_query=num_query, num_gallery=num_gallery, num_ids=12)
    reference = torchreid_rerank(qf, gf, metric, k1=k1, k2=k2, lambda_value=0.3)
    ours = k_reciprocal_rerank(qf, gf, k1, k2, 0.3, metric=metric)
    assert ours.shape == (num_query, num_gallery) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, rtol=0, atol=1e-5)


@pytest.mark.parametrize("lambda_value", [0.0, 1.0])
def test_lambda_extremes_give_pure_jaccard_and_pure_normalised_distance(lambda_value):
    qf, gf, *_ = random_problem(8, num_query=12, num_gallery=40, num_ids=6)
    reference = torchreid_rerank(qf, gf, "cosine", lambda_value=lambda_value)
    np.testing.assert_allclose(
        k_reciprocal_rerank(qf, gf, lambda_value=lambda_value), reference, rtol=0, atol=1e-5
    )


def test_query_blocks_and_memory_budget_do_not_change_the_result():
    qf, gf, *_ = random_problem(9, num_query=30, num_gallery=150)
    dense = k_reciprocal_rerank(qf, gf, metric="euclidean")
    reranker = KReciprocalReranker(qf, gf, metric="euclidean", max_memory_mb=0.005)  # ~1 query per step
    rows = np.array([29, 3, 4, 5, 17])
    # BLAS may round a product differently for other block shapes: equal up to float32 rounding.
    np.testing.assert_allclose(reranker.distances(rows), dense[rows], rtol=0, atol=1e-6)
    np.testing.assert_allclose(reranker.distances(slice(None)), dense, rtol=0, atol=1e-6)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_evaluate_with_rerank_equals_torchreid_pipeline(metric):
    for seed in range(10, 60):  # first problem without near-ties between a true match and another id
        qf, gf, q_pids, g_pids, q_camids, g_camids = random_problem(seed, noise=1.5)
        distmat = torchreid_rerank(qf, gf, metric)
        if min_match_gap(distmat, q_pids, g_pids) > 2e-6:
            break
    else:
        raise AssertionError("no problem without near-ties found")
    cmc, mAP = torchreid_evaluate(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50)
    ours = evaluate(
        qf, gf, q_pids, g_pids, q_camids, g_camids, metric=metric, rerank=True, max_memory_mb=0.05
    )
    n = ours["num_valid_queries"]
    assert abs(ours["mAP"] - mAP) <= 1e-6
    np.testing.assert_array_equal(np.rint(ours["cmc"] * n), np.rint(cmc.astype(np.float64) * n))
    # Re-ranking changes the result (the comparison above is not the plain evaluation twice).
    assert ours["mAP"] != evaluate(qf, gf, q_pids, g_pids, q_camids, g_camids, metric=metric)["mAP"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"k1": 0}, "k1 >= 1 and k2 >= 1"),
        ({"k2": 2.5}, "k1 >= 1 and k2 >= 1"),
        ({"lambda_value": 1.5}, r"LAMBDA\) must lie in \[0, 1\]"),
        ({"metric": "hamming"}, "unknown retrieval metric 'hamming'"),
    ],
)
def test_bad_parameters_raise(kwargs, message):
    qf, gf, *_ = random_problem(0, num_query=5, num_gallery=10)
    with pytest.raises(ValueError, match=message):
        KReciprocalReranker(qf, gf, **kwargs)


def test_gallery_features_of_another_dimension_are_rejected():
    with pytest.raises(ValueError, match="dimension 4 but gallery features have 3"):
        k_reciprocal_rerank(np.ones((2, 4), np.float32), np.ones((3, 3), np.float32))
