"""Read a .tflite flatbuffer into plain, validated Python objects.

The file is untrusted: every index, count and byte range read from it is
checked against the file before use, and anything the flatbuffers accessors
raise on a malformed file becomes a :class:`ModelError` (a ValueError). What
comes out (:class:`Graph`) holds only NumPy arrays and ints, so the operators
never touch the flatbuffer again.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Graph", "ModelError", "OpSpec", "TensorSpec", "UnsupportedOpError", "parse"]


class ModelError(ValueError):
    """The model file is malformed or does not fit lowp's rules."""


class UnsupportedOpError(ModelError):
    """The model uses an operator (or an operator variant) lowp does not run."""


#: The most elements one tensor may have (2**31: int32 indexing in the kernels;
#: a corrupted shape must not drive a huge allocation).
MAX_ELEMENTS = 2**31

# TensorType values of the schema -> NumPy dtypes lowp can hold.
_DTYPES: dict[int, np.dtype] = {
    0: np.dtype(np.float32),
    2: np.dtype(np.int32),
    3: np.dtype(np.uint8),
    4: np.dtype(np.int64),
    9: np.dtype(np.int8),
}
_TYPE_NAMES = {
    0: "float32",
    1: "float16",
    2: "int32",
    3: "uint8",
    4: "int64",
    5: "string",
    6: "bool",
    7: "int16",
    8: "complex64",
    9: "int8",
    10: "float64",
    17: "int4",
    18: "bfloat16",
}


@dataclass
class TensorSpec:
    """One tensor of the graph. ``data`` is set for constants (read-only)."""

    index: int
    name: str
    shape: tuple[int, ...]
    dtype: np.dtype
    scale: np.ndarray | None = None  # float32, one or per channel
    zero_point: np.ndarray | None = None  # int64, same length as scale
    quantized_dimension: int = 0
    data: np.ndarray | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None

    def describe(self) -> str:
        return f"tensor {self.index} ({self.name!r}, {self.dtype} {list(self.shape)})"


@dataclass
class OpSpec:
    index: int
    name: str  # BuiltinOperator name, e.g. "CONV_2D"
    version: int
    inputs: list[int]  # -1 marks an omitted optional input
    outputs: list[int]
    options: Options | None = None  # the fields of its BuiltinOptions table
    options_type: int = 0


@dataclass
class Graph:
    tensors: list[TensorSpec]
    ops: list[OpSpec]
    inputs: list[int]
    outputs: list[int]
    description: str = ""
    names: dict[int, str] = field(default_factory=dict)


class Options:
    """An operator's options read out of the flatbuffer at parse time (so a
    malformed table fails here): ``opt.Padding()`` as on the schema class."""

    def __init__(self, kind: str, table: Any):
        self.kind = kind
        self.values: dict[str, Any] = {}
        for name, attr in vars(type(table)).items():
            if name[:1].isupper() and name != "Init" and callable(attr):
                code = getattr(attr, "__code__", None)
                if code is not None and code.co_argcount == 1:  # a scalar field
                    self.values[name] = getattr(table, name)()

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name not in values:
            raise AttributeError(f"{self.__dict__.get('kind', 'options')} has no field {name}")
        value = values[name]
        return lambda: value


def _builtin_names() -> dict[int, str]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


def _options_class(name: str):
    """The schema's options class for a BuiltinOptions type name."""
    import importlib

    module = importlib.import_module(f"tflite.{name}")
    return getattr(module, name)


def _options_names() -> dict[int, str]:
    from tflite.BuiltinOptions import BuiltinOptions

    return {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}


def parse(data: bytes | bytearray | memoryview) -> Graph:
    """Parse and validate a .tflite model held in memory."""
    buf = bytes(data)
    if len(buf) < 8:
        raise ModelError(f"model: {len(buf)} bytes is too short for a .tflite file")
    if buf[4:8] != b"TFL3":
        raise ModelError("model: not a .tflite file (missing the 'TFL3' identifier)")
    try:
        return _parse(buf)
    except ModelError:
        raise
    except (IndexError, struct.error, ValueError, TypeError, OverflowError, UnicodeDecodeError,
            AttributeError, ImportError, MemoryError) as err:  # fmt: skip
        # what the flatbuffers accessors raise on offsets that point nowhere
        raise ModelError(f"model: malformed flatbuffer ({type(err).__name__}: {err})") from None


