"""Build quantized .tflite models with TensorFlow, for the tests and for the
UNet bundled with the package. TensorFlow is imported here only; running a
model never needs it.

``python -m lowp.tflite._build`` regenerates ``lowp/data/unet_int8.tflite``.

int8 models come from Keras through ``TFLiteConverter`` with a representative
dataset (per-channel symmetric weights). uint8 models come from the legacy
quantization-aware path: a TF1 graph with ``fake_quant`` nodes on every
activation and weight (asymmetric, per tensor), converted with
``inference_type=uint8``; the ranges come from a float calibration run.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _tf() -> Any:
    import tensorflow as tf

    return tf


def _convert(converter: Any) -> bytes:
    with warnings.catch_warnings():  # the converters' notices are not ours to raise
        warnings.simplefilter("ignore")
        return bytes(converter.convert())


def keras_int8(
    build: Callable[[Any], Any],
    input_shapes: Sequence[Sequence[int]],
    *,
    seed: int = 0,
    samples: int = 8,
    per_channel: bool = True,
    float_io: bool = False,
) -> bytes:
    """Convert a Keras model to a full-int8 .tflite (int8 inputs and outputs).

    ``build(keras)`` returns a ``keras.Model``; ``input_shapes`` are the
    inputs' shapes without the batch axis. ``float_io`` keeps float32 inputs
    and outputs (QUANTIZE and DEQUANTIZE at the ends).
    """
    tf = _tf()
    keras = tf.keras
    keras.utils.set_random_seed(seed)
    model = build(keras)
    rng = np.random.default_rng(seed)

    def representative():
        for _ in range(samples):
            yield [rng.normal(0.0, 1.0, (1, *shape)).astype(np.float32) for shape in input_shapes]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:  # else QUANTIZE and DEQUANTIZE ops at the ends
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if not per_channel:
        converter._experimental_disable_per_channel = True
    return _convert(converter)


def unet_keras(
    keras: Any, size: tuple[int, int] = (64, 64), in_ch: int = 3, base: int = 16, out_ch: int = 2
) -> Any:
    """A small UNet: 3x3 convs (stride 1 and 2), max pool, 2x2 stride-2
    transposed convs, skip concatenations and a 1x1 head."""
    layers = keras.layers
    x = inp = keras.Input((*size, in_ch), batch_size=1)
    x = layers.Conv2D(base, 3, padding="same", activation="relu")(x)
    s1 = layers.Conv2D(base, 3, padding="same", activation="relu")(x)
    x = layers.MaxPooling2D(2)(s1)
    x = layers.Conv2D(2 * base, 3, padding="same", activation="relu")(x)
    s2 = layers.Conv2D(2 * base, 3, padding="same", activation="relu6")(x)
    x = layers.Conv2D(4 * base, 3, strides=2, padding="same", activation="relu")(s2)
    x = layers.Conv2D(4 * base, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(2 * base, 2, strides=2)(x)
    x = layers.Concatenate()([x, s2])
    x = layers.Conv2D(2 * base, 3, padding="same", activation="relu")(x)
    x = layers.Conv2DTranspose(base, 2, strides=2)(x)
    x = layers.Concatenate()([x, s1])
    x = layers.Conv2D(base, 3, padding="same", activation="relu")(x)
    x = layers.Conv2D(out_ch, 1)(x)
    return keras.Model(inp, x)


def unet_int8(size: tuple[int, int] = (64, 64), base: int = 16, *, seed: int = 0) -> bytes:
    return keras_int8(lambda k: unet_keras(k, size, 3, base), [(*size, 3)], seed=seed)


# --- uint8 through the legacy quantization-aware path -------------------------------------


def tf1_uint8(
    net: Callable[[Any, Any, Callable[[Any, str], Any]], Any],
    input_shape: Sequence[int],
    *,
    seed: int = 0,
    input_range: tuple[float, float] = (-1.0, 1.0),
) -> bytes:
    """Convert a TF1 graph with fake-quant nodes to a uint8 .tflite.

    ``net(tf, x, fq)`` builds the graph from the float input ``x``; it calls
    ``fq(t, key)`` on every activation and weight that should be quantized.
    A first pass records each ``key``'s float range on calibration data; the
    second pass inserts ``fake_quant_with_min_max_args`` with those ranges.
    """
    tf = _tf()
    v1 = tf.compat.v1
    rng = np.random.default_rng(seed)
    lo_in, hi_in = input_range
    calib = rng.uniform(lo_in, hi_in, (4, *input_shape)).astype(np.float32)

    recorded: dict[str, Any] = {}

    def record(t, key):
        recorded[key] = t
        return t

    ranges: dict[str, tuple[float, float]] = {}
    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [1, *input_shape])
        net(tf, x, record)
        with v1.Session(graph=g) as sess:
            for sample in calib:
                for k, v in sess.run(recorded, {x: sample[None]}).items():
                    lo, hi = ranges.get(k, (0.0, 1e-3))  # ranges must hold 0
                    ranges[k] = (min(lo, float(v.min())), max(hi, float(v.max())))

    def fake_quant(t, key):
        lo, hi = ranges[key]
        return tf.quantization.fake_quant_with_min_max_args(t, lo, hi)

    g = tf.Graph()
    with g.as_default():
        x = v1.placeholder(tf.float32, [1, *input_shape], name="input")
        xq = tf.quantization.fake_quant_with_min_max_args(x, lo_in, hi_in)
        y = tf.identity(net(tf, xq, fake_quant), name="output")
        with v1.Session(graph=g) as sess:
            converter = v1.lite.TFLiteConverter.from_session(sess, [x], [y])
            converter.inference_type = tf.uint8
            scale = (hi_in - lo_in) / 255.0
            converter.quantized_input_stats = {"input": (-lo_in / scale, 1.0 / scale)}
            return _convert(converter)


class _Weights:
    """Deterministic float weights for the TF1 graphs."""

    def __init__(self, seed: int):
        self.rng = np.random.default_rng(seed)

    def __call__(self, *shape: int, fan_in: int) -> np.ndarray:
        return (self.rng.normal(0.0, 1.0, shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def unet_tf1(base: int = 8, out_ch: int = 2, seed: int = 0):
    """The UNet of :func:`unet_keras` as a TF1 graph builder for :func:`tf1_uint8`."""

    def net(tf, x, fq):
        w = _Weights(seed)
        counter = [0]

        def key(kind):
            counter[0] += 1
            return f"{kind}{counter[0]}"

        def conv(t, cout, k=3, stride=1, act="relu"):
            cin = int(t.shape[-1])
            wk = fq(tf.constant(w(k, k, cin, cout, fan_in=k * k * cin)), key("w"))
            b = tf.constant(w(cout, fan_in=cin) * 0.1)
            y = tf.nn.conv2d(t, wk, stride, "SAME") + b
            if act == "relu":
                y = tf.nn.relu(y)
            elif act == "relu6":
                y = tf.nn.relu6(y)
            return fq(y, key("a"))

        def up(t, cout):
            cin = int(t.shape[-1])
            wk = fq(tf.constant(w(2, 2, cout, cin, fan_in=cin)), key("w"))
            b = tf.constant(w(cout, fan_in=cin) * 0.1)
            shape = tf.stack([tf.shape(t)[0], 2 * t.shape[1], 2 * t.shape[2], cout])
            y = tf.nn.conv2d_transpose(t, wk, shape, 2, "SAME")
            return fq(y + b, key("a"))

        def cat(a, b):
            return fq(tf.concat([a, b], axis=-1), key("a"))

        t = conv(x, base)
        s1 = conv(t, base)
        t = tf.nn.max_pool2d(s1, 2, 2, "VALID")
        t = conv(t, 2 * base)
        s2 = conv(t, 2 * base, act="relu6")
        t = conv(s2, 4 * base, stride=2)
        t = conv(t, 4 * base)
        t = cat(up(t, 2 * base), s2)
        t = conv(t, 2 * base)
        t = cat(up(t, base), s1)
        t = conv(t, base)
        return conv(t, out_ch, k=1, act=None)

    return net


def unet_uint8(size: tuple[int, int] = (32, 32), base: int = 8, *, seed: int = 0) -> bytes:
    return tf1_uint8(unet_tf1(base, seed=seed), (*size, 3), seed=seed)


def bundled_path() -> Path:
    return Path(__file__).resolve().parent.parent / "data" / "unet_int8.tflite"


def main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Regenerate the UNet bundled with lowp.")
    parser.add_argument("--output", type=Path, default=bundled_path())
    args = parser.parse_args(argv)
    data = unet_int8((64, 64), 16, seed=0)
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
