"""Read a .tflite flatbuffer into plain, validated Python objects.

The file is untrusted: every index, count and byte range read from it is
checked against the file before use, and anything the flatbuffers accessors
raise on a malformed file becomes a :class:`ModelError` (a ValueError). What
comes out (:class:`Graph`) holds only NumPy arrays and ints, so the operators
never touch the flatbuffer again.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_MEMORY_LIMIT",
    "Graph",
    "ModelError",
    "OpSpec",
    "Options",
    "TensorSpec",
    "UnsupportedOpError",
    "check_memory_limit",
    "parse",
    "scale_problem",
]


class ModelError(ValueError):
    """The model file is malformed or does not fit lowp's rules."""


class UnsupportedOpError(ModelError):
    """The model uses an operator (or an operator variant) lowp does not run."""


#: The most elements one tensor may have (2**31: int32 indexing in the kernels;
#: a corrupted shape must not drive a huge allocation).
MAX_ELEMENTS = 2**31

#: The most bytes one tensor may take unless ``load(..., memory_limit=)`` says
#: otherwise: 2 GiB. A 300-byte file can declare any shape; this is what keeps
#: it from asking for more memory than the caller agreed to.
DEFAULT_MEMORY_LIMIT = 2**31

#: Bytes per element of every TensorType, also those lowp does not compute
#: with (their shapes count against the memory limit all the same); int4 is
#: counted as a byte, a string as one byte per element at least.
_ITEMSIZE = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: 1, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16, 12: 8,
             13: 8, 14: 4, 15: 2, 16: 2, 17: 1, 18: 2}  # fmt: skip

#: The smallest and largest scale a quantized int8/uint8 tensor may have: a
#: normal float32 (a subnormal's reciprocal overflows), and small enough that
#: ``scale * (q - zero_point)`` stays a finite float32 for every 8-bit q.
MIN_SCALE = float(np.finfo(np.float32).tiny)  # 2**-126
MAX_SCALE = 2.0**120

# The BuiltinOptions table each operator lowp runs reads. An operator whose
# union tag names another table would read that table's bytes through the
# wrong accessors (a missing field, or garbage): refused at parse time.
_OPTIONS_OF = {
    "ADD": "AddOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
    "CONCATENATION": "ConcatenationOptions",
    "CONV_2D": "Conv2DOptions",
    "DEQUANTIZE": "DequantizeOptions",
    "FULLY_CONNECTED": "FullyConnectedOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "PAD": "PadOptions",
    "PADV2": "PadV2Options",
    "QUANTIZE": "QuantizeOptions",
    "RESHAPE": "ReshapeOptions",
    "TRANSPOSE_CONV": "TransposeConvOptions",
}

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
        dtype = getattr(self, "type_name", "?") if self.dtype == np.void else self.dtype
        return f"tensor {self.index} ({self.name!r}, {dtype} {list(self.shape)})"


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
    #: the byte limit the model was loaded with: every tensor is within it, and
    #: a runtime laying out the whole plan bounds its arena with it too
    memory_limit: int = DEFAULT_MEMORY_LIMIT


