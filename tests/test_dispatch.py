"""Path and thread selection from Python and from the environment."""

from __future__ import annotations

import os
import subprocess
import sys

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
        with pytest.raises(ValueError, match="n must be >= 1"):
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
    [("LOWP_PATH", "sse9"), ("LOWP_NUM_THREADS", "zero"), ("LOWP_NUM_THREADS", "0")],
)
def test_bad_environment_variables(var, value):
    done = _run({var: value}, "import lowp")
    assert done.returncode != 0
    assert f"ValueError: {var}" in done.stderr
