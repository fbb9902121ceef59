"""lowp.tflite.serialize / save: a graph, parsed from a file or built in
Python, written as a .tflite file that parses back to the same graph, runs
on lowp to the same bytes, and (with TensorFlow) runs on TensorFlow Lite's
reference interpreter to the bytes lowp computes."""

from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import lowp.tflite as lt
import tflite_fuzz as fz
import tflite_models as tm
from lowp.tflite._schema import Graph, OpSpec, Options, TensorSpec, parse
from lowp.tflite._write import BUFFER_ALIGNMENT, op_version


def assert_same_graph(expected: Graph, got: Graph) -> None:
    """Field by field; a Python-built graph's version 0 and options_type 0
    stand for the converter's version and the options' own tag."""
    assert len(got.tensors) == len(expected.tensors)
    for a, b in zip(expected.tensors, got.tensors):
        where = a.describe()
        assert (b.index, b.name, b.shape, b.dtype) == (a.index, a.name, a.shape, a.dtype), where
        assert b.quantized_dimension == a.quantized_dimension, where
        for field, dtype in (("scale", np.float32), ("zero_point", np.int64), ("data", a.dtype)):
            x, y = getattr(a, field), getattr(b, field)
            assert (x is None) == (y is None), f"{where} {field}"
            if x is not None:
                assert y.dtype == dtype, f"{where} {field}"
                assert y.shape == np.shape(x), f"{where} {field}"
                np.testing.assert_array_equal(y, x, err_msg=f"{where} {field}")
    assert len(got.ops) == len(expected.ops)
    for a, b in zip(expected.ops, got.ops):
        where = f"operator {a.index} ({a.name})"
        assert (b.index, b.name, b.inputs, b.outputs) == (a.index, a.name, a.inputs, a.outputs)
        assert b.version == (a.version or op_version(expected, a)), where
        assert b.options == a.options, where
        assert (b.options_type == a.options_type) or (a.options_type == 0 and a.options), where
    assert (got.inputs, got.outputs) == (expected.inputs, expected.outputs)
    assert got.description == expected.description


def assert_same_runs(a: lt.Model, b: lt.Model, seeds: tuple[int, ...] = (0, 1)) -> None:
    """Every tensor of both models' runs, byte for byte."""
    for seed in seeds:
        inputs = a.random_inputs(seed)
        ta, tb = a.trace(*inputs), b.trace(*inputs)
        assert ta.keys() == tb.keys()
        for k in ta:
            assert ta[k].dtype == tb[k].dtype
            np.testing.assert_array_equal(ta[k], tb[k], err_msg=f"tensor {k}")
        for x, y in zip(a(*inputs) if len(a.outputs) > 1 else [a(*inputs)],
                        b(*inputs) if len(b.outputs) > 1 else [b(*inputs)]):  # fmt: skip
            np.testing.assert_array_equal(x, y)


def assert_round_trip(data: bytes) -> bytes:
    graph = parse(data)
    written = lt.serialize(graph)
    assert_same_graph(graph, parse(written))
    assert lt.serialize(parse(written)) == written  # nothing drifts on a second pass
    assert_same_runs(lt.load(data), lt.load(written))
    return written


# --- graphs built in Python -----------------------------------------------------------------


