"""lowp.quantize_model: PyTorch and ONNX float models quantized onto lowp's
integer graph. What a quantized model computes is compared with the float
model (SQNR), with itself across batch sizes and front ends, and with the
bounds its scheme promises (bits, ranges); bad models and bad calibration
data raise errors that name what is wrong."""

from __future__ import annotations

import io
import json
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import lowp  # noqa: E402
from lowp.quantizer import UnsupportedModelError, quantize_model  # noqa: E402
from lowp.quantizer._eval import sqnr  # noqa: E402


class Net(nn.Module):
    """Every op kind the quantizer takes: conv + batch norm + ReLU, max pool,
    transposed conv, skip concatenation, a stride-2 conv with symmetric
    padding (an explicit PAD in TFLite), residual add, ReLU6, global pooling,
    flatten, linear."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.c2 = nn.Conv2d(8, 8, 3, padding=1)
        self.up = nn.ConvTranspose2d(8, 8, 2, stride=2)
        self.c3 = nn.Conv2d(16, 8, 3, padding=1)
        self.c4 = nn.Conv2d(8, 8, 1)
        self.down = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.head = nn.Conv2d(8, 2, 1)
        self.fc = nn.Linear(8 * 4 * 4, 5)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x):
        a = torch.relu(self.bn1(self.c1(x)))
        b = torch.relu(self.c2(nn.functional.max_pool2d(a, 2)))
        u = torch.relu(self.up(b))
        c = torch.relu(self.c3(torch.cat([u, a], 1)))
        r = torch.relu(self.c4(c) + c)
        d = nn.functional.relu6(self.down(r))
        return self.head(r), self.fc(torch.flatten(d, 1)), self.pool(d).flatten(1)


def make_net(seed: int, *, bn_weight: bool = True) -> Net:
    """A Net in eval mode whose batch norm has statistics (and, with
    ``bn_weight``, a scale) drawn away from the identity, so folding it matters."""
    torch.manual_seed(seed)
    m = Net().eval()
    with torch.no_grad():
        m.bn1.running_mean.uniform_(-0.5, 0.5)
        m.bn1.running_var.uniform_(0.5, 2.0)
        if bn_weight:
            m.bn1.weight.uniform_(0.5, 1.5)
    return m


@pytest.fixture(scope="module")
def net():
    return make_net(0)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    cal = rng.standard_normal((48, 3, 8, 8)).astype(np.float32)
    test = rng.standard_normal((6, 3, 8, 8)).astype(np.float32)
    return cal, test


def _torch_out(m, x):
    with torch.no_grad():
        return [y.numpy() for y in m(torch.from_numpy(x))]


def _onnx_bytes(m, x) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            m,
            (torch.from_numpy(x),),
            buf,
            dynamo=False,
            input_names=["x"],
            dynamic_axes={"x": {0: "n"}},
        )
    return buf.getvalue()


def test_float_graph_computes_the_torch_model(net, data):
    cal, test = data
    qm = quantize_model(net, cal, progress=False)
    for ours, ref in zip(qm.float_outputs(test), _torch_out(net, test)):
        assert ours.shape == ref.shape
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    "scheme, per_channel", [("int8", None), ("int8", False), ("uint8", None), ("uint8", True)]
)
def test_quantized_model_is_close_to_float(net, data, scheme, per_channel):
    cal, test = data
    qm = quantize_model(net, cal, scheme=scheme, per_channel=per_channel, progress=False)
    assert qm.scheme.per_channel == (scheme == "int8" if per_channel is None else per_channel)
    outs = qm(test)
    for got, ref in zip(outs, _torch_out(net, test)):
        assert got.dtype == np.float32 and got.shape == ref.shape
        assert sqnr(ref, got) > 28.0
    q = qm.run_integer(qm.quantize_inputs(test)[0])
    assert all(y.dtype == qm.scheme.dtype for y in q)


def test_integer_outputs_do_not_depend_on_batch(net, data, each_path):
    cal, test = data
    qm = quantize_model(net, cal, progress=False)
    (q,) = qm.quantize_inputs(test)
    whole = qm.run_integer(q)
    for i in range(len(test)):
        one = qm.run_integer(q[i : i + 1])
        for a, b in zip(whole, one):
            np.testing.assert_array_equal(a[i : i + 1], b)


def test_integers_are_the_same_on_every_path(net, data):
    cal, test = data
    qm = quantize_model(net, cal, progress=False)
    (q,) = qm.quantize_inputs(test)
    before = lowp.get_path()
    try:
        results = []
        for path in lowp.cpu_info()["paths"]:
            lowp.set_path(path)
            results.append(qm.run_integer(q))
    finally:
        lowp.set_path(before)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_onnx_front_end_matches_the_torch_one(net, data):
    pytest.importorskip("onnx")
    cal, test = data
    from_torch = quantize_model(net, cal, progress=False)
    from_onnx = quantize_model(_onnx_bytes(net, test), cal, progress=False)
    for a, b, ref in zip(from_torch(test), from_onnx(test), _torch_out(net, test)):
        # the exporter folds batch norm itself: float rounding apart, the same model
        assert abs(sqnr(ref, a) - sqnr(ref, b)) < 1.0
        scale = float(np.max(np.abs(ref))) / 100
        assert np.max(np.abs(a - b)) <= scale


def test_onnx_path_and_proto(net, data, tmp_path):
    onnx = pytest.importorskip("onnx")
    cal, test = data
    blob = _onnx_bytes(net, test)
    path = tmp_path / "net.onnx"
    path.write_bytes(blob)
    a = quantize_model(str(path), cal, progress=False)
    b = quantize_model(onnx.load_from_string(blob), cal, progress=False)
    for x, y in zip(a(test), b(test)):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("bits", [2, 4, 6])
def test_activation_bits_limit_every_tensor(net, data, bits):
    cal, test = data
    qm = quantize_model(net, cal, activation_bits=bits, progress=False)
    levels = 2**bits
    lo, hi = qm.scheme.act_range
    for name, q in qm.trace(test).items():
        assert q.min() >= lo and q.max() <= hi, name
        assert len(np.unique(q)) <= levels, name


@pytest.mark.parametrize("bits", [3, 5])
def test_weight_bits_limit_the_weights(net, data, bits):
    cal, _ = data
    qm = quantize_model(net, cal, weight_bits=bits, progress=False)
    limit = 2 ** (bits - 1) - 1
    checked = 0
    for t in qm.tflite_graph.tensors:
        if t.data is not None and t.dtype == np.int8 and t.name.endswith("/weights"):
            assert int(np.abs(t.data.astype(np.int32)).max()) <= limit, t.name
            checked += 1
    assert checked >= 6


def test_fewer_bits_more_error(net, data):
    cal, test = data
    ref = _torch_out(net, test)[0]
    errs = [
        sqnr(
            ref, quantize_model(net, cal, activation_bits=b, weight_bits=b, progress=False)(test)[0]
        )
        for b in (3, 5, 8)
    ]
    assert errs[0] < errs[1] < errs[2]


def test_relu_outputs_have_the_lowest_zero_point(net, data):
    cal, _ = data
    qm = quantize_model(net, cal, progress=False)
    relu_outputs = [n.output for n in qm.prepared.nodes if n.clamp[0] == 0.0]
    assert relu_outputs
    for name in relu_outputs:
        assert qm.quant[name].zero_point == -128
        assert qm.quant[name].lo == 0.0


def test_concat_choice_is_reported(net, data):
    cal, _ = data
    qm = quantize_model(net, cal, progress=False)
    (cat,) = [n.output for n in qm.prepared.nodes if n.op == "concat"]
    assert qm.concat_choices[cat] in ("shared", "requantize")
    assert set(qm.concat_sqnr[cat]) == {"shared", "requantize"}
    shared = quantize_model(net, cal, concat="shared", progress=False)
    inputs = next(n.inputs for n in shared.prepared.nodes if n.op == "concat")
    assert len({shared.quant[i] for i in [*inputs, cat]}) == 1
    requant = quantize_model(net, cal, concat="requantize", progress=False)
    assert len({requant.quant[i] for i in [*inputs, cat]}) > 1


def test_auto_picks_a_method_per_tensor(net, data):
    from lowp.quantizer._calib import METHODS

    cal, test = data
    qm = quantize_model(net, cal, method="auto", progress=False)
    assert set(qm.methods.values()) <= set(METHODS)
    ref = _torch_out(net, test)
    assert sqnr(ref[0], qm(test)[0]) > 28.0
    # other bit widths keep each tensor's method
    four = qm.requantized(activation_bits=4)
    assert four.methods == qm.methods
    sweep = qm.sweep(test, bits=(4, 8), range_scales=(1.0, 2.0))
    assert sweep.both_bits[4] < sweep.both_bits[8]


def test_float_model_built_once_per_use(net, data, monkeypatch):
    """auto builds one float executor for calibration and its choices; other bit
    widths need no float run; float_outputs builds one and keeps it."""
    from lowp.quantizer import _model, _prepare

    built = []
    real = _model.executor

    def counting(pg):
        built.append(pg)
        return real(pg)

    monkeypatch.setattr(_model, "executor", counting)
    monkeypatch.setattr(_prepare, "executor", counting)  # run_float's
    cal, test = data
    qm = quantize_model(net, cal, method="auto", progress=False)
    assert len(built) == 1
    six = qm.requantized(activation_bits=6)
    assert len(built) == 1
    first = six.float_outputs(test)
    again = six.float_outputs(test)
    assert len(built) == 2
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(first, _torch_out(net, test)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def test_calibration_as_batches_equals_one_array(net, data):
    cal, _ = data
    a = quantize_model(net, cal, progress=False)
    b = quantize_model(net, [cal[i : i + 5] for i in range(0, len(cal), 5)], progress=False)
    # the same ranges up to float rounding (BLAS sums depend on the batch size)
    assert a.quant.keys() == b.quant.keys()
    for name, qa in a.quant.items():
        qb = b.quant[name]
        assert qa.zero_point == qb.zero_point, name
        np.testing.assert_allclose(qa.scale, qb.scale, rtol=1e-5, err_msg=name)


# -- bad models and bad data --------------------------------------------------------------


class Sigmoid(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.sigmoid(self.c(x))


def test_unsupported_op_named_before_calibration():
    rng = np.random.default_rng(0)
    seen = []

    def batches():
        for _ in range(3):
            seen.append(1)
            yield rng.standard_normal((2, 3, 8, 8)).astype(np.float32)

    with pytest.raises(UnsupportedModelError, match="sigmoid"):
        quantize_model(Sigmoid().eval(), batches(), progress=False)
    assert len(seen) == 1  # only the example batch was read
    assert issubclass(UnsupportedModelError, ValueError)
    assert lowp.UnsupportedModelError is UnsupportedModelError


class LoneNorm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(3)

    def forward(self, x):
        return self.bn(x)


class PoolThenRelu(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.c = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        y = self.c(x)
        return torch.relu(nn.functional.max_pool2d(y, 2)), y


@pytest.mark.parametrize("model, match", [(LoneNorm, "batch norm"), (PoolThenRelu, "activation")])
def test_unfusable_ops_are_refused(model, match):
    x = np.zeros((2, 3, 8, 8), np.float32)
    with pytest.raises(UnsupportedModelError, match=match):
        quantize_model(model().eval(), x, progress=False)


def _onnx_model(nodes, outputs, initializers=()):
    """A float ONNX model of ``nodes`` with input x [N, 3, 8, 8]."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])
    outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs]
    graph = helper.make_graph(nodes, "g", [x], outs, list(initializers))
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _onnx_conv_weights():
    from onnx import numpy_helper

    rng = np.random.default_rng(0)
    return [
        numpy_helper.from_array(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), "w"),
        numpy_helper.from_array(np.zeros(4, np.float32), "b"),
    ]


