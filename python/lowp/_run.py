"""``lowp run``: run a .tflite model on lowp, time every operator, and with
``--check`` compare each operator with TensorFlow Lite's reference
interpreter (needs TensorFlow)."""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", nargs="?", type=Path, help="a .tflite file (default: the bundled int8 UNet)"
    )
    parser.add_argument(
        "--input",
        action="append",
        type=Path,
        metavar="X.npy",
        help="an input array (.npy), once per model input, or one .npz holding every input by"
        " name (default: deterministic random data)",
    )
    parser.add_argument(
        "--output",
        type=Path,
        metavar="Y.npy",
        help="save the output(s) to exactly this file: .npy for one output, .npz keyed by"
        " output name (any count)",
    )
    parser.add_argument("--threads", type=int, help="lowp threads (default: lowp's setting)")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median per op)")
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare every op with TFLite's reference interpreter (needs TensorFlow)",
    )


def _fail(message: str) -> int:
    print(f"lowp run: error: {message}", file=sys.stderr)
    return 2


def _shape(shape: tuple[int, ...]) -> str:
    return "x".join(map(str, shape)) or "scalar"


def run(args: argparse.Namespace) -> int:
    import lowp
    import lowp.tflite as lt

    if args.threads is not None:
        if args.threads < 1:
            return _fail("--threads must be >= 1")
        lowp.set_num_threads(args.threads)
    if args.repeats < 1:
        return _fail("--repeats must be >= 1")
    if args.check and not _have_tensorflow():
        return _fail("--check needs TensorFlow (pip install tensorflow-cpu)")
    if args.output is not None and args.output.is_dir():
        return _fail(f"--output: {args.output} is a directory; name the file to write")
    path = args.model if args.model is not None else lt.bundled_model()
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        return _fail(f"cannot read {path}: {err.strerror or err}")
    try:
        t0 = time.perf_counter()
        model = lt.load(data)
        load_s = time.perf_counter() - t0
    except lt.ModelError as err:
        return _fail(f"{path}: {err}")

    if args.input:
        try:
            inputs = _read_inputs(args.input, model.inputs)
        except (OSError, ValueError) as err:
            return _fail(f"--input: {err}")
        source = ", ".join(str(p) for p in args.input)
    else:
        inputs = model.random_inputs(0)
        source = "deterministic random data (seed 0)"
    try:
        outputs = model.run(*inputs)  # also the warm-up
    except (TypeError, ValueError) as err:
        return _fail(str(err))

    runs = []
    progress = _Progress(args.repeats)
    for i in range(args.repeats):
        _, timings = model.profile(*inputs)
        runs.append(timings)
        progress.step(i + 1)
    progress.close()
    totals = [sum(t.seconds for t in r) for r in runs]

    print(f"model:   {path}")
    print(
        f"inputs:  {', '.join(f'{t.dtype}[{_shape(t.shape)}]' for t in model.inputs)} from {source}"
    )
    info = lowp.cpu_info()
    threads = f"{info['threads']} thread(s)"
    print(f"lowp:    path {info['path']}, {threads}, loaded in {load_s * 1e3:.1f} ms")
    print(f"\n{'#':>3}  {'op':<16} {'shapes':<36} {'ms':>9}")
    for i, op in enumerate(model.ops):
        ms = statistics.median(r[i].seconds for r in runs) * 1e3
        print(f"{op.spec.index:>3}  {op.spec.name:<16} {op.describe_shapes():<36} {ms:>9.3f}")
    print(f"{'':>3}  {'total':<16} {'':<36} {statistics.median(totals) * 1e3:>9.3f}")
    print(f"(median of {args.repeats} runs)")
    print(
        f"arena:   {model.arena_bytes} bytes of activations "
        f"(liveness bound {model.runtime.arena_lower_bound})"
    )

    if args.output is not None:
        try:
            _write_outputs(args.output, model.outputs, outputs)
        except (OSError, ValueError) as err:
            return _fail(f"--output: {err}")
        arrays = ", ".join(
            f"{t.name}: {y.dtype}[{_shape(y.shape)}]" for t, y in zip(model.outputs, outputs)
        )
        print(f"output:  {args.output.absolute()} ({arrays})")
    else:
        print("output:  not saved (--output Y.npy, or Y.npz for arrays by name, saves it)")

    if args.check:
        return _check(model, data, inputs)
    return 0