class GraphMaker:
    """A graph, tensor by tensor and operator by operator, as lowp's
    quantizer builds one: every op at version 0 (the converter's) and
    options from Options.make."""

    def __init__(self, dtype: str, seed: int = 0):
        self.dtype = np.dtype(dtype)
        self.signed = self.dtype == np.int8
        self.rng = np.random.default_rng(seed)
        self.tensors: list[TensorSpec] = []
        self.ops: list[OpSpec] = []

    def tensor(self, name, shape, dtype=None, scale=None, zero_point=None, data=None, axis=0):
        scale = None if scale is None else np.atleast_1d(np.asarray(scale, np.float32))
        if scale is not None and zero_point is None:
            zero_point = np.zeros(scale.size, np.int64)
        zero_point = None if zero_point is None else np.atleast_1d(np.asarray(zero_point, np.int64))
        dtype = self.dtype if dtype is None else np.dtype(dtype)
        if data is not None:
            data = np.asarray(data, dtype).reshape(shape)
        index = len(self.tensors)
        self.tensors.append(
            TensorSpec(index, name, tuple(shape), dtype, scale, zero_point, axis, data)
        )
        return index

    def activation(self, name, shape, scale, zero_point=None):
        """An activation tensor; its zero point random unless given (int8 terms)."""
        if zero_point is None:
            zero_point = int(self.rng.integers(-20, 21))
        return self.tensor(
            name, shape, scale=scale, zero_point=zero_point + (0 if self.signed else 128)
        )

    def op(self, name, inputs, outputs, kind=None, **fields):
        what = f"operator {len(self.ops)} ({name})"
        options = Options.make(kind, fields, what) if kind is not None else None
        self.ops.append(OpSpec(len(self.ops), name, 0, list(inputs), list(outputs), options))

    def weights(self, name, shape, in_scale, gain):
        """Weights (int8: symmetric per output channel; uint8: asymmetric per
        tensor), their int32 bias, and an output scale: the accumulator's
        scale times sqrt(K) times ``gain``, tuned so the outputs spread over
        tens of steps."""
        cout, k = shape[0], int(np.prod(shape[1:]))
        if self.signed:
            scale = (self.rng.uniform(0.5, 1.5, cout) * 0.01).astype(np.float32)
            data = self.rng.integers(-127, 128, shape)
            w = self.tensor(name, shape, scale=scale, data=data)
        else:
            scale = np.float32([0.01])
            zero_point = int(self.rng.integers(100, 156))  # values centred on it
            data = np.clip(zero_point + self.rng.integers(-127, 128, shape), 0, 255)
            w = self.tensor(name, shape, scale=scale, zero_point=zero_point, data=data)
        bias_scale = np.float32(in_scale) * scale
        bias_data = self.rng.integers(-5000, 5000, cout)
        b = self.tensor(name + "_bias", (cout,), np.int32, bias_scale, data=bias_data)
        out_scale = float(in_scale) * float(scale.max()) * np.sqrt(k) * gain
        return w, b, out_scale

    def graph(self, inputs, outputs) -> Graph:
        return Graph(self.tensors, self.ops, inputs, outputs, f"lowp writer test ({self.dtype})")


