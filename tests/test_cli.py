"""The command line, run the way a user runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys

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


def test_no_command_prints_help():
    done = subprocess.run([sys.executable, "-m", "lowp"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "info" in done.stdout