def test_onnx_model_without_outputs():
    helper = pytest.importorskip("onnx").helper

    model = _onnx_model([helper.make_node("Relu", ["x"], ["y"], name="r")], [])
    with pytest.raises(UnsupportedModelError, match="the onnx model has no outputs"):
        quantize_model(model, np.zeros((2, 3, 8, 8), np.float32), progress=False)


def test_onnx_unsupported_op_named_with_its_index_before_calibration():
    helper = pytest.importorskip("onnx").helper

    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="conv", pads=[1, 1, 1, 1]),
        helper.make_node("Sigmoid", ["c"], ["y"], name="gate"),
    ]
    model = _onnx_model(nodes, ["y"], _onnx_conv_weights())
    seen = []

    def batches():
        for _ in range(3):
            seen.append(1)
            yield np.zeros((2, 3, 8, 8), np.float32)

    with pytest.raises(
        UnsupportedModelError,
        match=r"^ONNX node 1 'gate' \(Sigmoid\): lowp cannot quantize the operator Sigmoid$",
    ):
        quantize_model(model, batches(), progress=False)
    assert seen == []  # the ONNX graph is read before any calibration data
    # the same graph without the Sigmoid quantizes: the error was about that node
    good = _onnx_model(nodes[:1], ["c"], _onnx_conv_weights())
    qm = quantize_model(good, np.ones((2, 3, 8, 8), np.float32), progress=False)
    assert [n.op for n in qm.prepared.nodes] == ["conv2d"]


