"""ISA path and thread selection, from Python and from the environment.

``LOWP_PATH`` (a path name) and ``LOWP_NUM_THREADS`` (an integer in [1,
MAX_THREADS]) are read once, when lowp is imported. A bad value (a path this
CPU lacks, a count that is not such an integer) does not stop the import: it
gives one warning naming the variable, and the default stays.
"""

from __future__ import annotations

import numbers
import os
import warnings
from typing import Any

from . import _core


def cpu_info() -> dict[str, Any]:
    """arch, CPU model, features, the paths this CPU can run (most portable first),
    the active path, threads."""
    info = dict(_core.cpu_info())
    info["paths"] = list(_core.available_paths())
    info["path"] = _core.get_path()
    info["threads"] = _core.get_num_threads()
    return info


def describe_machine() -> str:
    """One line for benchmark headers: the CPU model (with its family and model
    numbers where /proc/cpuinfo has them), the lowp path and its features."""
    info = cpu_info()
    model = info.get("model") or info["arch"]
    try:
        with open("/proc/cpuinfo") as f:
            fields = dict(
                (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in f) if v
            )
        if "cpu family" in fields and "model" in fields:
            model += f" (family {fields['cpu family']}, model {fields['model']})"
    except OSError:
        pass
    wide = [f for f in info["features"] if f.startswith(("avx2", "avx512", "avx_vnni", "asimd"))]
    return f"CPU: {model}; {', '.join(wide) or 'no SIMD features'}; lowp path {info['path']}"


def get_path() -> str:
    """The ISA path kernels run on now: "scalar", "avx2", "avx_vnni", "avx512_vnni",
    "neon" or "neon_dot" (those this build has and this CPU runs)."""
    return _core.get_path()


def set_path(name: str) -> None:
    """Force an ISA path; a path this CPU lacks is a ValueError listing the available ones."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a path name (str), got {type(name).__name__}")
    _core.set_path(name)


def get_num_threads() -> int:
    """Threads a kernel call may use (the caller's thread included)."""
    return _core.get_num_threads()


MAX_THREADS: int = _core.MAX_THREADS
"""The largest thread count lowp takes (more only cost memory and wake-ups)."""


def set_num_threads(n: int) -> None:
    """Set the thread count, 1 to MAX_THREADS (Python or NumPy integers).
    Results never depend on it; lowering it stops the extra worker threads."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral):
        raise TypeError(f"n must be an int, got {type(n).__name__}")
    n = int(n)
    if not 1 <= n <= MAX_THREADS:
        raise ValueError(f"n must be in [1, {MAX_THREADS}], got {n}")
    _core.set_num_threads(n)


def _apply_environment() -> None:
    def ignored(var: str, value: str, why: str, default: object) -> None:
        warnings.warn(
            f"{var}={value!r} ignored: {why}; using the default ({default})",
            RuntimeWarning,
            stacklevel=3,
        )

    path = os.environ.get("LOWP_PATH")
    if path:
        try:
            _core.set_path(path)
        except ValueError as err:
            ignored("LOWP_PATH", path, str(err), _core.get_path())
    threads = os.environ.get("LOWP_NUM_THREADS")
    if threads:
        try:
            n = int(threads)
        except ValueError:
            n = 0
        if 1 <= n <= MAX_THREADS:
            _core.set_num_threads(n)
        else:
            why = f"it must be an integer in [1, {MAX_THREADS}]"
            ignored("LOWP_NUM_THREADS", threads, why, _core.get_num_threads())


_apply_environment()
