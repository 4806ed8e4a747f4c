"""build_index.py / search.py on features nothing can be searched with, and a camera-filtered search with
no valid query: one error line each (issue 18 item 6), and the ranked lists are still written."""

import json

import numpy as np
import pytest
from script_loader import load_tool

from reid_dff.evaluation import Features
from reid_dff.inference import FeaturesFileError, load_features, save_features


def write_features(path, feats, pids=None, camids=None):
    n = len(feats)
    pids = np.arange(n) if pids is None else np.asarray(pids)
    camids = np.ones(n, dtype=np.int64) if camids is None else np.asarray(camids)
    paths = [f"{p:04d}_c{c}s1_{i:06d}_00.jpg" for i, (p, c) in enumerate(zip(pids, camids))]
    save_features(path, Features(feats=feats, paths=paths, root="", pids=pids, camids=camids))
    return str(path)


def bad_file(tmp_path, kind):
    """(path, what the error line must say) of one kind of unusable features file."""
    feats = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    if kind == "zero_rows":
        path = write_features(tmp_path / "zero.npz", np.zeros((0, 8), np.float32))
        return path, f"features file {path} holds no features (shape (0, 8))"
    if kind == "zero_bytes":
        (tmp_path / "empty.npz").write_bytes(b"")
        return str(tmp_path / "empty.npz"), f"cannot read features file {tmp_path / 'empty.npz'}"
    value, shown = {"nan": (np.nan, "NaN"), "inf": (np.inf, "inf"), "minus_inf": (-np.inf, "-inf")}[kind]
    feats[3, 5] = value
    feats[4, 0] = np.nan  # a later bad row: the first one is named
    path = write_features(tmp_path / f"{kind}.npz", feats)
    return path, f"features file {path}: row 3 (0003_c1s1_000003_00.jpg) has {shown} in column 5"


KINDS = ["zero_rows", "zero_bytes", "nan", "inf", "minus_inf"]


@pytest.mark.parametrize("kind", KINDS)
def test_load_features_refuses_unusable_files_naming_the_file_and_row(tmp_path, kind):
    path, message = bad_file(tmp_path, kind)
    for mmap in (False, True):  # build_index maps the gallery; the check scans the map
        with pytest.raises(FeaturesFileError) as info:
            load_features(path, mmap=mmap)
        assert str(info.value).startswith(message), str(info.value)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tool", ["build_index", "search"])
def test_index_and_search_tools_refuse_unusable_features_in_one_line(tmp_path, capsys, tool, kind):
    good = write_features(tmp_path / "good.npz", np.eye(6, 8, dtype=np.float32))
    load_tool("build_index").main(["--features", good, "--index", str(tmp_path / "index")])
    capsys.readouterr()
    path, message = bad_file(tmp_path, kind)
    argv = {
        "build_index": ["--features", path, "--index", str(tmp_path / "bad_index")],
        "search": ["--index", str(tmp_path / "index"), "--query-features", path, "--output",
                   str(tmp_path / "out.json")],
    }[tool]  # fmt: skip
    with pytest.raises(SystemExit) as info:
        load_tool(tool).main(argv)
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(f"{tool}.py: error: {message}"), err
    assert not (tmp_path / "bad_index").exists() and not (tmp_path / "out.json").exists()


def test_camera_filtered_search_without_a_valid_query_writes_the_lists_then_fails_in_one_line(
    tmp_path, capsys
):
    rng = np.random.default_rng(1)
    gallery = rng.standard_normal((8, 16)).astype(np.float32)
    queries = rng.standard_normal((3, 16)).astype(np.float32)
    g_pids, g_cams = np.array([0, 0, 1, 1, 2, 2, 3, 3]), np.ones(8, dtype=np.int64)
    q_pids, q_cams = np.array([0, 1, 2]), np.ones(3, dtype=np.int64)  # each identity only on its camera
    write_features(tmp_path / "g.npz", gallery, g_pids, g_cams)
    write_features(tmp_path / "q.npz", queries, q_pids, q_cams)
    load_tool("build_index").main(["--features", str(tmp_path / "g.npz"), "--index", str(tmp_path / "index")])
    capsys.readouterr()
    out = tmp_path / "output" / "ranked.json"
    with pytest.raises(SystemExit) as info:
        load_tool("search").main(
            ["--index", str(tmp_path / "index"), "--query-features", str(tmp_path / "q.npz"), "--topk", "3",
             "--exclude-same-camera", "--output", str(out)]
        )  # fmt: skip
    err = capsys.readouterr().err
    assert info.value.code == 1 and err.count("\n") == 1 and "Traceback" not in err, err
    assert err.startswith(
        "search.py: error: none of the 3 queries has a match in the gallery from another camera"
    )
    assert f"the ranked lists were written to {out})" in err
    report = json.loads(out.read_text())
    assert report["cmc"] is None and report["num_valid_queries"] == 0 and report["camera_filtering"] is True
    # The lists: cosine distance, the query's identity seen by its camera left out (numpy, by hand).
    g = gallery / np.linalg.norm(gallery, axis=1, keepdims=True)
    q = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    distances = 1 - q @ g.T
    for qi, entry in enumerate(report["queries"]):
        allowed = np.flatnonzero(~((g_pids == q_pids[qi]) & (g_cams == q_cams[qi])))
        expected = allowed[np.argsort(distances[qi, allowed], kind="stable")][:3]
        assert [r["pid"] for r in entry["results"]] == g_pids[expected].tolist()
        np.testing.assert_allclose(
            [r["distance"] for r in entry["results"]], distances[qi, expected], atol=1e-5
        )
        assert not any(r["match"] for r in entry["results"])