def network(dtype: str, seed: int = 0) -> Graph:
    """Every operator lowp runs, from scratch. int8: float input and output
    (QUANTIZE, DEQUANTIZE); uint8: integer ones, with a concatenation that
    rescales its inputs and a transposed convolution with a fused ReLU6."""
    g = GraphMaker(dtype, seed)
    signed = g.signed
    graph_inputs: list[int] = []
    if signed:
        x = g.tensor("x", (1, 8, 8, 3), np.float32)
        q0 = g.activation("q0", (1, 8, 8, 3), 0.025, -3)
        g.op("QUANTIZE", [x], [q0])
        graph_inputs.append(x)
    else:
        q0 = g.activation("x", (1, 8, 8, 3), 0.025, -3)
        graph_inputs.append(q0)
    w1, b1, s1 = g.weights("w1", (8, 3, 3, 3), 0.025, 40)
    c1 = g.activation("c1", (1, 8, 8, 8), s1, -30)
    g.op("CONV_2D", [q0, w1, b1], [c1], "Conv2DOptions",
         Padding=0, StrideW=1, StrideH=1, FusedActivationFunction=1)  # fmt: skip
    p1 = g.activation("p1", (1, 4, 4, 8), s1, -30)
    g.op("MAX_POOL_2D", [c1], [p1], "Pool2DOptions",
         Padding=1, StrideW=2, StrideH=2, FilterWidth=2, FilterHeight=2)  # fmt: skip
    a1 = g.activation("a1", (1, 4, 4, 8), s1, -30)
    g.op("AVERAGE_POOL_2D", [p1], [a1], "Pool2DOptions",
         Padding=0, StrideW=1, StrideH=1, FilterWidth=3, FilterHeight=3)  # fmt: skip
    w2, b2, s2 = g.weights("w2", (6, 3, 3, 3), 0.025, 80)
    # int8 concatenation takes inputs of the output's parameters only (TFLite)
    c2 = g.activation("c2", (1, 4, 4, 6), *((s1, -30) if signed else (s2, 5)))
    g.op("CONV_2D", [q0, w2, b2], [c2], "Conv2DOptions", Padding=0, StrideW=2, StrideH=2)
    cat = g.activation("cat", (1, 4, 4, 14), *((s1, -30) if signed else (1.3 * s1, -10)))
    g.op("CONCATENATION", [a1, c2], [cat], "ConcatenationOptions", Axis=-1)
    s_cat = float(g.tensors[cat].scale[0])  # type: ignore[index]
    out_shape = g.tensor("t1_shape", (4,), np.int32, data=[1, 8, 8, 8])
    w3, b3, s3 = g.weights("w3", (8, 2, 2, 14), s_cat, 25)
    t1 = g.activation("t1", (1, 8, 8, 8), s3)
    g.op("TRANSPOSE_CONV", [out_shape, w3, cat, b3], [t1], "TransposeConvOptions",
         Padding=1, StrideW=2, StrideH=2, FusedActivationFunction=0 if signed else 3)  # fmt: skip
    s_sum = 0.8 * max(s1, s3)
    total = g.activation("sum", (1, 8, 8, 8), s_sum)
    g.op("ADD", [t1, c1], [total], "AddOptions", FusedActivationFunction=1)
    zp_sum = int(g.tensors[total].zero_point[0])  # type: ignore[index]
    pads = g.tensor("pads", (4, 2), np.int32, data=[[0, 0], [1, 1], [0, 2], [0, 0]])
    padded = g.tensor("padded", (1, 10, 10, 8), scale=s_sum, zero_point=zp_sum)
    g.op("PAD", [total, pads], [padded], "PadOptions")
    pads2 = g.tensor("pads2", (4, 2), np.int32, data=[[0, 0], [0, 1], [1, 0], [0, 0]])
    value = g.tensor("pad_value", (), scale=s_sum, zero_point=zp_sum, data=zp_sum + 7)
    padded2 = g.tensor("padded2", (1, 11, 11, 8), scale=s_sum, zero_point=zp_sum)
    g.op("PADV2", [padded, pads2, value], [padded2], "PadV2Options")
    new_shape = g.tensor("new_shape", (2,), np.int32, data=[1, 968])
    flat = g.tensor("flat", (1, 968), scale=s_sum, zero_point=zp_sum)
    g.op("RESHAPE", [padded2, new_shape], [flat], "ReshapeOptions", NewShape=[1, 968])
    w4, b4, s4 = g.weights("w4", (10, 968), s_sum, 45)
    fc = g.activation("fc", (1, 10), s4)
    g.op("FULLY_CONNECTED", [flat, w4, b4], [fc], "FullyConnectedOptions")
    outputs = [fc, total]
    if signed:
        y = g.tensor("y", (1, 10), np.float32)
        g.op("DEQUANTIZE", [fc], [y], "DequantizeOptions")
        outputs = [y, total]
    return g.graph(graph_inputs, outputs)


#: the version TFLite's converter gives each op of network(), by dtype
NETWORK_VERSIONS = {
    "int8": {"QUANTIZE": 1, "CONV_2D": 3, "MAX_POOL_2D": 2, "AVERAGE_POOL_2D": 2,
             "CONCATENATION": 2, "TRANSPOSE_CONV": 3, "ADD": 2, "PAD": 2, "PADV2": 2,
             "RESHAPE": 1, "FULLY_CONNECTED": 4, "DEQUANTIZE": 2},
    "uint8": {"CONV_2D": 1, "MAX_POOL_2D": 1, "AVERAGE_POOL_2D": 1, "CONCATENATION": 1,
              "TRANSPOSE_CONV": 4, "ADD": 1, "PAD": 1, "PADV2": 1, "RESHAPE": 1,
              "FULLY_CONNECTED": 1},
}  # fmt: skip