_clock = time.perf_counter


class _Progress:
    """A progress line on stderr once the timed runs pass a second (short
    runs, such as the tests', print nothing): rewritten in place on a
    terminal, else one line at most every 5 seconds."""

    def __init__(self, total: int, stream=None) -> None:
        self.total = total
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.tty = bool(isatty and isatty())
        self.start = self.last = _clock()
        self.width = 0

    def step(self, done: int) -> None:
        now = _clock()
        every = 0.1 if self.tty else 5.0
        if now - self.start < 1.0 or (self.width and now - self.last < every):
            return
        if done == self.total and not self.tty:
            return  # the table follows at once
        self.last = now
        line = f"lowp run: {done} of {self.total} timed runs, {now - self.start:.1f} s"
        if self.tty:
            self.stream.write("\r" + line.ljust(self.width))
        else:
            self.stream.write(line + "\n")
        self.width = max(self.width, len(line))
        self.stream.flush()

    def close(self) -> None:
        if self.tty and self.width:
            self.stream.write("\r" + " " * self.width + "\r")
            self.stream.flush()


def _have_tensorflow() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def _read_inputs(paths: list[Path], infos) -> list[np.ndarray]:
    """One .npy per input, in order, or one .npz with every input by name."""
    if len(paths) == 1 and paths[0].suffix == ".npz":
        with np.load(paths[0], allow_pickle=False) as archive:
            missing = [t.name for t in infos if t.name not in archive.files]
            if missing:
                raise ValueError(
                    f"{paths[0]} has arrays {archive.files}, but the model's inputs are named"
                    f" {[t.name for t in infos]} (missing {missing})"
                )
            return [archive[t.name] for t in infos]
    if len(paths) != len(infos):
        raise ValueError(f"the model takes {len(infos)} input(s), got {len(paths)}")
    arrays = []
    for p in paths:
        value = np.load(p, allow_pickle=False)
        if not isinstance(value, np.ndarray):  # an .npz given among several inputs
            value.close()
            raise ValueError(f"{p} is an .npz archive: give it alone, holding every input")
        arrays.append(value)
    return arrays


def _write_outputs(path: Path, infos, outputs: list[np.ndarray]) -> None:
    """Exactly `path`: .npz keyed by output name, else .npy (one output). The
    file appears only once it is complete."""
    if path.suffix != ".npz" and len(outputs) != 1:
        raise ValueError(f"the model has {len(outputs)} outputs: name an .npz file, got {path}")
    partial = path.with_name(path.name + ".partial")
    try:
        with open(partial, "wb") as f:
            if path.suffix == ".npz":
                named: dict[str, Any] = {t.name: y for t, y in zip(infos, outputs)}
                np.savez(f, **named)
            else:
                np.save(f, outputs[0])
        partial.replace(path)
    except BaseException:
        partial.unlink(missing_ok=True)
        raise


def _check(model, data: bytes, inputs: list[np.ndarray]) -> int:
    from .tflite._check import compare

    checks = compare(model, data, inputs)
    print("\ncheck against TFLite's reference interpreter (BUILTIN_REF):")
    for c in checks:
        verdict = "exact" if c.match else f"DIFFERS in {c.mismatches} values (max {c.max_diff:g})"
        print(f"{c.index:>3}  {c.op:<16} {verdict}")
    bad = sum(not c.match for c in checks)
    print(f"{len(checks) - bad} of {len(checks)} op outputs bit-exact")
    return 1 if bad else 0