EXPORT_OFF = "torch.export is switched off by this test"


def export_off(*args, **kwargs):
    """Stands in for torch.export.export, so that capture falls back to torch.fx."""
    raise RuntimeError(EXPORT_OFF)


@pytest.mark.parametrize("route", ["export", "fx"])
def test_a_model_in_training_is_captured_in_eval_and_given_its_modes_back(
    net, data, route, monkeypatch
):
    cal, test = data
    if route == "fx":
        monkeypatch.setattr(torch.export, "export", export_off)
    m = Net()
    m.load_state_dict(net.state_dict())
    m.train()
    m.up.eval()  # a layer frozen in eval inside a model in training
    modes = {name: mod.training for name, mod in m.named_modules()}
    qm = quantize_model(m, cal, progress=False)
    assert {name: mod.training for name, mod in m.named_modules()} == modes
    assert all(n.where.startswith("torch.fx") == (route == "fx") for n in qm.prepared.nodes)
    # batch norm was folded with its running statistics, as in eval mode
    for ours, ref in zip(qm.float_outputs(test), _torch_out(net, test)):
        np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)
    # and a capture that fails gives the modes back too
    bad = Sigmoid().train()
    with pytest.raises(UnsupportedModelError, match="sigmoid"):
        quantize_model(bad, cal, progress=False)
    assert bad.training and bad.c.training