# --- round trips without TensorFlow --------------------------------------------------------


@pytest.mark.parametrize("name", ["bundled", "conv_uint8", "zoo_int8", "zoo_uint8"])
def test_round_trip(name):
    data = {
        "bundled": lambda: lt.bundled_model().read_bytes(),
        "conv_uint8": tm.conv_model,
        "zoo_int8": lambda: fz.encode(fz.zoo("int8")),
        "zoo_uint8": lambda: fz.encode(fz.zoo("uint8")),
    }[name]()
    assert_round_trip(data)


def test_round_trip_keeps_vector_options():
    graph = parse(fz.encode(fz.zoo("int8")))
    (reshape,) = [op for op in graph.ops if op.name == "RESHAPE"]
    assert reshape.options is not None and reshape.options.NewShape() == (1, 288)
    (again,) = [op for op in parse(lt.serialize(graph)).ops if op.name == "RESHAPE"]
    assert again.options == reshape.options


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_python_graph_round_trip(dtype):
    graph = network(dtype)
    assert {op.name for op in graph.ops} >= set(lt.SUPPORTED_OPS) - (
        set() if dtype == "int8" else {"QUANTIZE", "DEQUANTIZE"}
    )
    written = lt.serialize(graph)
    back = parse(written)
    assert_same_graph(graph, back)
    assert {op.name: op.version for op in back.ops} == NETWORK_VERSIONS[dtype]
    assert lt.serialize(back) == written
    # the graph as built and the file lowp reads run to the same bytes
    built, loaded = lt.Model(graph), lt.load(written)
    assert_same_runs(built, loaded, seeds=(0, 1, 2))
    y, total = built(*built.random_inputs(0))
    assert len(np.unique(total)) > 20 and len(np.unique(y)) > 3  # not all saturated


def test_file_layout():
    """What TFLite's converter writes: schema 3, buffer 0 empty, builtin and
    deprecated codes both, one code per (op, version), aligned data."""
    from tflite.BuiltinOperator import BuiltinOperator
    from tflite.Model import Model

    graph = network("int8")
    data = lt.serialize(graph)
    assert data[4:8] == b"TFL3"
    model = Model.GetRootAs(data, 0)
    assert model.Version() == 3 and model.SubgraphsLength() == 1
    assert model.Buffers(0).DataLength() == 0
    names = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
    codes = [model.OperatorCodes(i) for i in range(model.OperatorCodesLength())]
    assert len(codes) == len({op.name for op in graph.ops})  # CONV_2D twice, one code
    for code in codes:
        assert code.BuiltinCode() == code.DeprecatedBuiltinCode()
        name = names[code.BuiltinCode()]
        assert code.Version() == NETWORK_VERSIONS["int8"][name]
    constants = [t for t in graph.tensors if t.data is not None]
    assert model.BuffersLength() == 1 + len(constants)
    for i in range(1, model.BuffersLength()):
        buffer = model.Buffers(i)
        start = buffer._tab.Vector(buffer._tab.Offset(4))
        assert start % BUFFER_ALIGNMENT == 0


def test_op_version_follows_the_converter_rules():
    graph = network("uint8")
    (fc,) = [op for op in graph.ops if op.name == "FULLY_CONNECTED"]
    assert op_version(graph, fc) == 1
    fc.options = Options.make("FullyConnectedOptions", {"KeepNumDims": True})
    assert op_version(graph, fc) == 5
    fc.inputs = fc.inputs[:2]
    assert op_version(graph, fc) == 6
    (tconv,) = [op for op in graph.ops if op.name == "TRANSPOSE_CONV"]
    tconv.options = Options.make("TransposeConvOptions", {"Padding": 1})
    assert op_version(graph, tconv) == 3  # a bias
    tconv.inputs[3] = -1
    assert op_version(graph, tconv) == 1
    # an explicit version is written as given
    tconv.version = 7
    assert [op.version for op in parse(lt.serialize(graph)).ops if op.name == "TRANSPOSE_CONV"] == [
        7
    ]


