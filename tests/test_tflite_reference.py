"""lowp.tflite against TensorFlow Lite's reference interpreter (BUILTIN_REF),
bit for bit, every operator's output, on every ISA path. Models are built
with TensorFlow: int8 through the Keras converter (per-channel weights),
uint8 through the legacy quantization-aware path (fake-quant TF1 graphs,
asymmetric per-tensor weights)."""

from __future__ import annotations

import functools

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

import lowp  # noqa: E402
import lowp.tflite as lt  # noqa: E402
from lowp.tflite import _build  # noqa: E402
from lowp.tflite._check import compare, reference_interpreter, run_reference  # noqa: E402
from lowp.tflite._ops import requantize_double  # noqa: E402

L = tf.keras.layers

# name -> (input shape, layers, the ops the model must contain)
INT8 = {
    "conv3_s1_relu": ((15, 17, 5), lambda x: L.Conv2D(8, 3, padding="same", activation="relu")(x), {"CONV_2D"}),  # noqa: E501
    "conv3_s2_same": ((15, 17, 5), lambda x: L.Conv2D(8, 3, strides=2, padding="same")(x), {"CONV_2D"}),  # noqa: E501
    "conv5_valid_relu6": ((15, 17, 5), lambda x: L.Conv2D(6, 5, activation="relu6")(x), {"CONV_2D"}),  # noqa: E501
    "conv5_s2_same": ((16, 16, 4), lambda x: L.Conv2D(6, 5, strides=2, padding="same")(x), {"CONV_2D"}),  # noqa: E501
    "tconv2_s2": ((7, 9, 6), lambda x: L.Conv2DTranspose(5, 2, strides=2)(x), {"TRANSPOSE_CONV"}),
    "tconv3_s2_same": ((7, 9, 6), lambda x: L.Conv2DTranspose(5, 3, strides=2, padding="same")(x), {"TRANSPOSE_CONV"}),  # noqa: E501
    "tconv3_s2_valid": ((7, 9, 6), lambda x: L.Conv2DTranspose(5, 3, strides=2)(x), {"TRANSPOSE_CONV"}),  # noqa: E501
    "tconv4_s2_same_nobias": ((7, 9, 6), lambda x: L.Conv2DTranspose(5, 4, strides=2, padding="same", use_bias=False)(x), {"TRANSPOSE_CONV"}),  # noqa: E501
    "dense_relu": ((40,), lambda x: L.Dense(12, activation="relu")(x), {"FULLY_CONNECTED"}),
    "flatten_dense": ((5, 6, 3), lambda x: L.Dense(7)(L.Flatten()(x)), {"RESHAPE", "FULLY_CONNECTED"}),  # noqa: E501
    "maxpool3_s2_same": ((15, 17, 4), lambda x: L.MaxPooling2D(3, strides=2, padding="same")(x), {"MAX_POOL_2D"}),  # noqa: E501
    "maxpool2_valid_odd": ((15, 17, 4), lambda x: L.MaxPooling2D(2)(x), {"MAX_POOL_2D"}),
    "avgpool3_s2_same": ((15, 17, 4), lambda x: L.AveragePooling2D(3, strides=2, padding="same")(x), {"AVERAGE_POOL_2D"}),  # noqa: E501
    "avgpool2_valid": ((15, 17, 4), lambda x: L.AveragePooling2D(2)(x), {"AVERAGE_POOL_2D"}),
    "add": ((9, 11, 4), lambda x: L.Add()([L.Conv2D(4, 3, padding="same")(x), x]), {"ADD"}),
    "pad": ((9, 11, 4), lambda x: L.Conv2D(4, 3)(L.ZeroPadding2D(((1, 2), (0, 3)))(x)), {"PAD"}),
    "reshape": ((6, 8, 4), lambda x: L.Reshape((12, 16))(L.Conv2D(4, 1)(x)), {"RESHAPE"}),
    "concat": ((9, 11, 4), lambda x: L.Concatenate()([L.Conv2D(3, 3, padding="same")(x), x]), {"CONCATENATION"}),  # noqa: E501
    "padv2": ((5, 6, 3), lambda x: L.Lambda(lambda t: tf.pad(t, [[0, 0], [1, 2], [2, 1], [0, 0]], constant_values=0.7))(L.Conv2D(4, 3, padding="same")(x)), {"PADV2"}),  # noqa: E501
    # windows wider than the input: TFLite clips them to it, as lowp does
    "maxpool_wider_than_input": ((4, 5, 3), lambda x: L.MaxPooling2D((7, 9), strides=1, padding="same")(x), {"MAX_POOL_2D"}),  # noqa: E501
    "avgpool_wider_than_input": ((4, 5, 3), lambda x: L.AveragePooling2D((7, 6), strides=(1, 2), padding="same")(x), {"AVERAGE_POOL_2D"}),  # noqa: E501
}  # fmt: skip


def _int8(name: str, *, float_io: bool = False) -> bytes:
    shape, layers, _ = INT8[name]

    def build(keras):
        x = keras.Input(shape, batch_size=1)
        return keras.Model(x, layers(x))

    return _build.keras_int8(build, [shape], float_io=float_io)