def _check_offset(buf: bytes, pos: int, what: str) -> None:
    if not 0 <= pos < len(buf):
        raise ModelError(f"model: {what} points outside the file (offset {pos})")


def _count(n: int, buf: bytes, what: str) -> int:
    # A vector's length comes from the file; no real vector has more entries
    # than the file has bytes, and refusing early keeps a corrupted length
    # from driving a loop of billions of iterations.
    if not 0 <= n <= len(buf):
        raise ModelError(f"model: {what} has an impossible length {n}")
    return n


def _int_vector(table, getter: str, buf: bytes, what: str) -> list[int]:
    n = _count(getattr(table, getter + "Length")(), buf, what)
    if n == 0:
        return []
    arr = getattr(table, getter + "AsNumpy")()
    if not isinstance(arr, np.ndarray) or arr.size != n:
        raise ModelError(f"model: {what} is unreadable")
    return [int(v) for v in arr]


def _parse(buf: bytes) -> Graph:
    from tflite.Model import Model

    _check_offset(buf, struct.unpack_from("<I", buf, 0)[0], "the root table")
    model = Model.GetRootAs(buf, 0)
    n_sub = _count(model.SubgraphsLength(), buf, "subgraphs")
    if n_sub == 0:
        raise ModelError("model: no subgraph")
    if n_sub > 1:
        raise UnsupportedOpError(
            f"model: {n_sub} subgraphs (control flow); lowp runs single-graph models"
        )
    n_buffers = _count(model.BuffersLength(), buf, "buffers")
    n_codes = _count(model.OperatorCodesLength(), buf, "operator codes")
    builtin = _builtin_names()
    codes: list[tuple[str, int]] = []
    for i in range(n_codes):
        oc = model.OperatorCodes(i)
        if oc is None:
            raise ModelError(f"model: operator code {i} is missing")
        code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
        name = builtin.get(code)
        if code == 32 and name == "CUSTOM":  # BuiltinOperator.CUSTOM
            custom = oc.CustomCode()
            name = f"CUSTOM({custom.decode('utf-8', 'replace') if custom else '?'})"
        codes.append((name or f"builtin operator {code}", int(oc.Version())))

    sg = model.Subgraphs(0)
    if sg is None:
        raise ModelError("model: subgraph 0 is missing")
    n_tensors = _count(sg.TensorsLength(), buf, "tensors")
    tensors = [_tensor(sg.Tensors(i), i, model, n_buffers, buf) for i in range(n_tensors)]

    def tensor_index(v: int, what: str, optional: bool) -> int:
        if optional and v == -1:
            return -1
        if not 0 <= v < n_tensors:
            raise ModelError(f"model: {what} refers to tensor {v}, but there are {n_tensors}")
        return v

    inputs = [
        tensor_index(v, "graph input", False) for v in _int_vector(sg, "Inputs", buf, "inputs")
    ]
    outputs = [
        tensor_index(v, "graph output", False) for v in _int_vector(sg, "Outputs", buf, "outputs")
    ]
    if not inputs or not outputs:
        raise ModelError("model: the graph has no inputs or no outputs")
    opt_names = _options_names()
    ops: list[OpSpec] = []
    n_ops = _count(sg.OperatorsLength(), buf, "operators")
    for i in range(n_ops):
        op = sg.Operators(i)
        if op is None:
            raise ModelError(f"model: operator {i} is missing")
        code_index = int(op.OpcodeIndex())
        if not 0 <= code_index < n_codes:
            raise ModelError(
                f"model: operator {i} has opcode index {code_index}, but there are {n_codes}"
            )
        name, version = codes[code_index]
        what = f"operator {i} ({name})"
        op_inputs = [tensor_index(v, what, True) for v in _int_vector(op, "Inputs", buf, what)]
        op_outputs = [tensor_index(v, what, False) for v in _int_vector(op, "Outputs", buf, what)]
        opt_type = int(op.BuiltinOptionsType())
        options = None
        if opt_type != 0:
            table = op.BuiltinOptions()
            opt_name = opt_names.get(opt_type)
            if table is None or opt_name is None:
                raise ModelError(f"model: {what} has unreadable options")
            _check_offset(buf, table.Pos, f"{what}'s options")
            table_obj = _options_class(opt_name)()
            table_obj.Init(table.Bytes, table.Pos)
            options = Options(opt_name, table_obj)
        ops.append(OpSpec(i, name, version, op_inputs, op_outputs, options, opt_type))
    desc = model.Description()
    return Graph(tensors, ops, inputs, outputs, desc.decode("utf-8", "replace") if desc else "")


