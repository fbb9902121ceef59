"""The command line, run the way a user runs it."""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

import lowp


def _check_info(stdout: str) -> None:
    info = lowp.cpu_info()
    lines = dict(line.split(":", 1) for line in stdout.splitlines() if ":" in line)
    assert lines["arch"].strip() == info["arch"]
    assert lines["paths"].split() == info["paths"]
    assert lines["path"].strip() in info["paths"]
    assert int(lines["threads"]) >= 1


def test_python_dash_m_info():
    done = subprocess.run(
        [sys.executable, "-m", "lowp", "info"], capture_output=True, text=True, check=True
    )
    _check_info(done.stdout)


@pytest.mark.skipif(shutil.which("lowp") is None, reason="the lowp script is not on PATH")
def test_console_script_info():
    done = subprocess.run(["lowp", "info"], capture_output=True, text=True, check=True)
    _check_info(done.stdout)


def test_version():
    done = subprocess.run(
        [sys.executable, "-m", "lowp", "--version"], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == f"lowp {lowp.__version__}"


@pytest.mark.parametrize("command", [["info"], ["run", "--threads", "1"]])
def test_closed_pipe_ends_quietly(command):
    # stdout is a pipe whose reader is already gone (lowp run | head -1, once
    # head has exited): every write fails with EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "lowp", *command],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr


def test_info_names_the_cpu():
    done = subprocess.run(
        [sys.executable, "-m", "lowp", "info"], capture_output=True, text=True, check=True
    )
    cpu = [line for line in done.stdout.splitlines() if line.startswith("cpu:")]
    assert cpu and cpu[0].split(":", 1)[1].strip() == (lowp.cpu_info()["model"] or "-")


@pytest.mark.parametrize(
    "args, message",
    [
        (["gemm", "--repeats", "0"], "--repeats must be >= 1"),
        (["gemm", "--threads", "0"], "--threads must be >= 1"),
        (["conv", "--threads", "-1"], "--threads must be >= 1"),
        (["gemm", "--shapes", "1x40000x1"], "K must be <= 33025"),
        (["conv", "--shapes", "conv3s1:1x8x8x4000x4"], "at most 33025"),
    ],
)
def test_bench_refuses_bad_arguments_in_one_line(args, message):
    done = subprocess.run(
        [sys.executable, "-m", "lowp", "bench", *args], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_no_command_prints_help():
    done = subprocess.run([sys.executable, "-m", "lowp"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "info" in done.stdout


def test_bench_conv_tiny_shapes():
    # Two tiny layers, one round: every installed engine runs, and lowp's
    # output is bit-exact on both.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lowp",
            "bench",
            "conv",
            "--repeats",
            "1",
            "--shapes",
            "conv3s2:1x7x6x3x5",
            "deconv2s2:2x3x4x8x9",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    header = next(line for line in lines if line.startswith("op"))
    assert header.split()[10] == "lowp"
    conv = next(line for line in lines if line.startswith("conv 3x3 s2"))
    deconv = next(line for line in lines if line.startswith("deconv 2x2 s2"))
    assert "1x7x6x3 -> 5" in conv
    assert "2x3x4x8 -> 9" in deconv
    for row in (conv, deconv):
        assert float(row.split("->")[1].split()[1]) > 0  # lowp's GOPS
        assert "lowp exact" in row
    installed = {
        name: importlib.util.find_spec(name) is not None for name in ("onnxruntime", "torch")
    }
    assert ("ort cint exact" in conv) == installed["onnxruntime"]
    assert ("fbgemm" in deconv) == installed["torch"]


@pytest.mark.parametrize(
    "spec", ["conv3:1x8x8", "pool3s1:1x8x8x4x4", "conv4s1:1x1x1x4x4", "conv3s1:0x8x8x4x4", "x"]
)
def test_bench_conv_bad_shapes(spec):
    done = subprocess.run(
        [sys.executable, "-m", "lowp", "bench", "conv", "--shapes", spec],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert "--shapes" in done.stderr


def _lowp_run(*args: str, cwd=None, code: str | None = None) -> subprocess.CompletedProcess:
    if code is None:
        cmd = [sys.executable, "-m", "lowp", "run", "--repeats", "1", *args]
    else:
        cmd = [sys.executable, "-c", code, *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)


def _bundled():
    import lowp.tflite

    model = lowp.tflite.load(lowp.tflite.bundled_model())
    return model, model.random_inputs(3)


def test_run_output_is_exactly_the_named_file(tmp_path):
    model, inputs = _bundled()
    want = model(*inputs)
    np.save(tmp_path / "x.npy", inputs[0])
    for name in ("y.npy", "y_no_suffix"):
        done = _lowp_run("--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        assert f"output:  {tmp_path / name}" in done.stdout
        with open(tmp_path / name, "rb") as f:
            np.testing.assert_array_equal(np.load(f), want)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "y.npy", "y_no_suffix"]
    done = _lowp_run("--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "y.npz"))
    assert done.returncode == 0, done.stderr
    with np.load(tmp_path / "y.npz") as archive:
        assert archive.files == [model.outputs[0].name]
        np.testing.assert_array_equal(archive[model.outputs[0].name], want)


def test_run_refuses_a_directory_as_output(tmp_path):
    done = _lowp_run("--output", str(tmp_path))
    assert done.returncode == 2
    assert "is a directory" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_reads_npz_inputs_by_name(tmp_path):
    model, inputs = _bundled()
    np.savez(tmp_path / "x.npz", **{model.inputs[0].name: inputs[0]})
    done = _lowp_run("--input", str(tmp_path / "x.npz"), "--output", str(tmp_path / "y.npy"))
    assert done.returncode == 0, done.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), model(*inputs))
    np.savez(tmp_path / "bad.npz", wrong_name=inputs[0])
    done = _lowp_run("--input", str(tmp_path / "bad.npz"))
    assert done.returncode == 2
    assert "--input" in done.stderr and model.inputs[0].name in done.stderr
    assert "Traceback" not in done.stderr


def test_run_check_without_tensorflow_fails_before_running():
    code = (
        "import sys; sys.modules['tensorflow'] = None\n"  # import tensorflow -> ImportError
        "from lowp.cli import main\n"
        "sys.exit(main(['run', '--check']))\n"
    )
    done = _lowp_run(code=code)
    assert done.returncode == 2
    assert "--check needs TensorFlow" in done.stderr
    assert "model:" not in done.stdout  # nothing ran


def test_run_says_where_the_output_went(tmp_path):
    done = _lowp_run("--output", str(tmp_path / "y.npy"))
    assert done.returncode == 0, done.stderr
    model, _ = _bundled()
    out = model.outputs[0]
    line = next(line for line in done.stdout.splitlines() if line.startswith("output:"))
    shape = "x".join(map(str, out.shape))
    assert line == f"output:  {tmp_path / 'y.npy'} ({out.name}: {out.dtype}[{shape}])"
    done = _lowp_run()
    assert "output:  not saved (--output Y.npy" in done.stdout
    assert done.stderr == ""  # a short run shows no progress


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self._tty = tty

    def isatty(self) -> bool:
        return self._tty


@pytest.mark.parametrize("tty", [True, False])
def test_run_progress_past_a_second(monkeypatch, tty):
    from lowp import _run

    now = [0.0]
    monkeypatch.setattr(_run, "_clock", lambda: now[0])
    stream = _Stream(tty)
    progress = _run._Progress(40, stream)
    for i in range(40):
        now[0] += 0.4  # 16 s in all
        progress.step(i + 1)
    progress.close()
    text = stream.getvalue()
    if tty:
        # Rewritten in place from the first second on, cleared at the end.
        assert text.startswith("\rlowp run: 3 of 40 timed runs, 1.2 s")
        assert "40 of 40" in text and "\n" not in text
        assert text.endswith("\r" + " " * len("lowp run: 40 of 40 timed runs, 16.0 s") + "\r")
    else:
        # A line every 5 s at most, none for the last run (the table follows).
        assert text.splitlines() == [
            "lowp run: 3 of 40 timed runs, 1.2 s",
            "lowp run: 16 of 40 timed runs, 6.4 s",
            "lowp run: 29 of 40 timed runs, 11.6 s",
        ]
    quiet = _Stream(tty)
    short = _run._Progress(5, quiet)
    for i in range(5):
        now[0] += 0.1
        short.step(i + 1)
    short.close()
    assert quiet.getvalue() == ""


def test_bench_gemm_pins_numpy_threads_without_threadpoolctl(tmp_path):
    # threadpoolctl, torch and onnxruntime hidden: NumPy's BLAS threads can
    # only be set through the environment before NumPy loads, so lowp bench
    # starts again with the variables set, and says so.
    for name in ("threadpoolctl", "torch", "onnxruntime"):
        (tmp_path / f"{name}.py").write_text("raise ImportError('hidden by the test')\n")
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tmp_path), env.get("PYTHONPATH")]))
    done = subprocess.run(
        [sys.executable, "-m", "lowp", "bench", "gemm", "--repeats", "1", "--shapes", "8x8x8"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any("1 thread(s)" in line for line in lines)
    pinned = [line for line in lines if line.startswith("numpy f32: BLAS")]
    assert pinned == [
        "numpy f32: BLAS threads set by OPENBLAS_NUM_THREADS=1, OMP_NUM_THREADS=1,"
        " MKL_NUM_THREADS=1, BLIS_NUM_THREADS=1 before NumPy was loaded"
    ]
    assert any(line.strip().startswith("8 x 8 x 8") for line in lines)


def test_bench_gemm_says_when_numpy_threads_are_not_pinned(monkeypatch, capsys):
    from lowp import _bench

    monkeypatch.setitem(sys.modules, "threadpoolctl", None)  # import -> ImportError
    for name in _bench.BLAS_THREAD_VARIABLES:
        monkeypatch.setenv(name, "3")
    assert not _bench.blas_threads_pinned(2)
    _, line = _bench._limit_blas_threads(2)
    assert line.startswith("numpy f32: BLAS threads NOT pinned")
    for name in _bench.BLAS_THREAD_VARIABLES:
        monkeypatch.setenv(name, "2")
    assert _bench.blas_threads_pinned(2)