@pytest.mark.parametrize(
    "calibration, error, match",
    [
        (np.zeros((0, 3, 8, 8), np.float32), ValueError, "empty"),
        ([], ValueError, "empty"),
        (np.full((2, 3, 8, 8), np.nan, np.float32), ValueError, "NaN"),
        (np.full((2, 3, 8, 8), np.inf, np.float32), ValueError, "infinite"),
        (np.zeros((2, 3, 8, 8), np.int32), TypeError, "floating"),
        ("data.npy", TypeError, "calibration must be"),
        (42, TypeError, "calibration must be"),
    ],
)
def test_bad_calibration_data(net, calibration, error, match):
    with pytest.raises(error, match=match):
        quantize_model(net, calibration, progress=False)


def test_calibration_batches_of_different_shapes(net):
    good = np.zeros((2, 3, 8, 8), np.float32)
    bad = np.zeros((2, 3, 6, 8), np.float32)
    with pytest.raises(ValueError, match="first"):
        quantize_model(net, [good, bad], progress=False)


def test_onnx_input_shape_mismatch(net, data):
    pytest.importorskip("onnx")
    _, test = data
    blob = _onnx_bytes(net, test)
    with pytest.raises(ValueError, match="takes"):
        quantize_model(blob, np.zeros((2, 3, 10, 8), np.float32), progress=False)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"scheme": "int4"}, ValueError, "scheme"),
        ({"method": "best"}, ValueError, "method"),
        ({"weight_bits": 9}, ValueError, "weight_bits"),
        ({"activation_bits": 1}, ValueError, "activation_bits"),
        ({"activation_bits": 4.0}, TypeError, "activation_bits"),
        ({"percentile": 20}, ValueError, "percentile"),
        ({"percentile": "99"}, TypeError, "percentile"),
        ({"per_channel": 1}, TypeError, "per_channel"),
        ({"concat": "merge"}, ValueError, "concat"),
    ],
)
def test_bad_arguments(net, data, kwargs, error, match):
    with pytest.raises(error, match=match):
        quantize_model(net, data[0], progress=False, **kwargs)


def test_bad_model_argument():
    with pytest.raises(TypeError, match="model"):
        quantize_model(12, np.zeros((1, 3, 4, 4), np.float32), progress=False)
    with pytest.raises(FileNotFoundError, match=r"missing\.onnx"):
        quantize_model("missing.onnx", np.zeros((1, 3, 4, 4), np.float32), progress=False)


def test_bad_inputs_to_the_quantized_model(net, data):
    cal, test = data
    qm = quantize_model(net, cal, progress=False)
    with pytest.raises(ValueError, match="shape"):
        qm(np.zeros((1, 3, 9, 8), np.float32))
    with pytest.raises(TypeError, match="floating"):
        qm(np.zeros((1, 3, 8, 8), np.int8))
    with pytest.raises(TypeError, match="int8"):
        qm.run_integer(np.zeros((1, 3, 8, 8), np.float32))
    with pytest.raises(TypeError, match="inputs"):
        qm(test, test)