class Options:
    """An operator's options: one value per field of its BuiltinOptions table,
    read out of the flatbuffer at parse time (so a malformed table fails
    here), and read as on the schema class: ``opt.Padding()``. A vector field
    is a tuple of its values, or None when the table has none. ``owner``
    names the operator in errors. :meth:`make` builds options from values,
    for a graph made in Python."""

    def __init__(self, kind: str, table: Any, owner: str = "operator"):
        self.kind = kind
        self.owner = owner
        self.values: dict[str, Any] = {}
        scalars, vectors = option_fields(kind)
        for name in scalars:
            self.values[name] = getattr(table, name)()
        for name in vectors:
            if getattr(table, name + "IsNone")():
                self.values[name] = None
            else:
                self.values[name] = tuple(getattr(table, name + "AsNumpy")().tolist())

    @classmethod
    def make(cls, kind: str, values: Mapping[str, Any], owner: str = "operator") -> Options:
        """Options of the table ``kind`` (a BuiltinOptions name such as
        ``"Conv2DOptions"``) holding ``values`` by field name, e.g.
        ``Options.make("Pool2DOptions", {"FilterWidth": 2, "FilterHeight": 2,
        "StrideW": 2, "StrideH": 2, "Padding": 1})``; a field not given holds
        the schema's default (what a file without it reads as). The values
        are written into a table and read back, so they are exactly what a
        .tflite file holds: an unknown kind or field, or a value its field
        cannot hold (300 in an int8 field, 1.5 in an int one), is a ValueError
        naming ``owner`` and the field."""
        from ._write import options_table  # the writer's table encoder

        if kind not in _options_names().values():
            raise ValueError(f"{owner}: {kind!r} is not a TFLite BuiltinOptions table")
        if not isinstance(values, Mapping):
            raise TypeError(f"{owner}: values must be a mapping of field names, got "
                            f"{type(values).__name__}")  # fmt: skip
        scalars, vectors = option_fields(kind)
        unknown = sorted(set(values) - set(scalars) - set(vectors), key=str)
        if unknown:
            raise ValueError(
                f"{owner}: {kind} has no field {unknown[0]!r} (its fields: "
                f"{', '.join(scalars + vectors) or 'none'})"
            )
        table = options_table(kind, values, owner)
        made = cls(kind, table, owner)
        for name, value in values.items():
            got = made.values[name]
            if isinstance(got, tuple):  # a vector field: any sequence of its values
                same = np.ndim(value) == 1 and tuple(np.asarray(value).tolist()) == got
            else:
                same = bool(got == value)
            if not same:
                raise ValueError(
                    f"{owner}: {kind} field {name} = {value!r} is not a value the field "
                    f"holds (it would read back as {got!r})"
                )
        return made

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Options):
            return NotImplemented
        return self.kind == other.kind and self.values == other.values

    __hash__ = None  # type: ignore[assignment]  # mutable values

    def __repr__(self) -> str:
        return f"Options({self.kind!r}, {self.values!r})"

    def __getattr__(self, name: str) -> Any:
        values = self.__dict__.get("values", {})
        if name not in values:
            if name[:1].isupper():  # a schema field the table does not have
                raise ModelError(
                    f"{self.__dict__.get('owner', 'operator')}: its "
                    f"{self.__dict__.get('kind', 'options')} have no field {name}"
                )
            raise AttributeError(name)
        value = values[name]
        return lambda: value


