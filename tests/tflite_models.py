"""Write small .tflite files directly with flatbuffers and the ``tflite``
schema package, no TensorFlow: a one-op uint8 CONV_2D model and the
variations the malformed-file tests need."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any

import flatbuffers
import numpy as np


def _schema(name: str) -> Any:
    # the module (with its builder functions), not the class tflite exports
    return importlib.import_module(f"tflite.{name}")


Buffer, Conv2DOptions, Model, Operator = (
    _schema(n) for n in ("Buffer", "Conv2DOptions", "Model", "Operator")
)
OperatorCode, QuantizationParameters, SubGraph, Tensor = (
    _schema(n) for n in ("OperatorCode", "QuantizationParameters", "SubGraph", "Tensor")
)

UINT8, INT32, INT8 = 3, 2, 9
CONV_2D, SOFTMAX = 3, 25
CONV_OPTIONS = 1  # BuiltinOptions.Conv2DOptions


@dataclass
class T:
    shape: list[int]
    type: int = UINT8
    buffer: int = 0
    scale: list[float] | None = None
    zero_point: list[int] | None = None
    name: str = "t"


@dataclass
class Op:
    opcode: int
    inputs: list[int]
    outputs: list[int]
    conv: dict[str, int] | None = None  # Conv2DOptions fields


@dataclass
class Spec:
    tensors: list[T]
    ops: list[Op]
    inputs: list[int]
    outputs: list[int]
    buffers: list[bytes] = field(default_factory=lambda: [b""])
    opcodes: list[int] = field(default_factory=lambda: [CONV_2D])


def _vector(b: flatbuffers.Builder, offsets: list[int]) -> int:
    b.StartVector(4, len(offsets), 4)
    for off in reversed(offsets):
        b.PrependUOffsetTRelative(off)
    return b.EndVector()


def write(spec: Spec) -> bytes:
    b = flatbuffers.Builder(1024)
    buffers = []
    for data in spec.buffers:
        vec = b.CreateNumpyVector(np.frombuffer(data, np.uint8)) if data else None
        Buffer.Start(b)
        if vec is not None:
            Buffer.AddData(b, vec)
        buffers.append(Buffer.End(b))
    tensors = []
    for t in spec.tensors:
        name = b.CreateString(t.name)
        shape = b.CreateNumpyVector(np.array(t.shape, np.int32))
        quant = None
        if t.scale is not None:
            scale = b.CreateNumpyVector(np.array(t.scale, np.float32))
            zp = b.CreateNumpyVector(np.array(t.zero_point or [0] * len(t.scale), np.int64))
            QuantizationParameters.Start(b)
            QuantizationParameters.AddScale(b, scale)
            QuantizationParameters.AddZeroPoint(b, zp)
            quant = QuantizationParameters.End(b)
        Tensor.Start(b)
        Tensor.AddShape(b, shape)
        Tensor.AddType(b, t.type)
        Tensor.AddBuffer(b, t.buffer)
        Tensor.AddName(b, name)
        if quant is not None:
            Tensor.AddQuantization(b, quant)
        tensors.append(Tensor.End(b))
    ops = []
    for op in spec.ops:
        ins = b.CreateNumpyVector(np.array(op.inputs, np.int32))
        outs = b.CreateNumpyVector(np.array(op.outputs, np.int32))
        opts = None
        if op.conv is not None:
            Conv2DOptions.Start(b)
            Conv2DOptions.AddPadding(b, op.conv.get("padding", 0))
            Conv2DOptions.AddStrideW(b, op.conv.get("stride", 1))
            Conv2DOptions.AddStrideH(b, op.conv.get("stride", 1))
            Conv2DOptions.AddFusedActivationFunction(b, op.conv.get("activation", 0))
            Conv2DOptions.AddDilationWFactor(b, 1)
            Conv2DOptions.AddDilationHFactor(b, 1)
            opts = Conv2DOptions.End(b)
        Operator.Start(b)
        Operator.AddOpcodeIndex(b, op.opcode)
        Operator.AddInputs(b, ins)
        Operator.AddOutputs(b, outs)
        if opts is not None:
            Operator.AddBuiltinOptionsType(b, CONV_OPTIONS)
            Operator.AddBuiltinOptions(b, opts)
        ops.append(Operator.End(b))
    tensor_vec, op_vec = _vector(b, tensors), _vector(b, ops)
    ins = b.CreateNumpyVector(np.array(spec.inputs, np.int32))
    outs = b.CreateNumpyVector(np.array(spec.outputs, np.int32))
    SubGraph.Start(b)
    SubGraph.AddTensors(b, tensor_vec)
    SubGraph.AddInputs(b, ins)
    SubGraph.AddOutputs(b, outs)
    SubGraph.AddOperators(b, op_vec)
    subgraph = SubGraph.End(b)
    codes = []
    for code in spec.opcodes:
        OperatorCode.Start(b)
        OperatorCode.AddDeprecatedBuiltinCode(b, min(code, 127))
        OperatorCode.AddBuiltinCode(b, code)
        OperatorCode.AddVersion(b, 1)
        codes.append(OperatorCode.End(b))
    code_vec, sub_vec, buf_vec = _vector(b, codes), _vector(b, [subgraph]), _vector(b, buffers)
    Model.Start(b)
    Model.AddVersion(b, 3)
    Model.AddOperatorCodes(b, code_vec)
    Model.AddSubgraphs(b, sub_vec)
    Model.AddBuffers(b, buf_vec)
    b.Finish(Model.End(b), file_identifier=b"TFL3")
    return bytes(b.Output())


# A uint8 3x3 convolution: x [1, 6, 7, 2] -> y [1, 6, 7, 3], SAME, ReLU.
X_SCALE, X_ZP = 0.05, 3
W_SCALE, W_ZP = 0.02, 120
Y_SCALE, Y_ZP = 0.07, 9


def conv_weights() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    w = rng.integers(0, 256, (3, 3, 3, 2), dtype=np.uint8)
    bias = rng.integers(-2000, 2000, 3).astype(np.int32)
    return w, bias


def conv_spec(**changes: Any) -> Spec:
    w, bias = conv_weights()
    spec = Spec(
        tensors=[
            T([1, 6, 7, 2], scale=[X_SCALE], zero_point=[X_ZP], name="x"),
            T([3, 3, 3, 2], buffer=1, scale=[W_SCALE], zero_point=[W_ZP], name="w"),
            T([3], type=INT32, buffer=2, scale=[X_SCALE * W_SCALE], zero_point=[0], name="b"),
            T([1, 6, 7, 3], scale=[Y_SCALE], zero_point=[Y_ZP], name="y"),
        ],
        ops=[Op(0, [0, 1, 2], [3], conv={"padding": 0, "stride": 1, "activation": 1})],
        inputs=[0],
        outputs=[3],
        buffers=[b"", w.tobytes(), bias.tobytes()],
    )
    for key, value in changes.items():
        setattr(spec, key, value)
    return spec


def conv_model(**changes: Any) -> bytes:
    return write(conv_spec(**changes))
