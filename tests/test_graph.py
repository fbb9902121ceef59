"""lowp.graph: the integer graph runtime behind lowp.tflite. Concurrent calls,
batch sizes other than the file's, named feeds, pickling (also into worker
processes), the arena's size against the liveness bound, and graph checks
that name the node."""

from __future__ import annotations

import multiprocessing
import pickle
import threading
from dataclasses import replace

import numpy as np
import pytest

import lowp
import lowp.tflite as lt
import tflite_models as tm
from lowp.graph import Graph, GraphError, Node, Runtime, Tensor, check, layout


@pytest.fixture(scope="module")
def unet() -> lt.Model:
    return lt.load(lt.bundled_model())


def _inputs(model: lt.Model, seed: int, batch: int | None = None) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for info in model.inputs:
        shape = info.shape if batch is None else (batch, *info.shape[1:])
        lim = np.iinfo(info.dtype)
        out.append(rng.integers(lim.min, int(lim.max) + 1, shape, dtype=info.dtype))
    return out


def test_threads_share_one_model(unet):
    """8 threads x 200 calls, each thread with its own inputs: every result
    equals the one computed alone (the old runner reused output buffers and
    got 53-84% of such calls wrong)."""
    inputs = [_inputs(unet, seed) for seed in range(8)]
    expected = [unet(*x) for x in inputs]
    wrong = []
    start = threading.Barrier(8)

    def work(k: int) -> None:
        start.wait()
        for _ in range(200):
            if not np.array_equal(unet(*inputs[k]), expected[k]):
                wrong.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []


@pytest.mark.parametrize("batch", [2, 3])
def test_other_batch_sizes(unet, batch):
    x = _inputs(unet, 5, batch)[0]
    y = unet(x)
    assert y.shape == (batch, 64, 64, 2) and y.dtype == np.int8
    for b in range(batch):
        np.testing.assert_array_equal(y[b : b + 1], unet(x[b : b + 1]))
    plans = len(unet.runtime._plans)
    unet(x)  # planned once per shape, then cached
    assert len(unet.runtime._plans) == plans


def test_batch_shape_errors(unet):
    x = _inputs(unet, 0)[0]
    with pytest.raises(ValueError, match=r"must have shape \(1, 64, 64, 3\)"):
        unet(x[:, :32])
    with pytest.raises(ValueError, match="must have shape"):
        unet(x[:0])


def test_named_inputs_and_outputs(unet):
    (x,) = _inputs(unet, 1)
    (info,) = unet.inputs
    (out_info,) = unet.outputs
    named = unet.run({info.name: x})
    assert list(named) == [out_info.name]
    np.testing.assert_array_equal(named[out_info.name], unet(x))
    with pytest.raises(KeyError, match="unknown input name"):
        unet.run({"nope": x})
    with pytest.raises(KeyError, match="missing input"):
        unet.run({})


def test_pickle_round_trip(unet):
    x = _inputs(unet, 2)
    clone = pickle.loads(pickle.dumps(unet))
    np.testing.assert_array_equal(clone(*x), unet(*x))
    assert len(pickle.dumps(unet)) < 2 * len(lt.bundled_model().read_bytes()) + 1000


def _run_pickled(args: tuple[bytes, np.ndarray]) -> np.ndarray:
    blob, x = args
    return pickle.loads(blob)(x)


def test_multiprocessing_spawn_pool(unet):
    xs = [_inputs(unet, seed)[0] for seed in range(4)]
    blob = pickle.dumps(unet)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_run_pickled, [(blob, x) for x in xs])
    for x, y in zip(xs, results):
        np.testing.assert_array_equal(y, unet(x))


def test_dask_local_cluster(unet):
    distributed = pytest.importorskip("dask.distributed")
    xs = [_inputs(unet, seed)[0] for seed in range(3)]
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        remote = client.scatter(unet, broadcast=True)
        futures = [client.submit(lambda m, x: m(x), remote, x) for x in xs]
        results = client.gather(futures)
    for x, y in zip(xs, results):
        np.testing.assert_array_equal(y, unet(x))


def test_arena_near_liveness_bound(unet):
    assert unet.arena_bytes <= 1.1 * unet.runtime.arena_lower_bound
    # both upsampling TRANSPOSE_CONVs write straight into their concatenation
    deconvs = [op.outputs[0] for op in unet.ops if op.spec.name == "TRANSPOSE_CONV"]
    assert sorted(unet.runtime._planned.layout.pixel_stride) == sorted(deconvs)
    # far below keeping every tensor
    total = sum(t.nbytes for t in unet.runtime.graph.tensors.values() if t.data is None)
    assert unet.arena_bytes < total / 2


def test_trace_keeps_every_tensor(unet):
    x = _inputs(unet, 3)
    trace = unet.trace(*x)
    assert set(trace) == {i for op in unet.ops for i in op.outputs}
    (out,) = unet.runtime.graph.outputs
    np.testing.assert_array_equal(trace[out], unet(*x))


