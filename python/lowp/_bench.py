"""Side-by-side timing of lowp and other engines on the same shapes, in one
process, interleaved (``lowp bench gemm``). Engines that are not installed
are left out. Figures are medians of GOPS = 2 * M * N * K / seconds."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

import numpy as np

import lowp
from lowp._runtime import describe_machine

# OpenMP workers (PyTorch's) spin for 200 ms after each parallel region by
# default; on a 2-core machine they would steal the next engine's second
# core. Must be set before torch is imported.
os.environ.setdefault("KMP_BLOCKTIME", "0")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

GEMM_SHAPES = [
    (256, 256, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
    (2048, 2048, 2048),
    (1, 1024, 1024),
    (16, 1024, 4096),
    (64, 4096, 1024),
    (3136, 576, 64),
    # 3x3 convolutions as GEMMs (M pixels, K = 9 x in channels, N out channels):
    # a 3-channel first layer at 112x112, and 32- and 128-channel layers.
    (12544, 27, 32),
    (16384, 288, 32),
    (1024, 1152, 128),
]


def _ort_matmul_integer(a, b, a_zp: int, b_zp: int, threads: int):
    import onnxruntime as ort
    from onnx import TensorProto, helper

    m, k = a.shape
    n = b.shape[1]
    graph = helper.make_graph(
        [helper.make_node("MatMulInteger", ["A", "B", "a_zp", "b_zp"], ["Y"])],
        "gemm",
        [helper.make_tensor_value_info("A", TensorProto.UINT8, [m, k])],
        [helper.make_tensor_value_info("Y", TensorProto.INT32, [m, n])],
        initializer=[
            helper.make_tensor("B", TensorProto.UINT8, [k, n], b.tobytes(), raw=True),
            helper.make_tensor("a_zp", TensorProto.UINT8, [], [a_zp]),
            helper.make_tensor("b_zp", TensorProto.UINT8, [], [b_zp]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = min(model.ir_version, 9)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    sess = ort.InferenceSession(
        model.SerializeToString(),
        opts,
        providers=["CPUExecutionProvider"],
    )
    feed = {"A": a}
    want = lowp.reference.gemm(a, b, a_zp, b_zp) if m * n * k <= 2**27 else None
    if want is not None:
        got = sess.run(None, feed)[0]
        if not np.array_equal(got, want):
            raise AssertionError("ONNX Runtime MatMulInteger disagrees with the reference")
    return lambda: sess.run(None, feed)


def _torch_fbgemm_linear(a, b, threads: int):
    import warnings

    import torch

    warnings.filterwarnings("ignore", message=".*quantized tensor creation.*")
    torch.backends.quantized.engine = "fbgemm"
    torch.set_num_threads(threads)
    w = torch.from_numpy(b.T.astype(np.float32) - 128.0)  # [N, K]
    wq = torch.quantize_per_tensor(w, 1.0, 0, torch.qint8)
    packed = torch.ops.quantized.linear_prepack(wq, None)
    xq = torch.quantize_per_tensor(torch.from_numpy(a.astype(np.float32)), 1.0, 0, torch.quint8)
    return lambda: torch.ops.quantized.linear(xq, packed, 1000.0, 128)


def _engines(m: int, k: int, n: int, threads: int) -> dict[str, Callable[[], object]]:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (m, k), dtype=np.uint8)
    b = rng.integers(0, 256, (k, n), dtype=np.uint8)
    lowp.set_num_threads(threads)
    lin = lowp.Linear(b, 128, x_zero_point=3)
    rq = lowp.Requant(2**30, -12, 128)
    lin_u8 = lowp.Linear(b, 128, x_zero_point=3, requant=rq)
    # Allocating calls, as the other engines make: the common call, and the
    # shortest path through lowp's checks.
    engines: dict[str, Callable[[], object]] = {
        "lowp": lambda: lin(a),
        "lowp u8": lambda: lin_u8(a),
    }
    try:
        engines["onnxruntime"] = _ort_matmul_integer(a, b, 3, 128, threads)
    except ImportError:
        pass
    try:
        engines["torch fbgemm"] = _torch_fbgemm_linear(a, b, threads)
    except ImportError:
        pass
    af, bf = a.astype(np.float32), b.astype(np.float32)
    outf = np.empty((m, n), np.float32)
    engines["numpy f32"] = lambda: np.matmul(af, bf, out=outf)
    return engines


def _time(fn: Callable[[], object], min_seconds: float) -> float:
    """Seconds per call, over enough calls to last min_seconds."""
    calls, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return elapsed / calls
        calls *= 2 if elapsed < min_seconds / 4 else 1
        if elapsed >= min_seconds / 4:
            calls = max(calls, int(calls * min_seconds / max(elapsed, 1e-9)) + 1)


#: The variables BLAS libraries (OpenBLAS, MKL, BLIS, OpenMP builds) read
#: for their thread count when they are loaded.
BLAS_THREAD_VARIABLES = (
    "OPENBLAS_NUM_THREADS",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
)


def _has_threadpoolctl() -> bool:
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        return False
    return True


def blas_threads_pinned(threads: int) -> bool:
    """Whether NumPy's BLAS can run on `threads` threads in this process:
    threadpoolctl can set it, or the environment did before NumPy loaded."""
    return _has_threadpoolctl() or all(
        os.environ.get(name) == str(threads) for name in BLAS_THREAD_VARIABLES
    )


def _limit_blas_threads(threads: int):
    """NumPy's BLAS on the same thread count as the others: through
    threadpoolctl, else the environment variables (``lowp bench`` sets them
    and starts again when they differ). Returns the limiter to keep alive and
    a line saying how NumPy's threads are pinned."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        if blas_threads_pinned(threads):
            names = ", ".join(f"{name}={threads}" for name in BLAS_THREAD_VARIABLES)
            return None, f"numpy f32: BLAS threads set by {names} before NumPy was loaded"
        return None, (
            "numpy f32: BLAS threads NOT pinned (its own default): install threadpoolctl,"
            " or set " + ", ".join(BLAS_THREAD_VARIABLES) + " before starting Python"
        )
    return threadpool_limits(limits=threads, user_api="blas"), (
        f"numpy f32: BLAS limited to {threads} thread(s) by threadpoolctl"
    )


