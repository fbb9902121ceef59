"""Hostile .tflite files: each is refused at load time with a ModelError that
names the operator or tensor at fault, instead of an AttributeError, a NaN
cast, a huge allocation, a hang or a silently wrong output. The models are
built with the codec of tests/tflite_fuzz.py (no TensorFlow)."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

import lowp.tflite as lt
import tflite_fuzz as fz
import tflite_models as tm
from lowp.tflite._schema import parse

# the zoo's operators in order, and its quantized tensors
ZOO_OPS = [
    "QUANTIZE",
    "CONV_2D",
    "AVERAGE_POOL_2D",
    "MAX_POOL_2D",
    "ADD",
    "PAD",
    "PADV2",
    "CONCATENATION",
    "RESHAPE",
    "FULLY_CONNECTED",
    "DEQUANTIZE",
    "QUANTIZE",
]
ZOO_QUANTIZED = ["q", "conv_w", "conv", "avg", "max", "add", "pad", "pad_value", "padv2", "cat",
                 "flat", "fc_w", "fc", "requant"]  # fmt: skip


def _ops(tree):
    return tree["subgraphs"][0]["operators"]


def _tensor(tree, name: str) -> dict:
    (t,) = [t for t in tree["subgraphs"][0]["tensors"] if t["name"] == name.encode()]
    return t


def test_zoo_loads_and_runs():
    for dtype in ("int8", "uint8"):
        model = lt.load(fz.encode(fz.zoo(dtype)))
        assert [op.spec.name for op in model.ops] == ZOO_OPS
        y, requant = model(*model.random_inputs(0))
        assert y.dtype == np.float32 and requant.dtype == np.dtype(dtype)
        assert len(np.unique(requant)) > 1


# --- 1. an options table of another type than the operator reads --------------------------


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("position", range(len(ZOO_OPS)))
def test_options_of_another_type_are_refused(position, dtype):
    tree = fz.zoo(dtype)
    op = _ops(tree)[position]
    expected = op["builtin_options"][0]
    for other in ("Conv2DOptions", "Pool2DOptions", "QuantizeOptions", "ConcatenationOptions"):
        if other == expected:
            continue
        op["builtin_options_type"] = fz.OPTION_TAGS[other]  # the table itself stays
        message = (
            rf"operator {position} \({ZOO_OPS[position]}\): has options of type {other}, "
            rf"expected {expected}"
        )
        with pytest.raises(lt.ModelError, match=message):
            lt.load(fz.encode(tree))


def test_every_wrong_options_tag_byte_is_refused():
    # the one byte of the file that holds the union tag: every other value on
    # the bundled UNet's first operator, a spread of them on every operator
    data = lt.bundled_model().read_bytes()
    _, sites = fz.decode(data)
    model = lt.load(data)
    tags = [s for s in sites if s.path.endswith(".builtin_options_type") and s.kind == "scalar"]
    assert len(tags) == len(model.ops)
    for site, op in zip(tags, model.ops):
        good = data[site.pos]
        values = range(1, 256) if op.spec.index == 0 else [*range(1, 130, 9), 255]
        for value in values:
            if value == good:
                continue
            bad = bytearray(data)
            bad[site.pos] = value
            with pytest.raises(
                lt.ModelError, match=rf"operator {op.spec.index} \({op.spec.name}\)"
            ):
                parse(bytes(bad))


def test_a_field_the_options_lack_is_a_model_error():
    opt = parse(tm.conv_model()).ops[0].options
    assert opt is not None and opt.StrideH() == 1
    with pytest.raises(lt.ModelError, match=r"operator 0 \(CONV_2D\).*no field FilterHeight"):
        opt.FilterHeight()
    with pytest.raises(AttributeError):
        opt._private  # noqa: B018 (not a schema field: a plain AttributeError)


# --- 2. declared sizes against the memory limit ---------------------------------------------


def test_default_memory_limit():
    assert lt.DEFAULT_MEMORY_LIMIT == 2**31
    assert lt.load(tm.conv_model()).graph.memory_limit == lt.DEFAULT_MEMORY_LIMIT
    assert lt.load(tm.conv_model(), memory_limit=None).graph.memory_limit == 2**31
    assert parse(tm.conv_model()).memory_limit == 2**31


def test_a_small_file_declaring_8_gib_is_refused():
    spec = tm.conv_spec()
    spec.tensors.append(tm.T([2**31 - 1], type=0, name="huge"))  # float32, never used
    data = tm.write(spec)
    assert len(data) < 1000
    message = r"tensor 4 \('huge'.*8589934588 bytes, more than the memory limit of 2147483648"
    with pytest.raises(lt.ModelError, match=message):
        lt.load(data)
    # a caller who means it raises the limit (nothing is allocated for it)
    model = lt.load(data, memory_limit=2**34)
    assert model.graph.memory_limit == 2**34


def test_memory_limit_names_the_tensor():
    data = tm.conv_model()  # the largest tensor, y, is 1 * 6 * 7 * 3 = 126 bytes
    with pytest.raises(lt.ModelError, match=r"tensor 3 \('y'.*126 bytes, more than .* 125 bytes"):
        lt.load(data, memory_limit=125)
    # the limit bounds the activation arena of a call too (x and y, aligned)
    arena = lt.load(data).arena_bytes
    assert 126 < arena
    assert lt.load(data, memory_limit=arena).graph.memory_limit == arena
    with pytest.raises(lt.ModelError, match=f"arena of {arena} bytes, more than .* of 126 bytes"):
        lt.load(data, memory_limit=126)
    with pytest.raises(lt.ModelError, match="memory limit of 100 bytes"):
        parse(data, memory_limit=100)
    assert parse(data, memory_limit=500).memory_limit == 500


@pytest.mark.parametrize("limit", ["1000", 1e6, True, [1]])
def test_memory_limit_must_be_an_int(limit):
    with pytest.raises(TypeError, match="memory_limit must be an int"):
        lt.load(tm.conv_model(), memory_limit=limit)
    with pytest.raises(TypeError, match="memory_limit"):
        parse(tm.conv_model(), memory_limit=limit)


@pytest.mark.parametrize("limit", [0, -1])
def test_memory_limit_must_be_positive(limit):
    with pytest.raises(ValueError, match="memory_limit must be a positive"):
        lt.load(tm.conv_model(), memory_limit=limit)


@pytest.mark.parametrize(
    "shape", [[0, 2**31 - 1, 2**31 - 1], [2**31 - 1, 0, 4], [1, -6, 7, 2], [-(2**31)]]
)
def test_negative_or_absurd_dims_are_refused(shape):
    # on a tensor no operator uses: only the loader's own bound can refuse it
    # (a zero dimension does not make the others harmless)
    spec = tm.conv_spec()
    spec.tensors.append(tm.T(shape, name="odd"))
    with pytest.raises(lt.ModelError, match=r"tensor 4 \('odd'"):
        lt.load(tm.write(spec))


# --- 3. int8 tensors without quantization parameters ----------------------------------------


def _reshape_model(x_scale=None, y_scale=None) -> bytes:
    m = fz.ModelTree()
    x = m.tensor([2, 3], "int8", "x", x_scale, 0 if x_scale is None else [1, -2])
    shape = m.tensor([1], "int32", "shape", data=np.array([6], np.int32))
    y = m.tensor([6], "int8", "y", y_scale)
    m.op("RESHAPE", [x, shape], [y], "ReshapeOptions", new_shape=[6])
    return fz.encode(m.tree([x], [y]))


@pytest.mark.parametrize("x_scale", [None, [0.1, 0.2]], ids=["unquantized", "per_channel"])
def test_int8_tensor_without_per_tensor_parameters_keeps_its_shape_and_values(x_scale):
    # int8 tensors were mapped to the uint8 domain only when quantized per
    # tensor, but mapped back by dtype: int8 ^ uint8 promoted to int16, and the
    # int8 view of that doubled the last dimension
    model = lt.load(_reshape_model(x_scale))
    x = np.arange(-3, 3, dtype=np.int8).reshape(2, 3)
    y = model(x)
    assert y.dtype == np.int8 and y.shape == (6,)
    np.testing.assert_array_equal(y, x.reshape(6))
    assert model.trace(x)[2].shape == (6,)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("name", ZOO_QUANTIZED)
def test_missing_quantization_is_refused_naming_the_tensor(name, dtype):
    tree = fz.zoo(dtype)
    del _tensor(tree, name)["quantization"]
    with pytest.raises(lt.ModelError, match=rf"\('{name}', {dtype} .*quantiz"):
        lt.load(fz.encode(tree))


def test_conv_input_without_quantization_is_unsupported():
    spec = tm.conv_spec()
    spec.tensors[0].scale = None
    with pytest.raises(lt.UnsupportedOpError, match=r"tensor 0 \('x'.* no quantization param"):
        lt.load(tm.write(spec))


# --- 4. scales that are no usable float32 ---------------------------------------------------

BAD_SCALES = [0.0, -0.5, 1e-40, 1e-45, math.inf, -math.inf, math.nan, 2.0**121, 3e38]


@pytest.mark.parametrize("value", BAD_SCALES)
@pytest.mark.parametrize("name", ZOO_QUANTIZED)
def test_bad_scales_are_refused_naming_op_and_tensor(name, value):
    tree = fz.zoo("int8")
    q = _tensor(tree, name)["quantization"]
    q["scale"] = [value] * len(q["scale"])
    with pytest.raises(lt.ModelError, match=rf"operator \d+ \([A-Z0-9_]+\): tensor \d+ \('{name}'"):
        lt.load(fz.encode(tree))


def test_bad_per_channel_scale_names_the_channel():
    tree = fz.zoo("int8")
    _tensor(tree, "conv_w")["quantization"]["scale"][2] = 1e-42
    message = r"operator 1 \(CONV_2D\): tensor 2 \('conv_w'.* subnormal scale \(channel 2\)"
    with pytest.raises(lt.ModelError, match=message):
        lt.load(fz.encode(tree))


def _one_op_model(op: str, options: str | None, x: tuple, y: tuple) -> bytes:
    """x -> op -> y, each given as (shape, dtype, scale, zero_point)."""
    m = fz.ModelTree()
    xi = m.tensor(x[0], x[1], "x", *x[2:])
    yi = m.tensor(y[0], y[1], "y", *y[2:])
    m.op(op, [xi], [yi], options)
    return fz.encode(m.tree([xi], [yi]))


@pytest.mark.parametrize("value", BAD_SCALES)
def test_quantize_and_dequantize_refuse_bad_scales(value):
    data = _one_op_model("QUANTIZE", "QuantizeOptions", ([4], "float32"), ([4], "int8", value, 0))
    with pytest.raises(lt.ModelError, match=r"operator 0 \(QUANTIZE\): tensor 1 \('y'.* scale"):
        lt.load(data)
    data = _one_op_model(
        "DEQUANTIZE", "DequantizeOptions", ([4], "int8", value, 0), ([4], "float32")
    )
    with pytest.raises(lt.ModelError, match=r"operator 0 \(DEQUANTIZE\): tensor 0 \('x'.* scale"):
        lt.load(data)


def test_tiny_normal_scales_still_run():
    # the smallest normal scale is fine where nothing derived from it overflows
    tiny = float(np.finfo(np.float32).tiny)
    data = _one_op_model(
        "DEQUANTIZE", "DequantizeOptions", ([4], "int8", tiny, 3), ([4], "float32")
    )
    y = lt.load(data)(np.array([-128, 0, 3, 127], np.int8))
    np.testing.assert_array_equal(y, np.float32(tiny) * np.float32([-131, -3, 0, 124]))


def test_concatenation_rescale_beyond_float32_is_refused():
    m = fz.ModelTree()
    a = m.tensor([1, 2, 2, 1], "int8", "a", 2.0**100, 0)
    b = m.tensor([1, 2, 2, 1], "int8", "b", 1.0, 0)
    out = m.tensor([1, 2, 2, 2], "int8", "out", 2.0**-100, 0)
    m.op("CONCATENATION", [a, b], [out], "ConcatenationOptions", axis=3)
    data = fz.encode(m.tree([a, b], [out]))
    with pytest.raises(lt.ModelError, match=r"CONCATENATION\): tensor 0 \('a'.* beyond float32"):
        lt.load(data)


def test_relu6_bound_beyond_float32_is_refused():
    tree = fz.zoo("int8")  # ADD has a fused RELU6: 6 / 1.5e-38 overflows float32
    _tensor(tree, "add")["quantization"]["scale"] = [1.5e-38]
    with pytest.raises(lt.ModelError, match=r"operator 4 \(ADD\): tensor 7 \('add'.*RELU6 bound"):
        lt.load(fz.encode(tree))


# --- 5. pooling windows -------------------------------------------------------------------


def _pool_model(kind, hw, kernel, stride, padding, dtype="int8", channels=2) -> bytes:
    (h, w), (kh, kw), (sh, sw) = hw, kernel, stride
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
    else:
        oh, ow = max((h - kh) // sh + 1, 1), max((w - kw) // sw + 1, 1)
    zp = -5 if dtype == "int8" else 120
    options = {"padding": 0 if padding == "SAME" else 1, "filter_height": kh, "filter_width": kw,
               "stride_h": sh, "stride_w": sw}  # fmt: skip
    m = fz.ModelTree()
    x = m.tensor([1, h, w, channels], dtype, "x", 0.1, zp)
    y = m.tensor([1, oh, ow, channels], dtype, "y", 0.1, zp)
    m.op(kind, [x], [y], "Pool2DOptions", **options)
    return fz.encode(m.tree([x], [y]))


def _pool_reference(kind, x, kernel, stride, padding):
    """TFLite's reference pooling, one output at a time, windows clipped to the input."""
    _, h, w, c = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    if padding == "SAME":
        oh, ow = -(-h // sh), -(-w // sw)
        top = max((oh - 1) * sh + kh - h, 0) // 2
        left = max((ow - 1) * sw + kw - w, 0) // 2
    else:
        oh, ow, top, left = (h - kh) // sh + 1, (w - kw) // sw + 1, 0, 0
    out = np.zeros((1, oh, ow, c), np.int64)
    for i in range(oh):
        for j in range(ow):
            r0, c0 = i * sh - top, j * sw - left
            win = x[0, max(r0, 0) : min(r0 + kh, h), max(c0, 0) : min(c0 + kw, w)].astype(np.int64)
            win = win.reshape(-1, c)
            if kind == "MAX_POOL_2D":
                out[0, i, j] = win.max(axis=0)
            else:
                n, total = len(win), win.sum(axis=0)
                out[0, i, j] = np.trunc((total + np.where(total > 0, n // 2, -(n // 2))) / n)
    return out.astype(x.dtype)


POOLS = [
    ((5, 7), (3, 3), (2, 2), "SAME"),
    ((5, 7), (2, 3), (1, 2), "VALID"),
    ((6, 6), (6, 6), (1, 1), "VALID"),
    ((4, 5), (7, 6), (3, 2), "SAME"),
    ((4, 5), (9, 11), (1, 1), "SAME"),  # the largest filter allowed: 2 * size + 1
    ((1, 1), (3, 3), (3, 3), "SAME"),
    ((3, 8), (1, 5), (4, 9), "SAME"),
]


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
@pytest.mark.parametrize(("hw", "kernel", "stride", "padding"), POOLS)
def test_pool_windows_match_a_direct_loop(kind, hw, kernel, stride, padding, dtype):
    model = lt.load(_pool_model(kind, hw, kernel, stride, padding, dtype))
    for seed in range(3):
        (x,) = model.random_inputs(seed)
        np.testing.assert_array_equal(model(x), _pool_reference(kind, x, kernel, stride, padding))


@pytest.mark.parametrize("kind", ["MAX_POOL_2D", "AVERAGE_POOL_2D"])
@pytest.mark.parametrize(
    ("kernel", "stride"),
    [
        ((10000, 10000), (1, 1)),
        ((2**30, 2**30), (1, 1)),
        ((3, 3), (2**31 - 1, 1)),
        ((18, 2), (1, 1)),
    ],
)
def test_absurd_pool_sizes_are_refused_at_once(kind, kernel, stride):
    # a 10000x10000 filter looped over 10**8 taps; 2**30 padded by the filter size (4 EiB)
    data = _pool_model(kind, (8, 8), kernel, stride, "SAME")
    assert len(data) < 1000
    t0 = time.perf_counter()
    with pytest.raises(lt.ModelError, match=rf"operator 0 \({kind}\): filter .* far beyond"):
        lt.load(data)
    assert time.perf_counter() - t0 < 1.0