def test_profile_is_native_and_covers_every_op(unet):
    x = _inputs(unet, 4)
    outputs, timings = unet.profile(*x)
    np.testing.assert_array_equal(outputs[0], unet(*x))
    assert [t.op for t in timings] == [op.spec.name for op in unet.ops]
    assert all(t.seconds > 0 for t in timings)


# ------------------------------------------------------------------------------------------
# Hand-built graphs


def _q(name: str, shape: tuple[int, ...], zp: int = 128, scale: float = 0.05) -> Tensor:
    return Tensor(name, shape, np.dtype(np.uint8), scale, zp, np.dtype(np.uint8))


def _pool_graph(kind: str, **attrs) -> Graph:
    a = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "clamp": (0, 255)}
    a.update(attrs)
    return Graph(
        {0: _q("x", (1, 4, 4, 3)), 1: _q("y", (1, 2, 2, 3))},
        [Node(kind, (0,), (1,), a, None, "node 0 (pool)")],
        [0],
        [1],
    )


def test_hand_built_max_pool_matches_numpy():
    rt = Runtime(_pool_graph("max_pool2d"))
    x = np.random.default_rng(0).integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    expect = x.reshape(1, 2, 2, 2, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(rt(x), expect)


def test_graph_errors_name_the_node():
    with pytest.raises(GraphError, match=r"node 0 \(pool\).*window"):
        check(_pool_graph("max_pool2d", kernel=(0, 2)))
    with pytest.raises(GraphError, match=r"node 0 \(pool\).*shape"):
        check(_pool_graph("max_pool2d", stride=(1, 1)))
    with pytest.raises(GraphError, match=r"node 0 \(pool\).*wholly in the padding"):
        check(_pool_graph("max_pool2d", padding=(2, 0, 0, 0)))
    g = _pool_graph("max_pool2d")
    g.tensors[0] = replace(g.tensors[0], scale=float("nan"))
    with pytest.raises(GraphError, match="scale nan"):
        check(g)
    g = _pool_graph("softmax")
    with pytest.raises(GraphError, match="unknown op kind 'softmax'"):
        check(g)


def test_memory_limit_refuses_big_plans():
    with pytest.raises(GraphError, match="memory limit of 10 bytes"):
        Runtime(_pool_graph("max_pool2d"), memory_limit=10)


def test_layout_reuses_dead_buffers(unet):
    lay = layout(unet.runtime.graph)
    keep = layout(unet.runtime.graph, reuse=False)
    assert lay.arena_bytes < keep.arena_bytes
    assert keep.arena_bytes >= sum(
        t.nbytes for t in unet.runtime.graph.tensors.values() if t.data is None
    )


def test_small_conv_model_batch_and_threads():
    model = lt.load(tm.conv_model())
    x = np.random.default_rng(0).integers(0, 256, (5, 6, 7, 2), dtype=np.uint8)
    y = model(x)
    for b in range(5):
        np.testing.assert_array_equal(y[b : b + 1], model(x[b : b + 1]))
    saved = lowp.get_num_threads()
    lowp.set_num_threads(2)
    try:
        np.testing.assert_array_equal(model(x), y)
    finally:
        lowp.set_num_threads(saved)


def test_concat_input_written_in_place_by_its_producer():
    """A pooled tensor whose only use is a channel concatenation is written
    straight into the concatenation's output (a pixel stride of 5)."""
    tensors = {
        0: _q("x", (1, 4, 4, 3)),
        1: _q("p", (1, 2, 2, 3)),
        2: _q("y", (1, 2, 2, 2)),
        3: _q("c", (1, 2, 2, 5)),
        4: _q("z", (1, 2, 2, 5)),
    }
    pool = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0, 0, 0), "clamp": (0, 255)}
    concat = {
        "axis": 3,
        "rescale": [None, None],
        "offset": 0,
        "zero_point": 128,
        "range": (0, 255),
    }
    nodes = [
        Node("max_pool2d", (0,), (1,), pool, None, "pool"),
        Node("concat", (1, 2), (3,), concat, None, "concat"),
        Node("max_pool2d", (3,), (4,), {**pool, "kernel": (1, 1), "stride": (1, 1)}, None, "id"),
    ]
    graph = Graph(tensors, nodes, [0, 2], [4])
    lay = layout(graph)
    assert lay.pixel_stride == {1: 5}
    assert lay.offsets[1] == lay.offsets[3]
    rt = Runtime(graph)
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, (1, 4, 4, 3), dtype=np.uint8)
    y = rng.integers(0, 256, (1, 2, 2, 2), dtype=np.uint8)
    pooled = x.reshape(1, 2, 2, 2, 2, 3).max(axis=(2, 4))
    np.testing.assert_array_equal(rt(x, y), np.concatenate([pooled, y], axis=3))
    trace = rt.trace_tensors(x, y)  # tracing keeps every tensor apart
    np.testing.assert_array_equal(trace[1], pooled)