def bench_gemm(shapes=None, threads: int = 1, repeats: int = 7, min_seconds: float = 0.05):
    """Prints a table of GOPS medians and ratios; returns {shape: {engine: GOPS}}."""
    shapes = shapes or GEMM_SHAPES
    _limiter, numpy_threads = _limit_blas_threads(threads)  # _limiter: kept alive for the run
    results: dict[tuple[int, int, int], dict[str, float]] = {}
    print(describe_machine())
    print(f"GEMM u8 x u8 -> int32, {threads} thread(s), GOPS (median of {repeats}, interleaved)")
    print(numpy_threads)
    header = None
    for m, k, n in shapes:
        engines = _engines(m, k, n, threads)
        for fn in engines.values():
            fn()  # warm up: first-call packing and allocation
        samples: dict[str, list[float]] = {name: [] for name in engines}
        for _ in range(repeats):
            for name, fn in engines.items():
                # Worker threads of the engine before (OpenMP, OpenBLAS) spin for a while
                # after their work; with few cores they would take the next engine's.
                time.sleep(0.1)
                samples[name].append(_time(fn, min_seconds))
        ops = 2.0 * m * n * k
        gops = {name: ops / statistics.median(t) / 1e9 for name, t in samples.items()}
        results[(m, k, n)] = gops
        if header is None:
            others = [e for e in engines if e not in ("lowp", "lowp u8")]
            header = ["lowp", "lowp u8", *others]
            cols = "".join(f"{h:>14s}" for h in header)
            ratios = "".join(f"{'lowp/' + o.split()[0][:8]:>14s}" for o in others)
            print(f"{'M x K x N':>18s}{cols}{ratios}")
        row = "".join(f"{gops.get(h, float('nan')):14.1f}" for h in header)
        ratio = "".join(f"{gops['lowp'] / gops[o]:14.2f}" for o in header[2:])
        print(f"{f'{m} x {k} x {n}':>18s}{row}{ratio}", flush=True)
    return results