def _u8_nets():
    w = _build._Weights(3)

    def conv(tf, t, fq, cout, k, stride, pad, act=None, key="c"):
        cin = int(t.shape[-1])
        wk = fq(tf.constant(w(k, k, cin, cout, fan_in=k * k * cin)), key + "w")
        y = tf.nn.conv2d(t, wk, stride, pad) + tf.constant(w(cout, fan_in=1) * 0.1)
        y = {"relu": tf.nn.relu, "relu6": tf.nn.relu6, None: lambda v: v}[act](y)
        return fq(y, key + "a")

    def tconv(tf, t, fq, cout, k, pad, bias=True):
        cin, h, wd = int(t.shape[-1]), int(t.shape[1]), int(t.shape[2])
        wk = fq(tf.constant(w(k, k, cout, cin, fan_in=cin)), "tw")
        oh, ow = (2 * h, 2 * wd) if pad == "SAME" else (2 * h - 2 + k, 2 * wd - 2 + k)
        y = tf.nn.conv2d_transpose(t, wk, [1, oh, ow, cout], 2, pad)
        if bias:
            y = y + tf.constant(w(cout, fan_in=1) * 0.1)
        return fq(y, "ta")

    def add(tf, x, fq):
        return fq(conv(tf, x, fq, 4, 3, 1, "SAME") + x, "sum")

    def cat(tf, x, fq):  # x's zero point is 128, the output's is not: rescaled
        return fq(tf.concat([conv(tf, x, fq, 3, 3, 1, "SAME", "relu"), x], -1), "cat")

    def fc(tf, x, fq):
        f = tf.reshape(x, [1, -1])
        wk = fq(tf.constant(w(int(f.shape[-1]), 12, fan_in=int(f.shape[-1]))), "fw")
        return fq(tf.nn.relu(tf.matmul(f, wk) + tf.constant(w(12, fan_in=1) * 0.1)), "fa")

    def pad(tf, x, fq):
        return conv(tf, tf.pad(x, [[0, 0], [1, 2], [0, 3], [0, 0]]), fq, 4, 3, 1, "VALID")

    return {
        "u8_conv3_s1_relu": ((15, 17, 5), lambda tf, x, fq: conv(tf, x, fq, 8, 3, 1, "SAME", "relu"), {"CONV_2D"}),  # noqa: E501
        "u8_conv3_s2": ((15, 17, 5), lambda tf, x, fq: conv(tf, x, fq, 8, 3, 2, "SAME"), {"CONV_2D"}),  # noqa: E501
        "u8_conv5_valid_relu6": ((15, 17, 5), lambda tf, x, fq: conv(tf, x, fq, 6, 5, 1, "VALID", "relu6"), {"CONV_2D"}),  # noqa: E501
        "u8_tconv3_same": ((7, 9, 6), lambda tf, x, fq: tconv(tf, x, fq, 5, 3, "SAME"), {"TRANSPOSE_CONV"}),  # noqa: E501
        "u8_tconv4_same": ((7, 9, 6), lambda tf, x, fq: tconv(tf, x, fq, 5, 4, "SAME"), {"TRANSPOSE_CONV"}),  # noqa: E501
        "u8_tconv3_valid": ((7, 9, 6), lambda tf, x, fq: tconv(tf, x, fq, 5, 3, "VALID"), {"TRANSPOSE_CONV"}),  # noqa: E501
        "u8_tconv2_nobias": ((7, 9, 6), lambda tf, x, fq: tconv(tf, x, fq, 5, 2, "SAME", bias=False), {"TRANSPOSE_CONV"}),  # noqa: E501
        "u8_add": ((9, 11, 4), add, {"ADD"}),
        "u8_concat": ((9, 11, 4), cat, {"CONCATENATION"}),
        "u8_maxpool": ((15, 17, 4), lambda tf, x, fq: tf.nn.max_pool2d(x, 3, 2, "SAME"), {"MAX_POOL_2D"}),  # noqa: E501
        "u8_avgpool": ((15, 17, 4), lambda tf, x, fq: tf.nn.avg_pool2d(x, 3, 2, "SAME"), {"AVERAGE_POOL_2D"}),  # noqa: E501
        "u8_fc": ((5, 6, 3), fc, {"FULLY_CONNECTED"}),
        "u8_pad": ((9, 11, 4), pad, {"PAD"}),
    }  # fmt: skip


UINT8 = _u8_nets()


@functools.cache
def model_bytes(name: str) -> bytes:
    """Each model is built once per test session."""
    if name == "unet_int8":
        return _build.unet_int8((32, 32), 8)
    if name == "unet_uint8":
        return _build.unet_uint8((32, 32), 8)
    if name == "float_io":
        return _int8("conv3_s1_relu", float_io=True)
    if name in INT8:
        return _int8(name)
    shape, net, _ = UINT8[name]
    return _build.tf1_uint8(net, shape)