def _tensor(t, index: int, model, n_buffers: int, buf: bytes) -> TensorSpec:
    if t is None:
        raise ModelError(f"model: tensor {index} is missing")
    raw_name = t.Name()
    name = raw_name.decode("utf-8", "replace") if raw_name else f"tensor{index}"
    type_code = int(t.Type())
    dtype = _DTYPES.get(type_code)
    what = f"tensor {index} ({name!r})"
    shape = tuple(_int_vector(t, "Shape", buf, f"{what}'s shape"))
    if len(shape) > 6 or any(d < 0 for d in shape):
        raise ModelError(f"model: {what} has an invalid shape {list(shape)}")
    if int(np.prod(shape, dtype=np.float64)) > MAX_ELEMENTS:
        raise ModelError(f"model: {what} has {list(shape)}, more than {MAX_ELEMENTS} elements")
    if t.Sparsity() is not None:
        raise UnsupportedOpError(f"model: {what} is sparse; lowp needs dense tensors")
    spec = TensorSpec(index, name, shape, dtype if dtype is not None else np.dtype(np.void))
    spec.type_name = _TYPE_NAMES.get(type_code, f"type {type_code}")  # type: ignore[attr-defined]
    q = t.Quantization()
    if q is not None and q.ScaleLength() > 0:
        n = _count(q.ScaleLength(), buf, f"{what}'s scales")
        scale = np.array(q.ScaleAsNumpy(), dtype=np.float32).reshape(-1)
        nz = _count(q.ZeroPointLength(), buf, f"{what}'s zero points")
        zp = (
            np.array(q.ZeroPointAsNumpy(), dtype=np.int64).reshape(-1)
            if nz
            else np.zeros(n, np.int64)
        )
        if scale.size != n or zp.size != n:
            raise ModelError(f"model: {what} has {n} scales but {zp.size} zero points")
        if not np.all(np.isfinite(scale)):
            raise ModelError(f"model: {what} has a non-finite scale")
        qdim = int(q.QuantizedDimension())
        if n > 1 and not (0 <= qdim < len(shape) and shape[qdim] == n):
            raise ModelError(
                f"model: {what} has {n} scales but its quantized dimension {qdim} of "
                f"shape {list(shape)} does not match"
            )
        spec.scale, spec.zero_point, spec.quantized_dimension = scale, zp, qdim
    b = int(t.Buffer())
    if not 0 <= b < max(n_buffers, 1):
        raise ModelError(f"model: {what} refers to buffer {b}, but there are {n_buffers}")
    if n_buffers and b > 0:
        spec.data = _buffer_data(model.Buffers(b), spec, what, buf)
    return spec


def _buffer_data(b, spec: TensorSpec, what: str, buf: bytes) -> np.ndarray | None:
    if b is None:
        raise ModelError(f"model: {what}'s buffer is missing")
    offset, size = int(b.Offset()), int(b.Size())
    if offset > 1:  # data stored after the flatbuffer (models over 2 GB)
        if offset + size > len(buf):
            raise ModelError(f"model: {what}'s data lies outside the file")
        raw = np.frombuffer(buf, np.uint8, size, offset)
    else:
        n = _count(b.DataLength(), buf, f"{what}'s data")
        if n == 0:
            return None
        raw = b.DataAsNumpy()
        if not isinstance(raw, np.ndarray) or raw.size != n:
            raise ModelError(f"model: {what}'s data is unreadable")
    if spec.dtype == np.void:
        raise UnsupportedOpError(f"model: {what} has data of unsupported type {spec.type_name}")  # type: ignore[attr-defined]
    count = int(np.prod(spec.shape, dtype=np.int64))
    need = count * spec.dtype.itemsize
    if raw.size < need:
        raise ModelError(
            f"model: {what}'s buffer holds {raw.size} bytes, its shape {list(spec.shape)} "
            f"needs {need}"
        )
    arr = np.frombuffer(raw[:need].tobytes(), dtype=spec.dtype.newbyteorder("<")).astype(
        spec.dtype, copy=False
    )
    arr = arr.reshape(spec.shape)
    arr.flags.writeable = False
    return arr
