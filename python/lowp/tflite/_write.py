"""Write a :class:`~lowp.tflite._schema.Graph` as a .tflite flatbuffer, so a
graph made in Python (lowp's quantizer builds them) runs on TensorFlow Lite,
and on lowp through the same :func:`~lowp.tflite._schema.parse` as any file.

The file holds what ``parse`` reads, laid out as TFLite's converter lays it
out: schema version 3, buffer 0 empty, every constant in a buffer of its own
(16-byte aligned), one operator code per (operator, version). What would not
read back as the graph it came from (an operator lowp does not run, options
of the wrong table or with a value their field cannot hold, constant data of
another dtype or size than its tensor, a scale that is not a float32) is a
ValueError naming the tensor or operator, raised before anything is written.

The tables are built with the generated functions of the ``tflite`` package
(``Conv2DOptionsAddPadding`` and the like) on a ``flatbuffers.Builder``.
"""

from __future__ import annotations

import importlib
import os
import struct
import uuid
from typing import Any

import numpy as np

from ._ops import OPS
from ._schema import (
    _DTYPES,
    _OPTIONS_OF,
    Graph,
    OpSpec,
    Options,
    TensorSpec,
    _builtin_names,
    _options_class,
    _options_names,
    option_fields,
)

__all__ = ["op_version", "options_table", "save", "serialize"]

#: the schema version TFLite reads (the "TFL3" identifier)
SCHEMA_VERSION = 3
#: where constant data starts: the converter's alignment, so a runtime may map
#: the file and read int32 biases (or vectors of them) in place
BUFFER_ALIGNMENT = 16
# BuiltinOperator codes from 127 on have no deprecated (int8) code: this marks them
_PLACEHOLDER_FOR_GREATER_OP_CODES = 127

_TYPE_CODES = {dtype: code for code, dtype in _DTYPES.items()}


def _module(name: str) -> Any:
    # the module of a schema table (its builder functions), not the class
    # of the same name that ``tflite`` exports
    return importlib.import_module(f"tflite.{name}")