# --- Options.make -----------------------------------------------------------------------------


def test_options_make_defaults_are_the_schemas():
    opt = Options.make("Conv2DOptions", {"Padding": 0, "StrideW": 1, "StrideH": 1,
                                         "FusedActivationFunction": 1})  # fmt: skip
    assert opt.StrideW() == 1 and opt.FusedActivationFunction() == 1
    assert opt.DilationWFactor() == 1 and opt.DilationHFactor() == 1  # defaults of 1
    assert opt.QuantizedBiasType() == 0
    assert Options.make("Conv2DOptions", {}).StrideW() == 0  # the schema's 0
    assert Options.make("ReshapeOptions", {}).NewShape() is None
    assert Options.make("ReshapeOptions", {"NewShape": np.array([1, -1])}).NewShape() == (1, -1)
    assert Options.make("AddOptions", {}).PotScaleInt16() is True
    # the options a converted file holds are those make gives for its values
    graph = parse(lt.bundled_model().read_bytes())
    for op in graph.ops:
        assert op.options is not None
        assert Options.make(op.options.kind, op.options.values) == op.options


@pytest.mark.parametrize(
    "kind, values, message",
    [
        (
            "Conv2DOptions",
            {"Bogus": 1},
            r"operator 5 \(CONV_2D\): Conv2DOptions has no field 'Bogus'",
        ),
        ("Conv2DOptions", {"padding": 1}, r"no field 'padding'"),
        ("Conv2DOption", {}, r"'Conv2DOption' is not a TFLite BuiltinOptions table"),
        ("Conv2DOptions", {"Padding": 300}, r"field Padding cannot hold 300"),
        ("Conv2DOptions", {"StrideW": 1.5}, r"field StrideW cannot hold 1.5"),
        ("Conv2DOptions", {"StrideW": "2"}, r"field StrideW cannot hold '2'"),
        ("Conv2DOptions", {"StrideW": 2**31}, r"field StrideW cannot hold 2147483648"),
        ("FullyConnectedOptions", {"KeepNumDims": 2}, r"field KeepNumDims cannot hold 2"),
        ("ReshapeOptions", {"NewShape": [1.5, 2]}, r"NewShape = \[1.5, 2\] is not a value"),
        ("ReshapeOptions", {"NewShape": 4}, r"NewShape = 4 is not a value"),
    ],
)
def test_options_make_refuses(kind, values, message):
    with pytest.raises(ValueError, match=message):
        Options.make(kind, values, "operator 5 (CONV_2D)")


def test_options_make_takes_a_mapping():
    with pytest.raises(TypeError, match="values must be a mapping"):
        Options.make("Conv2DOptions", [("Padding", 1)])  # type: ignore[arg-type]


# --- what the writer refuses ----------------------------------------------------------------


def _conv_graph() -> Graph:
    return copy.deepcopy(parse(tm.conv_model()))


def _set(obj, **fields):
    for k, v in fields.items():
        setattr(obj, k, v)


