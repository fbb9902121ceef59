"""The ``lowp`` command line: ``lowp info``, ``lowp bench``, ``lowp run``,
``lowp quantize``."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

from . import _quantize_cli, _run


def _info(_: argparse.Namespace) -> int:
    import lowp

    info = lowp.cpu_info()
    print(f"lowp {lowp.__version__}")
    print(f"cpu:      {info['model'] or '-'}")
    print(f"arch:     {info['arch']}")
    print(f"features: {' '.join(info['features']) or '-'}")
    print(f"paths:    {' '.join(info['paths'])}")
    print(f"path:     {info['path']}")
    print(f"threads:  {info['threads']}")
    return 0


def _bench_error(message: str) -> int:
    print(f"lowp bench: {message}", file=sys.stderr)
    return 2


def _bench(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        return _bench_error(f"--repeats must be >= 1, got {args.repeats}")
    if args.threads < 1:
        return _bench_error(f"--threads must be >= 1, got {args.threads}")
    if args.op == "conv":
        return _bench_conv(args)
    from . import _bench
    from .gemm import MAX_K

    if not _bench.blas_threads_pinned(args.threads):
        return _rerun_with_blas_threads(args.threads, args.argv)

    shapes = None
    if args.shapes:
        try:
            shapes = [tuple(int(v) for v in s.lower().split("x")) for s in args.shapes]
        except ValueError:
            shapes = []
        if not shapes or any(len(s) != 3 or min(s) < 1 for s in shapes):
            return _bench_error("--shapes takes MxKxN with positive sizes")
        for m, k, n in shapes:
            if k > MAX_K:
                return _bench_error(
                    f"--shapes {m}x{k}x{n}: K must be <= {MAX_K} for an exact int32 result"
                )
    _bench.bench_gemm(shapes, threads=args.threads, repeats=args.repeats)
    return 0


def _bench_conv(args: argparse.Namespace) -> int:
    from . import _bench_conv
    from .gemm import MAX_K

    try:
        shapes = [_bench_conv.parse_shape(s) for s in args.shapes or []]
    except ValueError as err:
        return _bench_error(f"--shapes: {err}")
    for text, s in zip(args.shapes or [], shapes):
        # Products summed into one output: every tap, or for a transposed
        # conv the taps that overlap there.
        taps = s.k * s.k if s.kind == "conv" else (-(-s.k // s.stride)) ** 2
        if s.cin * taps > MAX_K:
            return _bench_error(
                f"--shapes {text}: {s.cin * taps} products per output;"
                f" at most {MAX_K} give an exact int32 result"
            )
    _bench_conv.bench_conv(shapes or None, threads=args.threads, repeats=args.repeats)
    return 0


def _rerun_with_blas_threads(threads: int, argv: list[str]) -> int:
    """Without threadpoolctl, NumPy's BLAS takes its thread count from the
    environment when NumPy is loaded, which this process has done: run the
    command again in a fresh interpreter with the variables set."""
    from . import _bench

    env = dict(os.environ, **dict.fromkeys(_bench.BLAS_THREAD_VARIABLES, str(threads)))
    command = [sys.executable, "-m", "lowp", *argv]
    sys.stdout.flush()
    if os.name == "posix":
        os.execve(sys.executable, command, env)
    return subprocess.call(command, env=env)


def main(argv: list[str] | None = None) -> int:
    """Runs a command; a reader that goes away (``lowp run | head -1``) ends it
    quietly, as it does a Unix tool."""
    try:
        status = _main(argv)
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        # Further writes (and the interpreter's flush at exit) would raise
        # again: point stdout at /dev/null, then stop.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str] | None) -> int:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="lowp", description="Exact uint8 integer kernels for quantized inference."
    )
    parser.add_argument("--version", action="version", version=f"lowp {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.add_parser("info", help="print the CPU, the ISA paths and the active path and threads")
    bench = sub.add_parser("bench", help="time lowp against other engines on the same shapes")
    bench.add_argument("op", choices=["gemm", "conv"], help="what to time")
    bench.add_argument("--threads", type=int, default=1, help="threads for every engine")
    bench.add_argument("--repeats", type=int, default=7, help="interleaved rounds (median)")
    bench.add_argument(
        "--shapes",
        nargs="*",
        metavar="SHAPE",
        help="gemm: MxKxN, e.g. 256x256x256; conv: KIND K s STRIDE : N x H x W x Cin x Cout,"
        " e.g. conv3s2:1x224x224x3x32 or deconv2s2:1x28x28x128x64",
    )
    run = sub.add_parser(
        "run", help="run a .tflite model on lowp (default: the bundled UNet), time every op"
    )
    _run.add_arguments(run)
    quantize = sub.add_parser(
        "quantize",
        help="quantize a float ONNX model on lowp's kernels: report, plot, .tflite / ONNX out",
    )
    _quantize_cli.add_arguments(quantize)
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if args.command is None:
        parser.print_help()
        return 2
    handlers = {"info": _info, "bench": _bench, "run": _run.run, "quantize": _quantize_cli.run}
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