def _inputs(model: lt.Model) -> list[list[np.ndarray]]:
    """Random data (both ends of the range included), all-min and all-max."""
    sets = [model.random_inputs(0), model.random_inputs(1)]
    for pick in (0, 1):
        arrays = []
        for info in model.inputs:
            if info.dtype == np.float32:
                arrays.append(np.full(info.shape, (-3.0, 3.0)[pick], np.float32))
            else:
                lim = np.iinfo(info.dtype)
                arrays.append(np.full(info.shape, (lim.min, lim.max)[pick], info.dtype))
        sets.append(arrays)
    return sets


def _assert_exact(data: bytes, expected_ops: set[str] | None = None) -> lt.Model:
    model = lt.load(data)
    if expected_ops is not None:
        assert expected_ops <= {op.spec.name for op in model.ops}
    for inputs in _inputs(model):
        checks = compare(model, data, inputs)
        bad = [(c.index, c.op, c.mismatches, c.max_diff) for c in checks if not c.match]
        assert not bad, f"ops differing from the reference interpreter: {bad}"
        assert len(checks) == len(model.ops)
    return model


@pytest.mark.parametrize("name", sorted(INT8))
def test_int8_op(name, each_path):
    _assert_exact(model_bytes(name), INT8[name][2])


@pytest.mark.parametrize("name", sorted(UINT8))
def test_uint8_op(name, each_path):
    model = _assert_exact(model_bytes(name), UINT8[name][2])
    assert all(t.dtype == np.uint8 for t in model.inputs)


def test_uint8_concat_rescales():
    model = lt.load(model_bytes("u8_concat"))
    (op,) = [op for op in model.ops if op.name == "CONCATENATION"]
    assert any(r is not None and r[1] != 0 for r in op.rescale)  # input zp != output zp


def test_float_io_quantize_dequantize(each_path):
    model = _assert_exact(model_bytes("float_io"))
    assert [op.name for op in model.ops] == ["QUANTIZE", "CONV_2D", "DEQUANTIZE"]
    # values far outside the input range saturate, as in TFLite
    big = np.full(model.inputs[0].shape, 1e6, np.float32)
    interp = reference_interpreter(model_bytes("float_io"))
    run_reference(interp, [big])
    out = interp.get_tensor(interp.get_output_details()[0]["index"])
    np.testing.assert_array_equal(model(big), out)


@pytest.mark.parametrize("name", ["unet_int8", "unet_uint8"])
def test_whole_unet(name, each_path):
    model = _assert_exact(model_bytes(name))
    names = [op.name for op in model.ops]
    assert names.count("TRANSPOSE_CONV") == 2 and names.count("CONCATENATION") == 2
    assert "MAX_POOL_2D" in names


def test_bundled_unet_matches_reference():
    data = lt.bundled_model().read_bytes()
    _assert_exact(data)


@pytest.mark.parametrize("kind", ["int8", "uint8"])
def test_fully_connected_requantizes_in_double(kind):
    """TFLite 2.21's reference FULLY_CONNECTED rounds ``acc * real`` in double
    precision; the fixed-point multiplier differs from it in the last bit on
    some outputs, which this model (64 rows x 64 outputs) reaches."""
    if kind == "int8":

        def build(keras):
            x = keras.Input((64, 300), batch_size=1)
            return keras.Model(x, L.Dense(64)(x))

        data = _build.keras_int8(build, [(64, 300)])
    else:
        w = _build._Weights(1)

        def net(tf, x, fq):
            wk = fq(tf.constant(w(300, 64, fan_in=300)), "w")
            y = tf.matmul(tf.reshape(x, [64, 300]), wk) + tf.constant(w(64, fan_in=1) * 0.1)
            return fq(y, "y")

        data = _build.tf1_uint8(net, (64, 300))
    model = lt.load(data)
    (op,) = [op for op in model.ops if op.name == "FULLY_CONNECTED"]
    fixed_point_misses = 0
    for seed in range(3):
        inputs = model.random_inputs(seed)
        interp = reference_interpreter(data)
        run_reference(interp, inputs)
        ref = interp.get_tensor(interp.get_output_details()[0]["index"])
        np.testing.assert_array_equal(model(*inputs), ref)
        x = model.trace(*inputs).get(op.inputs[0], inputs[0])
        x_u8 = x.view(np.uint8) ^ np.uint8(0x80) if x.dtype == np.int8 else x
        acc = op.layer(x_u8.reshape(op.rows, op.k))
        double = requantize_double(acc, op.real, op.zp, op.lo, op.hi).astype(np.uint8)
        fixed = lowp.Requant(*lowp.quantize_multiplier(op.real), op.zp, op.lo, op.hi)(acc)
        ref_u8 = (ref.view(np.uint8) ^ np.uint8(0x80) if ref.dtype == np.int8 else ref).reshape(
            acc.shape
        )
        np.testing.assert_array_equal(double, ref_u8)
        fixed_point_misses += int(np.count_nonzero(fixed != ref_u8))
    assert fixed_point_misses > 0
