"""Path and thread selection from Python and from the environment."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import numpy as np
import pytest

import lowp


def test_cpu_info_fields():
    info = lowp.cpu_info()
    assert info["arch"] in ("x86_64", "aarch64", "other")
    assert "scalar" in info["paths"]
    assert info["path"] in info["paths"]
    assert info["threads"] == lowp.get_num_threads() >= 1
    assert isinstance(info["features"], list)
    assert isinstance(info["model"], str)
    features = set(info["features"])
    if info["arch"] == "x86_64":
        avx2 = {"avx", "avx2", "fma", "os_ymm"} <= features
        assert ("avx2" in info["paths"]) == avx2
        avx512 = avx2 and {"avx512f", "avx512bw", "avx512vl", "os_zmm"} <= features
        assert ("avx512_vnni" in info["paths"]) == (avx512 and "avx512_vnni" in features)
        assert ("avx_vnni" in info["paths"]) == (avx2 and "avx_vnni" in features)


def test_paths_are_ordered_by_preference():
    order = ["scalar", "avx2", "avx_vnni", "avx512_vnni", "neon", "neon_dot"]
    paths = lowp.cpu_info()["paths"]
    assert paths[0] == "scalar"
    assert paths == sorted(paths, key=order.index)


def test_best_path_is_the_default():
    code = "import lowp; print(lowp.get_path(), lowp.cpu_info()['paths'][-1])"
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOWP_")}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[0] == out[1]


def test_set_path_round_trip(each_path):
    assert lowp.get_path() == each_path


def test_unavailable_path_lists_the_available_ones():
    missing = "neon" if lowp.cpu_info()["arch"] == "x86_64" else "avx2"
    with pytest.raises(ValueError, match="scalar") as err:
        lowp.set_path(missing)
    assert missing in str(err.value)
    with pytest.raises(ValueError, match="path must be one of"):
        lowp.set_path("sse9")
    with pytest.raises(TypeError, match="name"):
        lowp.set_path(1)


def test_num_threads(threads):
    lowp.set_num_threads(3)
    assert lowp.get_num_threads() == 3
    for bad in (0, -2):
        with pytest.raises(ValueError, match=r"n must be in \[1, "):
            lowp.set_num_threads(bad)
    with pytest.raises(TypeError, match="n must be an int"):
        lowp.set_num_threads(2.0)


def _run(env_extra: dict[str, str], code: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOWP_")}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)


def test_environment_variables():
    done = _run(
        {"LOWP_PATH": "scalar", "LOWP_NUM_THREADS": "3"},
        "import lowp; print(lowp.get_path(), lowp.get_num_threads())",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["scalar", "3"]


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("LOWP_PATH", "sse9"),
        ("LOWP_PATH", "neon" if platform.machine() in ("x86_64", "AMD64") else "avx2"),
        ("LOWP_NUM_THREADS", "zero"),
        ("LOWP_NUM_THREADS", "abc"),
        ("LOWP_NUM_THREADS", "0"),
        ("LOWP_NUM_THREADS", "-1"),
        ("LOWP_NUM_THREADS", "99999"),
        ("LOWP_NUM_THREADS", str(2**31)),
    ],
)
def test_bad_environment_variables_warn_and_keep_the_default(var, value):
    code = (
        "import warnings; warnings.simplefilter('always');"
        "import lowp; print(lowp.get_path(), lowp.get_num_threads(), lowp.cpu_info()['paths'][-1],"
        " lowp._core.default_num_threads())"
    )
    done = _run({var: value}, code)
    assert done.returncode == 0, done.stderr
    path, threads, best, default_threads = done.stdout.split()
    assert path == best and threads == default_threads
    assert done.stderr.count("RuntimeWarning") == 1
    assert f"{var}={value!r} ignored" in done.stderr


def test_empty_environment_variables_are_unset():
    done = _run({"LOWP_PATH": "", "LOWP_NUM_THREADS": ""}, "import lowp")
    assert done.returncode == 0 and done.stderr == ""


def test_thread_count_bounds(threads):
    lowp.set_num_threads(np.int64(3))
    assert lowp.get_num_threads() == 3
    lowp.set_num_threads(lowp.MAX_THREADS)
    with pytest.raises(ValueError, match=rf"n must be in \[1, {lowp.MAX_THREADS}\]"):
        lowp.set_num_threads(lowp.MAX_THREADS + 1)
    with pytest.raises(ValueError, match="n must be in"):
        lowp.set_num_threads(2**31)
    with pytest.raises(TypeError, match="n must be an int"):
        lowp.set_num_threads(2.0)


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_lowering_the_thread_count_releases_the_workers():
    code = (
        "import os, numpy as np, lowp\n"
        "count = lambda: len(os.listdir('/proc/self/task'))\n"
        "before = count()\n"
        "a = np.ones((4096, 64), np.uint8); b = np.ones((64, 256), np.uint8)\n"
        "lowp.set_num_threads(48); lowp.gemm(a, b, 0, 0)\n"
        "many = count()\n"
        "lowp.set_num_threads(2); lowp.gemm(a, b, 0, 0)\n"
        "print(before, many, count())\n"
    )
    done = _run({}, code)
    assert done.returncode == 0, done.stderr
    before, many, after = (int(v) for v in done.stdout.split())
    assert many >= before + 47
    assert after <= before + 1