BAD_GRAPHS = {
    "unknown op": (lambda g: _set(g.ops[0], name="SOFTMAX"), r"operator 0 \(SOFTMAX\): lowp writes only"),  # noqa: E501
    "options of another table": (lambda g: _set(g.ops[0], options=Options.make("Pool2DOptions", {})), r"operator 0 \(CONV_2D\): has options Pool2DOptions, the operator reads Conv2DOptions"),  # noqa: E501
    "options not an Options": (lambda g: _set(g.ops[0], options={"Padding": 0}), r"operator 0 \(CONV_2D\): its options must be an Options"),  # noqa: E501
    "options field unknown": (lambda g: g.ops[0].options.values.update(Bogus=1), r"operator 0 \(CONV_2D\): Conv2DOptions has no field 'Bogus'"),  # noqa: E501
    "options value out of range": (lambda g: g.ops[0].options.values.update(Padding=300), r"operator 0 \(CONV_2D\): Conv2DOptions field Padding cannot hold 300"),  # noqa: E501
    "options_type of another table": (lambda g: _set(g.ops[0], options_type=5), r"operator 0 \(CONV_2D\): options_type 5 is not Conv2DOptions's 1"),  # noqa: E501
    "options_type without options": (lambda g: _set(g.ops[0], options=None, options_type=1), r"options_type 1 but no options"),  # noqa: E501
    "negative version": (lambda g: _set(g.ops[0], version=-1), r"operator 0 \(CONV_2D\): version -1"),  # noqa: E501
    "input out of range": (lambda g: _set(g.ops[0], inputs=[0, 1, 9]), r"operator 0 \(CONV_2D\) refers to tensor 9, but there are 4"),  # noqa: E501
    "output omitted": (lambda g: _set(g.ops[0], outputs=[-1]), r"operator 0 \(CONV_2D\) refers to tensor -1"),  # noqa: E501
    "graph output out of range": (lambda g: _set(g, outputs=[4]), r"graph output refers to tensor 4"),  # noqa: E501
    "tensor index": (lambda g: _set(g.tensors[2], index=5), r"tensor 5 \('b'.*is graph.tensors\[2\]"),  # noqa: E501
    "op index": (lambda g: _set(g.ops[0], index=2), r"operator 2 \(CONV_2D\) is graph.ops\[0\]"),
    "data dtype": (lambda g: _set(g.tensors[1], data=g.tensors[1].data.view(np.int8)), r"tensor 1 \('w'.*its data is int8, not the tensor's uint8"),  # noqa: E501
    "data size": (lambda g: _set(g.tensors[2], data=np.zeros(2, np.int32)), r"tensor 2 \('b'.*its data has 2 values, its shape holds 3"),  # noqa: E501
    "empty constant": (lambda g: _set(g.tensors[2], shape=(0,), data=np.zeros(0, np.int32)), r"tensor 2 \('b'.*a constant with no values"),  # noqa: E501
    "unwritable dtype": (lambda g: _set(g.tensors[3], dtype=np.dtype(np.float16)), r"tensor 3 \('y'.*not float16"),  # noqa: E501
    "scale not float32": (lambda g: _set(g.tensors[0], scale=np.array([0.1])), r"tensor 0 \('x'.*its scale \[0.1\] is not float32 values"),  # noqa: E501
    "empty scale": (lambda g: _set(g.tensors[0], scale=np.zeros(0, np.float32), zero_point=np.zeros(0, np.int64)), r"tensor 0 \('x'.*an empty scale"),  # noqa: E501
    "zero point float": (lambda g: _set(g.tensors[0], zero_point=np.array([3.0])), r"tensor 0 \('x'.*its zero point must be integers"),  # noqa: E501
    "zero point count": (lambda g: _set(g.tensors[1], zero_point=np.array([120, 121])), r"tensor 1 \('w'.*has 1 scales but 2 zero points"),  # noqa: E501
    "zero point without scale": (lambda g: _set(g.tensors[2], scale=None), r"tensor 2 \('b'.*has zero points but no scale"),  # noqa: E501
    "per-channel axis": (lambda g: _set(g.tensors[1], scale=np.full(3, 0.02, np.float32), zero_point=np.zeros(3, np.int64), quantized_dimension=3), r"tensor 1 \('w'.*3 scales but its quantized dimension 3"),  # noqa: E501
    "negative dimension": (lambda g: _set(g.tensors[3], shape=(1, -6, 7, 3)), r"tensor 3 \('y'.*no negative dimensions"),  # noqa: E501
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(BAD_GRAPHS))
def test_refuses_what_it_cannot_write(case, tmp_path):
    change, message = BAD_GRAPHS[case]
    graph = _conv_graph()
    change(graph)
    with pytest.raises(ValueError, match=message):
        lt.serialize(graph)
    path = tmp_path / "model.tflite"
    with pytest.raises(ValueError, match=message):
        lt.save(graph, path)
    assert list(tmp_path.iterdir()) == []  # no file, no temporary


