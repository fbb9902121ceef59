"""What lowp.quantize_model exports: the .tflite file runs on lowp and on
TensorFlow Lite's reference interpreter to the integers the quantized model
computes, every layer, every path; the ONNX QDQ file runs on ONNX Runtime
within one step of them; nothing is written when an export fails."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import lowp.tflite as lt  # noqa: E402
from lowp.quantizer import quantize_model  # noqa: E402
from test_quantize_model import make_net  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return make_net(3, bn_weight=False)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    return (
        rng.standard_normal((32, 3, 8, 8)).astype(np.float32),
        rng.standard_normal((3, 3, 8, 8)).astype(np.float32),
    )


_MODELS: dict = {}


def _quantized(net, data, scheme, concat):
    key = (scheme, concat)
    if key not in _MODELS:
        _MODELS[key] = quantize_model(net, data[0], scheme=scheme, concat=concat, progress=False)
    return _MODELS[key]


def _nhwc(q):
    return np.ascontiguousarray(q.transpose(0, 2, 3, 1))


CASES = [("int8", "shared"), ("int8", "requantize"), ("uint8", "shared"), ("uint8", "requantize")]


@pytest.mark.parametrize("scheme, concat", CASES)
def test_exported_tflite_runs_to_the_same_integers_on_lowp(net, data, scheme, concat, tmp_path):
    qm = _quantized(net, data, scheme, concat)
    path = tmp_path / "m.tflite"
    qm.save_tflite(path)
    assert path.read_bytes() == qm.tflite_bytes()
    loaded = lt.load(path)
    (q,) = qm.quantize_inputs(data[1])
    ours = qm.run_integer(q)
    theirs = loaded(_nhwc(q))
    for a, name, b in zip(ours, qm.output_names, theirs):
        b = b.transpose(0, 3, 1, 2) if b.ndim == 4 else b
        np.testing.assert_array_equal(a, b, err_msg=name)
    if concat == "requantize":
        assert any(op.name == "QUANTIZE" for op in loaded.graph.ops)


@pytest.mark.parametrize("scheme, concat", CASES)
def test_exported_tflite_is_bit_exact_with_tflite(net, data, scheme, concat, each_path):
    pytest.importorskip("tensorflow")
    from lowp.tflite._check import compare

    qm = _quantized(net, data, scheme, concat)
    blob = qm.tflite_bytes()
    model = lt.load(blob)
    (q,) = qm.quantize_inputs(data[1][:1])
    checks = compare(model, blob, [_nhwc(q)])
    assert len(checks) == len(model.ops)
    bad = [c for c in checks if not c.match]
    assert not bad, bad


def test_save_tflite_refuses_what_tflite_cannot_run(net, data, tmp_path):
    path = tmp_path / "m.tflite"
    per_channel_u8 = quantize_model(net, data[0], scheme="uint8", per_channel=True, progress=False)
    with pytest.raises(ValueError, match="per-channel"):
        per_channel_u8.save_tflite(path)
    four_bit = quantize_model(net, data[0], activation_bits=4, progress=False)
    with pytest.raises(ValueError, match="activation_bits=4"):
        four_bit.save_tflite(path)
    assert list(tmp_path.iterdir()) == []


def test_save_tflite_keeps_an_existing_file_on_failure(net, data, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(b"old")
    bad = quantize_model(net, data[0], activation_bits=4, progress=False)
    with pytest.raises(ValueError):
        bad.save_tflite(path)
    assert path.read_bytes() == b"old"
    with pytest.raises(FileNotFoundError):
        _quantized(net, data, "int8", "shared").save_tflite(tmp_path / "no" / "m.tflite")


def _has_vnni():
    import lowp

    features = lowp.cpu_info()["features"]
    return "avx512_vnni" in features or "avx_vnni" in features


@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_exported_onnx_runs_on_onnx_runtime(net, data, scheme, tmp_path):
    """The QDQ file's meaning, run by ONNX Runtime as written (Q and DQ around
    float operators, optimizations off), is within a step or two of lowp. Its
    default session fuses QDQ into integer kernels; on x86-64 without VNNI
    those multiply uint8 x int8 with vpmaddubsw, whose int16 sums saturate
    (the "linear" output here ends up 14 steps off on an AVX2-only Zen 2), so
    the fused session is held to the same bound only where the CPU has VNNI."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    qm = _quantized(net, data, scheme, "shared")
    path = tmp_path / "m.onnx"
    qm.save_onnx(path)
    kinds = {n.op_type for n in qm.onnx_model().graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv", "ConvTranspose", "Gemm"} <= kinds
    ours = qm(data[1])
    levels = [ort.GraphOptimizationLevel.ORT_DISABLE_ALL]
    if _has_vnni():
        levels.append(ort.GraphOptimizationLevel.ORT_ENABLE_ALL)
    for level in levels:
        options = ort.SessionOptions()
        options.graph_optimization_level = level
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        theirs = session.run(None, {qm.input_names[0]: data[1]})
        for name, a, b in zip(qm.output_names, ours, theirs):
            assert a.shape == b.shape
            steps = np.rint((a - b) / qm.quant[name].scale)
            # ONNX Runtime requantizes in float: the last step differs now and then
            assert np.max(np.abs(steps)) <= 2, (level, name)
            assert np.mean(steps != 0) < 0.2, (level, name)


def test_saved_files_get_the_usual_permissions(net, data, tmp_path):
    pytest.importorskip("onnx")
    import os

    qm = _quantized(net, data, "int8", "shared")
    qm.save_tflite(tmp_path / "m.tflite")
    qm.save_onnx(tmp_path / "m.onnx")
    umask = os.umask(0)
    os.umask(umask)
    for name in ("m.tflite", "m.onnx"):
        assert (tmp_path / name).stat().st_mode & 0o777 == 0o666 & ~umask, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.tflite"]
    with pytest.raises(TypeError, match="path"):
        qm.save_onnx(3)
