import json
import os
import stat

import pytest

from reid_dff.utils import atomic_open, atomic_write_json, sha256_file


def test_atomic_write_replaces_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "a.json"
    atomic_write_json(path, {"x": 1})
    atomic_write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2}
    assert os.listdir(path.parent) == ["a.json"]


def test_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "ckpt.bin"
    path.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_open(path, "wb") as f:
        f.write(b"half")
        raise RuntimeError("crash mid-write")
    assert path.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["ckpt.bin"]


def test_permissions_follow_umask_not_mkstemp(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "a.json", {})
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a.json").st_mode) == 0o644


def test_sha256_matches_hashlib(tmp_path):
    import hashlib

    (tmp_path / "f").write_bytes(b"abc" * 1000)
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc" * 1000).hexdigest()


def test_bad_mode():
    with pytest.raises(ValueError, match="modes"), atomic_open("x", "a"):
        pass


def test_temp_files_of_a_killed_write_are_found_by_their_exact_pattern(tmp_path):
    import subprocess
    import sys

    from reid_dff.utils.io import is_atomic_temp_name, remove_atomic_temp_files

    (tmp_path / "last.pth").write_bytes(b"good")
    # a process killed (SIGKILL: no cleanup runs) in the middle of an atomic write of last.pth
    code = (
        "import os, signal, sys\n"
        "from reid_dff.utils import atomic_open\n"
        "with atomic_open(os.path.join(sys.argv[1], 'last.pth')) as f:\n"
        "    f.write(b'half'); f.flush(); os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env={**os.environ}, timeout=60)
    assert killed.returncode == -9
    leftovers = [name for name in os.listdir(tmp_path) if name != "last.pth"]
    assert len(leftovers) == 1 and is_atomic_temp_name(leftovers[0], "last.pth"), leftovers
    assert not is_atomic_temp_name(leftovers[0], "best.pth")
    for name in (
        ".last.pth.tmp",
        ".last.pth.ABCDEFGH.tmp",
        ".last.pth.abcdefghi.tmp",
        "last.pth.abcdefgh.tmp",
    ):
        assert not is_atomic_temp_name(name, "last.pth"), name
        (tmp_path / name).write_bytes(b"someone else's")
    assert remove_atomic_temp_files(tmp_path, ["best.pth"]) == []
    assert remove_atomic_temp_files(tmp_path, ["last.pth", "best.pth"]) == [str(tmp_path / leftovers[0])]
    assert (tmp_path / "last.pth").read_bytes() == b"good"
    assert len(os.listdir(tmp_path)) == 5  # last.pth and the four look-alikes
    assert remove_atomic_temp_files(tmp_path / "missing", ["last.pth"]) == []