def test_wrong_argument_types(tmp_path):
    with pytest.raises(TypeError, match=r"graph must be a lowp\.tflite Graph"):
        lt.serialize(tm.conv_model())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"path must be a str or os\.PathLike"):
        lt.save(_conv_graph(), 3)  # type: ignore[arg-type]
    graph = _conv_graph()
    graph.description = b"bytes"  # type: ignore[assignment]
    with pytest.raises(ValueError, match="description must be a str"):
        lt.serialize(graph)


# --- save ---------------------------------------------------------------------------------------


def test_save_writes_the_serialized_bytes(tmp_path):
    graph = network("uint8")
    path = tmp_path / "net.tflite"
    assert lt.save(graph, path) is None
    assert path.read_bytes() == lt.serialize(graph)
    assert [p.name for p in tmp_path.iterdir()] == ["net.tflite"]
    with open(tmp_path / "plain", "wb"):  # the permissions open() gives a new file
        pass
    assert path.stat().st_mode == (tmp_path / "plain").stat().st_mode
    (tmp_path / "plain").unlink()
    lt.save(graph, str(path))  # a str, and over an existing file
    assert_same_runs(lt.Model(graph), lt.load(path))


def test_save_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "net.tflite"
    path.write_bytes(b"old")
    graph = _conv_graph()
    graph.ops[0].name = "SOFTMAX"
    with pytest.raises(ValueError):
        lt.save(graph, path)
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["net.tflite"]


def test_save_failure_while_writing_leaves_nothing(tmp_path, monkeypatch):
    def fail(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    path = tmp_path / "net.tflite"
    with pytest.raises(OSError, match="No space left"):
        lt.save(_conv_graph(), path)
    assert list(tmp_path.iterdir()) == []


def test_save_into_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        lt.save(_conv_graph(), tmp_path / "missing" / "net.tflite")
    assert list(tmp_path.iterdir()) == []


# --- with TensorFlow: converted models and the reference interpreter --------------------------


@pytest.fixture(scope="module")
def converted():
    """The models tests/test_tflite_reference.py converts with TensorFlow."""
    pytest.importorskip("tensorflow")
    import test_tflite_reference as reference

    names = [
        "unet_int8",
        "unet_uint8",
        "float_io",
        *sorted(reference.INT8),
        *sorted(reference.UINT8),
    ]
    return {name: reference.model_bytes(name) for name in names}


def test_converted_models_round_trip(converted):
    for name, data in converted.items():
        graph = parse(data)
        for op in graph.ops:  # the converter's versions are op_version's
            assert op_version(graph, op) == op.version, (name, op.name)
        try:
            assert_round_trip(data)
        except AssertionError as err:
            raise AssertionError(f"{name}: {err}") from None
    kinds = {op.name for data in converted.values() for op in parse(data).ops}
    assert kinds == set(lt.SUPPORTED_OPS)


@pytest.mark.parametrize("dtype", ["int8", "uint8"])
def test_reference_interpreter_runs_a_python_graph(dtype):
    """A graph made in Python, not read from a file, serializes to a model
    TensorFlow Lite's reference kernels run to lowp's bytes, every operator."""
    pytest.importorskip("tensorflow")
    from lowp.tflite._check import compare

    graph = network(dtype, seed=1)
    data = lt.serialize(graph)
    model = lt.load(data)
    assert len(model.ops) == len(graph.ops)
    for seed in range(3):
        checks = compare(model, data, model.random_inputs(seed))
        bad = [(c.index, c.op, c.mismatches, c.max_diff) for c in checks if not c.match]
        assert not bad, f"ops differing from the reference interpreter: {bad}"
        assert len(checks) == len(graph.ops)
