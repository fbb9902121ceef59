"""The example networks (lowp.examples, trained) through lowp.quantize_model:
both front ends, both schemes; the exported .tflite runs on TensorFlow
Lite's reference interpreter to lowp's bytes in every layer, on every path."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnx")
pytest.importorskip("skimage")

import lowp  # noqa: E402
import lowp.tflite as lt  # noqa: E402
from lowp import examples  # noqa: E402
from lowp.quantizer._eval import sqnr  # noqa: E402

_CACHE: dict = {}

#: output SQNR (dB, test split) each example keeps at 8 bits: about 3 dB below
#: what the quantized models reach, so a real loss of accuracy fails
FLOOR = {"denoise_unet": 32.0, "small_resnet": 23.0}


def _data(name):
    if name not in _CACHE:
        cal = examples.dataset(name, "calibration", 64)[0]
        test = examples.dataset(name, "test", 16)[0]
        model = examples.load_torch(name)
        with torch.no_grad():
            ref = model(torch.from_numpy(test)).numpy()
        _CACHE[name] = (model, cal, test, ref)
    return _CACHE[name]


def _quantized(name, source, scheme):
    key = (name, source, scheme)
    if key not in _CACHE:
        model, cal, _, _ = _data(name)
        src = model if source == "torch" else examples.onnx_path(name)
        _CACHE[key] = lowp.quantize_model(src, cal, scheme=scheme, progress=False)
    return _CACHE[key]


@pytest.mark.parametrize("name", examples.NAMES)
@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_both_front_ends_quantize_the_examples(name, scheme):
    _, _, test, ref = _data(name)
    a = _quantized(name, "torch", scheme)
    b = _quantized(name, "onnx", scheme)
    for qm in (a, b):
        assert sqnr(ref, qm(test)) > FLOOR[name]
    # the ONNX file holds the same network with batch norm folded by the exporter
    assert abs(sqnr(ref, a(test)) - sqnr(ref, b(test))) < 0.5


@pytest.mark.parametrize("name", examples.NAMES)
@pytest.mark.parametrize("scheme", ["int8", "uint8"])
def test_exported_examples_are_bit_exact_with_tflite(name, scheme, each_path):
    pytest.importorskip("tensorflow")
    from lowp.tflite._check import compare

    _, _, test, _ = _data(name)
    qm = _quantized(name, "onnx", scheme)
    blob = qm.tflite_bytes()
    model = lt.load(blob)
    (q,) = qm.quantize_inputs(test[:1])
    checks = compare(model, blob, [np.ascontiguousarray(q.transpose(0, 2, 3, 1))])
    assert len(checks) == len(model.ops) >= len(qm.prepared.nodes)
    assert [c for c in checks if not c.match] == []