# -- the report -----------------------------------------------------------------------------


def test_report_on_the_calibration_set(net, data, tmp_path):
    cal, _ = data
    qm = quantize_model(net, cal, progress=False)
    report = qm.report(cal[:16])
    assert [r.tensor for r in report.layers] == [n.output for n in qm.prepared.nodes]
    for r in report.layers:
        # minmax ranges cover the calibration data: nothing is clipped or outside
        assert r.clamped == 0.0 and r.inputs_outside == 0.0, r.name
        assert 20.0 < r.sqnr_propagated < 80.0, r.name
        assert r.max_error_steps >= 0.0
        if r.op in ("conv2d", "linear"):
            assert r.headroom_bits is not None and 0.0 < r.headroom_bits < 31.0
            assert r.multiplier is not None and 0.0 < r.multiplier[0] <= r.multiplier[1] < 1.0
    assert set(report.outputs) == set(qm.output_names)
    text = report.table()
    for r in report.layers:
        assert r.name[:28] in text
    parsed = json.loads(report.to_json(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == parsed
    assert len(parsed["layers"]) == len(report.layers)
    assert parsed["layers"][0]["sqnr_isolated"] == pytest.approx(report.layers[0].sqnr_isolated)


def test_report_sees_clipping(net, data):
    cal, _ = data
    qm = quantize_model(net, cal, method="percentile", percentile=90.0, progress=False)
    report = qm.report(cal[:16])
    assert max(r.clamped for r in report.layers) > 0.01
    assert max(r.inputs_outside for r in report.layers) > 0.01


def test_report_plots(net, data, tmp_path):
    pytest.importorskip("matplotlib")
    cal, test = data
    qm = quantize_model(net, cal, progress=False)
    qm.report(test).plot(tmp_path / "layers.png")
    sweep = qm.sweep(test, bits=(2, 4, 8), range_scales=(1.0, 4.0))
    sweep.plot(tmp_path / "sweep.png")
    for name in ("layers.png", "sweep.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_fewer_bits_and_wider_ranges_cost_accuracy(net, data):
    cal, test = data
    qm = quantize_model(net, cal, progress=False)
    sweep = qm.sweep(test, bits=(2, 4, 6, 8), range_scales=(1.0, 2.0, 4.0))
    for series in (sweep.weight_bits, sweep.activation_bits, sweep.both_bits):
        assert series[2] < series[4] < series[6] < series[8]
    assert sweep.range_scale[4.0] < sweep.range_scale[2.0] < sweep.range_scale[1.0]
    assert sweep.both_bits[8] == pytest.approx(sweep.range_scale[1.0])


def test_bias_correction_removes_the_mean_error(net, data):
    cal, _ = data
    plain = quantize_model(net, cal, weight_bits=4, progress=False)
    corrected = quantize_model(net, cal, weight_bits=4, bias_correction=True, progress=False)
    # the float model is untouched; the integer layers' mean error shrinks
    for a, b in zip(plain.float_outputs(cal[:8]), corrected.float_outputs(cal[:8])):
        np.testing.assert_array_equal(a, b)
    rp, rc = plain.report(cal[:16]), corrected.report(cal[:16])
    assert sum(r.sqnr_isolated for r in rc.layers) > sum(r.sqnr_isolated for r in rp.layers)
    with pytest.raises(TypeError, match="bias_correction"):
        quantize_model(net, cal, bias_correction="yes", progress=False)


def test_float_executors_agree(net, data):
    from lowp.quantizer._float_torch import TorchExecutor
    from lowp.quantizer._prepare import NumpyExecutor

    cal, test = data
    qm = quantize_model(net, cal, progress=False)
    feed = {qm.input_names[0]: np.ascontiguousarray(test.transpose(0, 2, 3, 1))}
    a = NumpyExecutor(qm.prepared).run(feed)
    b = TorchExecutor(qm.prepared).run(feed)
    assert a.keys() == b.keys() and len(a) == len(qm.prepared.nodes) + 1
    for name in a:
        assert a[name].shape == b[name].shape, name
        np.testing.assert_allclose(a[name], b[name], rtol=1e-4, atol=1e-5, err_msg=name)