@functools.cache
def option_fields(kind: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The scalar and the vector fields of an options table, by the
    generated class's accessor name (``Padding``; ``NewShape``, whose ``NewShapeLength``,
    ``NewShapeAsNumpy`` and ``NewShapeIsNone`` are its helpers, not fields).
    Vectors of tables, which no options lowp reads have, are left out."""
    members = vars(_options_class(kind))

    def arity(attr: Any) -> int:
        code = getattr(attr, "__code__", None)  # classmethods (GetRootAs) have none
        return code.co_argcount if code is not None else -1

    indexed = [n for n, a in members.items() if arity(a) == 2 and n + "Length" in members]
    helpers = {n + s for n in indexed for s in ("Length", "AsNumpy", "IsNone")}
    vectors = tuple(n for n in indexed if n + "AsNumpy" in members)
    scalars = tuple(
        n for n, a in members.items() if n[:1].isupper() and arity(a) == 1 and n not in helpers
    )
    return scalars, vectors


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


def check_memory_limit(memory_limit: Any) -> int:
    """``memory_limit`` as a positive int of bytes (None: the default)."""
    if memory_limit is None:
        return DEFAULT_MEMORY_LIMIT
    if isinstance(memory_limit, bool) or not isinstance(memory_limit, (int, np.integer)):
        kind = type(memory_limit).__name__
        raise TypeError(f"memory_limit must be an int number of bytes or None, got {kind}")
    if memory_limit < 1:
        raise ValueError(f"memory_limit must be a positive number of bytes, got {memory_limit}")
    return int(memory_limit)


def parse(
    data: bytes | bytearray | memoryview, memory_limit: int | None = DEFAULT_MEMORY_LIMIT
) -> Graph:
    """Parse and validate a .tflite model held in memory.

    ``memory_limit`` is the most bytes any one tensor may take (its declared
    shape times its element size, also for a zero-size shape the product of
    its nonzero dimensions): a larger tensor is a :class:`ModelError` naming
    it, before anything is allocated. The default,
    :data:`DEFAULT_MEMORY_LIMIT`, is 2 GiB; ``None`` means the default. The
    result keeps it as ``Graph.memory_limit``.
    """
    limit = check_memory_limit(memory_limit)
    buf = bytes(data)
    if len(buf) < 8:
        raise ModelError(f"model: {len(buf)} bytes is too short for a .tflite file")
    if buf[4:8] != b"TFL3":
        raise ModelError("model: not a .tflite file (missing the 'TFL3' identifier)")
    try:
        return _parse(buf, limit)
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


def _parse(buf: bytes, memory_limit: int) -> Graph:
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
    tensors = [
        _tensor(sg.Tensors(i), i, model, n_buffers, buf, memory_limit) for i in range(n_tensors)
    ]

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
            opt_name = opt_names.get(opt_type)
            if opt_name is None:
                raise ModelError(f"{what}: unknown options type {opt_type}")
            expected = _OPTIONS_OF.get(name)
            if expected is not None and opt_name != expected:
                raise ModelError(f"{what}: has options of type {opt_name}, expected {expected}")
            table = op.BuiltinOptions()
            if table is None:
                raise ModelError(f"model: {what} has unreadable options")
            _check_offset(buf, table.Pos, f"{what}'s options")
            table_obj = _options_class(opt_name)()
            table_obj.Init(table.Bytes, table.Pos)
            options = Options(opt_name, table_obj, what)
        ops.append(OpSpec(i, name, version, op_inputs, op_outputs, options, opt_type))
    _check_scales(tensors, ops, inputs, outputs)
    desc = model.Description()
    graph = Graph(tensors, ops, inputs, outputs, desc.decode("utf-8", "replace") if desc else "")
    graph.memory_limit = memory_limit
    return graph


def scale_problem(t: TensorSpec) -> str | None:
    """What is wrong with a quantized tensor's scales, or None. A scale must be
    a normal, positive, finite float32 in [MIN_SCALE, MAX_SCALE]: a zero,
    subnormal, infinite or NaN scale makes the reciprocals and multipliers the
    kernels derive from it infinite or NaN."""
    if t.scale is None:
        return None
    bad = ~((t.scale >= MIN_SCALE) & (t.scale <= MAX_SCALE))  # NaN fails both
    if not np.any(bad):
        return None
    first = int(np.flatnonzero(bad)[0])
    value = float(t.scale[first])
    if not np.isfinite(value):
        kind = "a non-finite"
    elif value <= 0:
        kind = "a non-positive"
    elif value < MIN_SCALE:
        kind = "a subnormal"
    else:
        kind = "a huge"
    which = "scale" if t.scale.size == 1 else f"scale (channel {first})"
    return (
        f"{t.describe()} has {kind} {which} {value!r}; a scale must be a normal, finite "
        f"float32 in [2**-126, 2**120]"
    )


def _check_scales(
    tensors: list[TensorSpec], ops: list[OpSpec], inputs: list[int], outputs: list[int]
) -> None:
    """Every int8/uint8 tensor an operator or the graph reads or writes has
    sound scales; the error names the operator and the tensor."""
    users: list[tuple[str, list[int]]] = [
        (f"operator {op.index} ({op.name})", op.inputs + op.outputs) for op in ops
    ]
    users += [("graph input", inputs), ("graph output", outputs)]
    for who, ids in users:
        for i in ids:
            t = tensors[i] if i >= 0 else None
            if t is None or t.dtype not in (np.uint8, np.int8):
                continue
            problem = scale_problem(t)
            if problem is not None:
                raise ModelError(f"{who}: {problem}")


def _tensor(t, index: int, model, n_buffers: int, buf: bytes, memory_limit: int) -> TensorSpec:
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
    # exact Python ints; a zero dimension does not excuse absurd others
    extent = 1
    for d in shape:
        extent *= max(d, 1)
    if extent > MAX_ELEMENTS:
        raise ModelError(f"model: {what} has {list(shape)}, more than {MAX_ELEMENTS} elements")
    nbytes = extent * _ITEMSIZE.get(type_code, 1)
    if nbytes > memory_limit:
        raise ModelError(
            f"model: {what} has shape {list(shape)}: {nbytes} bytes, more than the memory "
            f"limit of {memory_limit} bytes (load(..., memory_limit=) sets it)"
        )
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
        # the scales' values are checked where an operator uses them (_check_scales)
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