def serialize(graph: Graph) -> bytes:
    """The .tflite file of ``graph`` (a :class:`~lowp.tflite._schema.Graph`,
    parsed from a file or made in Python) as bytes.

    ``parse(serialize(g))`` gives back ``g``: its tensors (name, shape, type,
    constant data, scales, zero points, quantized dimension), operators
    (inputs, outputs, version, options), graph inputs and outputs and
    description. An operator's version 0 means "the version TFLite's
    converter gives it" (:func:`op_version`); its ``options_type`` may be 0,
    the writer takes it from the options' kind. Raises ValueError naming the
    tensor or operator for what it cannot write faithfully.
    """
    import flatbuffers

    if not isinstance(graph, Graph):
        raise TypeError(f"graph must be a lowp.tflite Graph, got {type(graph).__name__}")
    if not isinstance(graph.description, str):
        raise ValueError(f"graph: its description must be a str, got {graph.description!r}")
    n = len(graph.tensors)
    for what, ids in (("graph input", graph.inputs), ("graph output", graph.outputs)):
        for i in ids:
            _check_index(i, n, what, optional=False)
    b = flatbuffers.Builder(1024)
    buffers = [_buffer(b, None)]  # buffer 0: the empty one, for every non-constant
    tensors = []
    for position, t in enumerate(graph.tensors):
        if t.index != position:
            raise ValueError(f"{t.describe()} is graph.tensors[{position}]: its index must match")
        data = _data(t)
        if data is not None:
            buffers.append(_buffer(b, data))
        tensors.append(_tensor(b, t, len(buffers) - 1 if data is not None else 0))
    codes: dict[tuple[str, int], int] = {}
    ops = []
    for position, op in enumerate(graph.ops):
        if op.index != position:
            raise ValueError(f"operator {op.index} ({op.name}) is graph.ops[{position}]: its "
                             "index must match")  # fmt: skip
        ops.append(_operator(b, graph, op, codes))
    subgraph = _subgraph(b, tensors, ops, graph.inputs, graph.outputs)
    code_offsets = [_operator_code(b, name, version) for name, version in codes]
    description = b.CreateString(graph.description)
    model = _module("Model")
    vectors = [_offsets(b, v) for v in (code_offsets, [subgraph], buffers)]
    model.ModelStart(b)
    model.ModelAddVersion(b, SCHEMA_VERSION)
    model.ModelAddOperatorCodes(b, vectors[0])
    model.ModelAddSubgraphs(b, vectors[1])
    model.ModelAddDescription(b, description)
    model.ModelAddBuffers(b, vectors[2])
    b.Finish(model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def save(graph: Graph, path: str | os.PathLike[str]) -> None:
    """Write ``graph`` to ``path`` as a .tflite file (see :func:`serialize`).

    The file appears whole or not at all: the bytes go to a temporary file
    in the same directory, which then replaces ``path``; if anything fails
    (a graph that cannot be written, a full disk) the temporary file is
    removed, and a file already at ``path`` is left as it was.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    write_atomic(path, serialize(graph))


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """``data`` to ``path`` whole or not at all (see :func:`save`)."""
    target = os.path.abspath(os.fspath(path))
    folder, name = os.path.split(target)
    temporary = os.path.join(folder, f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    # os.open, not tempfile.mkstemp (0600): the file gets the permissions
    # open(path, "wb") would give it, 0666 less the umask
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    fd = os.open(temporary, flags, 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, target)
    except BaseException:
        try:
            os.unlink(temporary)
        except FileNotFoundError:
            pass
        raise


# --- tensors and buffers --------------------------------------------------------------------


def _data(t: TensorSpec) -> bytes | None:
    """A constant's bytes, little-endian, in the tensor's dtype and size."""
    if t.data is None:
        return None
    data = np.asarray(t.data)
    if data.dtype.newbyteorder("=") != t.dtype:
        raise ValueError(f"{t.describe()}: its data is {data.dtype}, not the tensor's {t.dtype}")
    count = int(np.prod(t.shape, dtype=np.int64))
    if data.size != count:
        raise ValueError(
            f"{t.describe()}: its data has {data.size} values, its shape holds {count}"
        )
    if count == 0:  # an empty buffer reads back as a tensor without data
        raise ValueError(f"{t.describe()}: a constant with no values cannot be written")
    return data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes(order="C")


def _buffer(b: Any, data: bytes | None) -> int:
    buffer = _module("Buffer")
    vector = None
    if data is not None:
        # pad so that the vector's first byte lands on the alignment; the
        # length prefix then needs no further padding
        b.Prep(BUFFER_ALIGNMENT, len(data))
        vector = b.CreateByteVector(data)
    buffer.BufferStart(b)
    if vector is not None:
        buffer.BufferAddData(b, vector)
    return buffer.BufferEnd(b)


def _int32s(b: Any, values: Any, what: str) -> int:
    """An int32 vector of ``values`` (shapes, tensor indices)."""
    try:
        array = np.asarray([int(v) for v in values], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{what} must be integers, got {values!r}") from None
    if array.size and (array.min() < -(2**31) or array.max() >= 2**31):
        raise ValueError(f"{what} must fit int32, got {array.tolist()}")
    return b.CreateNumpyVector(array.astype(np.int32))


def _tensor(b: Any, t: TensorSpec, buffer_index: int) -> int:
    what = t.describe()
    code = _TYPE_CODES.get(np.dtype(t.dtype))
    if code is None:
        kinds = ", ".join(str(d) for d in _TYPE_CODES)
        raise ValueError(f"{what}: lowp writes tensors of {kinds}, not {t.dtype}")
    if any(int(d) < 0 for d in t.shape):
        raise ValueError(f"{what}: a shape has no negative dimensions")
    shape = _int32s(b, t.shape, f"{what}: its shape")
    name = b.CreateString(t.name)
    quantization = _quantization(b, t, what)
    tensor = _module("Tensor")
    tensor.TensorStart(b)
    tensor.TensorAddShape(b, shape)
    tensor.TensorAddType(b, code)
    tensor.TensorAddBuffer(b, buffer_index)
    tensor.TensorAddName(b, name)
    if quantization is not None:
        tensor.TensorAddQuantization(b, quantization)
    return tensor.TensorEnd(b)


def _quantization(b: Any, t: TensorSpec, what: str) -> int | None:
    if t.scale is None:
        if t.zero_point is not None:
            raise ValueError(f"{what} has zero points but no scale")
        return None
    try:
        wide = np.asarray(t.scale, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise ValueError(f"{what}: its scale must be numbers, got {t.scale!r}") from None
    scale = wide.astype(np.float32)
    if not np.array_equal(scale.astype(np.float64), wide, equal_nan=True):
        raise ValueError(
            f"{what}: its scale {wide.tolist()} is not float32 values, which is all a "
            ".tflite file holds (convert it with np.float32 first)"
        )
    if scale.size == 0:
        raise ValueError(f"{what}: an empty scale reads back as no quantization; use None")
    zero_point = np.asarray(t.zero_point) if t.zero_point is not None else None
    if zero_point is None or zero_point.dtype.kind not in "iu":
        raise ValueError(f"{what}: its zero point must be integers, got {t.zero_point!r}")
    zero_point = zero_point.reshape(-1)
    if zero_point.size != scale.size:
        raise ValueError(f"{what} has {scale.size} scales but {zero_point.size} zero points")
    if zero_point.dtype == np.uint64 and zero_point.size and zero_point.max() >= 2**63:
        raise ValueError(f"{what}: its zero point {zero_point.max()} does not fit int64")
    axis = int(t.quantized_dimension)
    if not 0 <= axis < 2**31:
        raise ValueError(f"{what}: quantized dimension {axis} is negative or beyond int32")
    if scale.size > 1 and not (axis < len(t.shape) and t.shape[axis] == scale.size):
        raise ValueError(
            f"{what} has {scale.size} scales but its quantized dimension {axis} of shape "
            f"{list(t.shape)} does not match"
        )
    scale_vector = b.CreateNumpyVector(scale)
    zero_point_vector = b.CreateNumpyVector(zero_point.astype(np.int64))
    q = _module("QuantizationParameters")
    q.QuantizationParametersStart(b)
    q.QuantizationParametersAddScale(b, scale_vector)
    q.QuantizationParametersAddZeroPoint(b, zero_point_vector)
    q.QuantizationParametersAddQuantizedDimension(b, axis)
    return q.QuantizationParametersEnd(b)


# --- operators ------------------------------------------------------------------------------


def _check_index(i: Any, n: int, what: str, optional: bool) -> None:
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)):
        raise ValueError(f"{what}: tensor indices must be ints, got {i!r}")
    if not (0 <= i < n or (optional and i == -1)):
        raise ValueError(f"{what} refers to tensor {i}, but there are {n}")


def _operator(b: Any, graph: Graph, op: OpSpec, codes: dict[tuple[str, int], int]) -> int:
    what = f"operator {op.index} ({op.name})"
    if op.name not in OPS:
        raise ValueError(f"{what}: lowp writes only the operators it runs: {', '.join(OPS)}")
    n = len(graph.tensors)
    for i in op.inputs:
        _check_index(i, n, what, optional=True)
    for i in op.outputs:
        _check_index(i, n, what, optional=False)
    if isinstance(op.version, bool) or not isinstance(op.version, (int, np.integer)):
        raise ValueError(f"{what}: its version must be an int, got {op.version!r}")
    if not 0 <= op.version < 2**31:
        raise ValueError(f"{what}: version {op.version} (0 means the converter's)")
    version = int(op.version) or op_version(graph, op)
    opcode = codes.setdefault((op.name, version), len(codes))
    options_type, options = _operator_options(b, op, what)
    inputs = _int32s(b, op.inputs, f"{what}: its inputs")
    outputs = _int32s(b, op.outputs, f"{what}: its outputs")
    operator = _module("Operator")
    operator.OperatorStart(b)
    operator.OperatorAddOpcodeIndex(b, opcode)
    operator.OperatorAddInputs(b, inputs)
    operator.OperatorAddOutputs(b, outputs)
    if options is not None:
        operator.OperatorAddBuiltinOptionsType(b, options_type)
        operator.OperatorAddBuiltinOptions(b, options)
    return operator.OperatorEnd(b)


def _operator_options(b: Any, op: OpSpec, what: str) -> tuple[int, int | None]:
    """(the union tag, the table) of the operator's options."""
    expected = _OPTIONS_OF[op.name]
    opt = op.options
    if opt is None:
        if op.options_type:
            raise ValueError(f"{what}: options_type {op.options_type} but no options")
        return 0, None
    if not isinstance(opt, Options):
        raise ValueError(f"{what}: its options must be an Options, got {type(opt).__name__}")
    if opt.kind != expected:
        raise ValueError(f"{what}: has options {opt.kind}, the operator reads {expected}")
    tag = {name: code for code, name in _options_names().items()}[opt.kind]
    if op.options_type not in (0, tag):
        raise ValueError(f"{what}: options_type {op.options_type} is not {opt.kind}'s {tag}")
    checked = Options.make(opt.kind, opt.values, what)  # each value exactly as read back
    return tag, _options(b, opt.kind, checked.values, what)


def _options(b: Any, kind: str, values: dict[str, Any], owner: str) -> int:
    """Write an options table: vectors first (a table may hold only
    finished vectors), then every scalar the values give."""
    module = _module(kind)
    _, vector_fields = option_fields(kind)
    vectors = {}
    for name in vector_fields:
        if values.get(name) is not None:  # every vector field of the options lowp reads is ints
            vectors[name] = _int32s(b, np.ravel(values[name]), f"{owner}: {kind} field {name}")
    getattr(module, f"{kind}Start")(b)
    for name, value in values.items():
        if name in vector_fields:
            if name in vectors:
                getattr(module, f"{kind}Add{name}")(b, vectors[name])
            continue
        try:
            getattr(module, f"{kind}Add{name}")(b, value)
        except (TypeError, ValueError, OverflowError, struct.error) as err:
            message = f"{owner}: {kind} field {name} cannot hold {value!r} ({err})"
            raise ValueError(message) from None
    return getattr(module, f"{kind}End")(b)


def options_table(kind: str, values: Any, owner: str = "operator") -> Any:
    """The generated options object (``tflite.Conv2DOptions``...) of a table
    holding ``values``, written and read back (:meth:`Options.make` uses
    this to know what a file would hold)."""
    import flatbuffers

    b = flatbuffers.Builder(64)
    b.Finish(_options(b, kind, dict(values), owner))
    data = bytes(b.Output())
    table = _options_class(kind)()
    table.Init(data, flatbuffers.encode.Get(flatbuffers.packer.uoffset, data, 0))
    return table


def _operator_code(b: Any, name: str, version: int) -> int:
    code = {n: c for c, n in _builtin_names().items()}[name]
    operator_code = _module("OperatorCode")
    operator_code.OperatorCodeStart(b)
    # as the converter: the int8 field for codes below 127, which older
    # runtimes read, and the int32 field always
    operator_code.OperatorCodeAddDeprecatedBuiltinCode(
        b, min(code, _PLACEHOLDER_FOR_GREATER_OP_CODES)
    )
    operator_code.OperatorCodeAddBuiltinCode(b, code)
    operator_code.OperatorCodeAddVersion(b, version)
    return operator_code.OperatorCodeEnd(b)


def op_version(graph: Graph, op: OpSpec) -> int:
    """The version TensorFlow Lite's converter (2.21's
    ``tools/versioning/op_version.cc``) gives an operator lowp runs: the
    first version of the op that has what this one uses, read from its
    tensor types and options (CONV_2D: int8 3, uint8 1; FULLY_CONNECTED:
    without a bias 6, with ``KeepNumDims`` 5, int8 4, uint8 1)."""
    tensors = graph.tensors

    def tensor(ids: list[int], position: int) -> TensorSpec | None:
        return tensors[ids[position]] if position < len(ids) and ids[position] >= 0 else None

    def is_int8(ids: list[int], position: int) -> bool:
        t = tensor(ids, position)
        return t is not None and t.dtype == np.int8

    def per_channel(t: TensorSpec | None) -> bool:
        return t is not None and t.scale is not None and np.size(t.scale) > 1

    def option(name: str) -> Any:
        return op.options.values.get(name, 0) if op.options is not None else 0

    x = tensor(op.inputs, 0)
    int8 = is_int8(op.inputs, 0)
    all_int8 = int8 and is_int8(op.inputs, 1) and is_int8(op.outputs, 0)
    if op.name == "CONV_2D":
        return 3 if all_int8 else 1
    if op.name == "TRANSPOSE_CONV":
        if option("FusedActivationFunction"):
            return 4
        if tensor(op.inputs, 3) is not None:  # a bias
            return 3
        return 2 if is_int8(op.inputs, 1) else 1
    if op.name == "FULLY_CONNECTED":
        if len(op.inputs) == 2:
            return 6
        if option("KeepNumDims"):
            return 5
        if all_int8:
            return 4
        return 2 if option("WeightsFormat") else 1
    if op.name == "QUANTIZE":
        return 3 if per_channel(tensor(op.outputs, 0)) else 1
    if op.name == "DEQUANTIZE":
        return (5 if per_channel(x) else 2) if int8 else 1
    if op.name == "RESHAPE":
        return 1
    if op.name in ("PAD", "PADV2") and x is not None and len(x.shape) > 4:
        return 4
    # MAX_POOL_2D, AVERAGE_POOL_2D, ADD, CONCATENATION, PAD, PADV2
    return 2 if int8 else 1


# --- the subgraph ---------------------------------------------------------------------------


def _offsets(b: Any, offsets: list[int]) -> int:
    """A vector of tables."""
    b.StartVector(4, len(offsets), 4)
    for offset in reversed(offsets):
        b.PrependUOffsetTRelative(offset)
    return b.EndVector()


def _subgraph(
    b: Any, tensors: list[int], ops: list[int], inputs: list[int], outputs: list[int]
) -> int:
    tensor_vector, op_vector = _offsets(b, tensors), _offsets(b, ops)
    input_vector = _int32s(b, inputs, "graph inputs")
    output_vector = _int32s(b, outputs, "graph outputs")
    name = b.CreateString("main")
    subgraph = _module("SubGraph")
    subgraph.SubGraphStart(b)
    subgraph.SubGraphAddTensors(b, tensor_vector)
    subgraph.SubGraphAddInputs(b, input_vector)
    subgraph.SubGraphAddOutputs(b, output_vector)
    subgraph.SubGraphAddOperators(b, op_vector)
    subgraph.SubGraphAddName(b, name)
    return subgraph.SubGraphEnd(b)
