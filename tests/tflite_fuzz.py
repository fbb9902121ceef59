"""Structure-aware fuzzing of ``lowp.tflite.load``: a small flatbuffer codec for
the part of the TFLite schema lowp reads, seed models, mutations, and the
worker process that runs cases (tests/test_tflite_fuzz.py drives it).

A case is ``(seed model, case seed)``; everything about it is derived from
those two, so ``python tests/tflite_fuzz.py --model unet --seed 17`` repeats
one case in-process, prints its mutations and raises what it raised
(``--write out.tflite`` keeps the mutated file).

How a case is made:

1. The seed model is decoded into plain Python values (a table is a dict of
   field name -> value, following :data:`SCHEMA`) and re-encoded with every
   scalar field written, defaults included, so that byte-level mutations can
   reach fields a converter leaves out when they hold their default.
2. One to three mutations are applied. *Tree* mutations change decoded
   values and re-encode (a well-formed file with hostile content): tensor
   shapes, types, buffer indices, quantization scale / zero point vectors and
   quantized dimension, operator input / output / opcode indices, the options
   union tag and option fields, vectors truncated, extended, emptied or
   removed, tables dropped or duplicated. *Byte* mutations then overwrite the
   encoded file at a site the decoder recorded (a scalar, a vector length, a
   uoffset, a vtable entry, a table's vtable soffset, or any byte): a
   malformed file.
3. The worker loads the bytes and, when they load, runs the model on
   ``model.random_inputs()``. A case passes when it loads and runs, or is
   refused with ``lowp.tflite.ModelError``; any other exception (NumPy
   warnings are errors here, as in the test suite), a crash or a hang fails.
"""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import random
import struct
import sys
import time
import traceback
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from flatbuffers import number_types as N

# --- the schema subset ----------------------------------------------------------------------

# Each table's fields in slot order (slot i is vtable entry 4 + 2 * i). A kind is
# a scalar (a struct letter, with its default after "=" when it is not 0),
# "str", "[x]" (a vector of scalars x or of tables x), a table name, "tag" (a
# union's type byte) or "union" (its table, typed by the tag before it).
# None marks a slot lowp never reads; the codec drops it.
SCHEMA: dict[str, tuple[tuple[str, str] | None, ...]] = {
    "Model": (
        ("version", "I"),
        ("operator_codes", "[OperatorCode]"),
        ("subgraphs", "[SubGraph]"),
        ("description", "str"),
        ("buffers", "[Buffer]"),
    ),
    "OperatorCode": (
        ("deprecated_builtin_code", "b"),
        ("custom_code", "str"),
        ("version", "i=1"),
        ("builtin_code", "i"),
    ),
    "SubGraph": (
        ("tensors", "[Tensor]"),
        ("inputs", "[i]"),
        ("outputs", "[i]"),
        ("operators", "[Operator]"),
        ("name", "str"),
    ),
    "Tensor": (
        ("shape", "[i]"),
        ("type", "b"),
        ("buffer", "I"),
        ("name", "str"),
        ("quantization", "QuantizationParameters"),
        ("is_variable", "?"),
        None,  # sparsity
        ("shape_signature", "[i]"),
    ),
    "QuantizationParameters": (
        ("min", "[f]"),
        ("max", "[f]"),
        ("scale", "[f]"),
        ("zero_point", "[q]"),
        None,  # details_type
        None,  # details
        ("quantized_dimension", "i"),
    ),
    "Buffer": (("data", "[B]"), ("offset", "Q"), ("size", "Q")),
    "Operator": (
        ("opcode_index", "I"),
        ("inputs", "[i]"),
        ("outputs", "[i]"),
        ("builtin_options_type", "tag"),
        ("builtin_options", "union"),
    ),
    # the options tables of the operators lowp runs
    "Conv2DOptions": (
        ("padding", "b"),
        ("stride_w", "i"),
        ("stride_h", "i"),
        ("fused_activation_function", "b"),
        ("dilation_w_factor", "i=1"),
        ("dilation_h_factor", "i=1"),
    ),
    "Pool2DOptions": (
        ("padding", "b"),
        ("stride_w", "i"),
        ("stride_h", "i"),
        ("filter_width", "i"),
        ("filter_height", "i"),
        ("fused_activation_function", "b"),
    ),
    "TransposeConvOptions": (
        ("padding", "b"),
        ("stride_w", "i"),
        ("stride_h", "i"),
        ("fused_activation_function", "b"),
    ),
    "FullyConnectedOptions": (
        ("fused_activation_function", "b"),
        ("weights_format", "b"),
        ("keep_num_dims", "?"),
        ("asymmetric_quantize_inputs", "?"),
    ),
    "ConcatenationOptions": (("axis", "i"), ("fused_activation_function", "b")),
    "AddOptions": (("fused_activation_function", "b"), ("pot_scale_int16", "?=1")),
    "ReshapeOptions": (("new_shape", "[i]"),),
    "PadOptions": (),
    "PadV2Options": (),
    "QuantizeOptions": (),
    "DequantizeOptions": (),
}

_SCALARS = {
    "b": N.Int8Flags,
    "B": N.Uint8Flags,
    "?": N.BoolFlags,
    "h": N.Int16Flags,
    "H": N.Uint16Flags,
    "i": N.Int32Flags,
    "I": N.Uint32Flags,
    "q": N.Int64Flags,
    "Q": N.Uint64Flags,
    "f": N.Float32Flags,
}
_NUMPY = {"b": np.int8, "B": np.uint8, "?": np.bool_, "i": np.int32, "q": np.int64, "f": np.float32}


def _split(kind: str) -> tuple[str, Any]:
    """'i=1' -> ('i', 1); 'f' -> ('f', 0.0); other kinds unchanged."""
    base, _, default = kind.partition("=")
    if base in _SCALARS:
        if base == "f":
            return base, float(default or 0)
        return base, int(default or 0)
    return kind, None


def _defaults(type_name: str) -> dict[str, Any]:
    """A table of ``type_name`` with every scalar field at its default."""
    out = {}
    for field in SCHEMA[type_name]:
        if field is not None and _split(field[1])[0] in _SCALARS:
            out[field[0]] = _split(field[1])[1]
    return out


def _options_names() -> dict[int, str]:
    from tflite.BuiltinOptions import BuiltinOptions

    return {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}


def _operator_codes() -> dict[str, int]:
    from tflite.BuiltinOperator import BuiltinOperator

    return {k: v for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}


_OPTIONS_NAMES = _options_names()
OPTION_TAGS = {name: tag for tag, name in _OPTIONS_NAMES.items()}
OPCODES = _operator_codes()


# --- decoding (of valid files) and byte sites ---------------------------------------------


@dataclass(frozen=True)
class Site:
    """A place in an encoded file a byte mutation can overwrite."""

    path: str  # e.g. "subgraphs[0].tensors[3].shape"
    kind: str  # scalar, length, offset, vtable, soffset, element
    pos: int
    fmt: str  # struct letter of what is stored there
    count: int = 0  # a vector's length (kind "length")


class _Decoder:
    def __init__(self, buf: bytes):
        self.buf = buf
        self.sites: list[Site] = []

    def get(self, fmt: str, pos: int) -> Any:
        return struct.unpack_from("<" + fmt, self.buf, pos)[0]

    def site(self, path: str, kind: str, pos: int, fmt: str, count: int = 0) -> None:
        self.sites.append(Site(path, kind, pos, fmt, count))

    def ref(self, pos: int, path: str) -> int:
        """Follow the uoffset stored at ``pos``."""
        self.site(path, "offset", pos, "I")
        return pos + self.get("I", pos)

    def table(self, type_name: str, pos: int, path: str) -> dict[str, Any]:
        vtable = pos - self.get("i", pos)
        self.site(path, "soffset", pos, "i")
        vt_size = self.get("H", vtable)
        out: dict[str, Any] = {}
        for slot, field in enumerate(SCHEMA[type_name]):
            if field is None:
                continue
            name, kind = field
            entry = vtable + 4 + 2 * slot
            offset = self.get("H", entry) if 4 + 2 * slot < vt_size else 0
            fpath = f"{path}.{name}"
            base, default = _split(kind)
            if offset == 0:  # absent: a scalar holds its default, anything else is missing
                if base in _SCALARS or kind == "tag":
                    out[name] = default if kind != "tag" else 0
                continue
            self.site(fpath, "vtable", entry, "H")
            fpos = pos + offset
            if base in _SCALARS:
                out[name] = self.get(base, fpos)
                self.site(fpath, "scalar", fpos, base)
            elif kind == "tag":
                out[name] = self.get("B", fpos)
                self.site(fpath, "scalar", fpos, "B")
            elif kind == "union":
                # typed by the tag, which a tree mutation may have made a lie:
                # a table that does not decode as that type is left out
                type_name_ = _OPTIONS_NAMES.get(out.get("builtin_options_type", 0), "")
                if type_name_ in SCHEMA:
                    mark = len(self.sites)
                    try:
                        sub = self.table(type_name_, self.ref(fpos, fpath), fpath)
                    except (struct.error, IndexError):
                        del self.sites[mark:]
                    else:
                        out[name] = (type_name_, sub)
            elif kind == "str":
                spos = self.ref(fpos, fpath)
                n = self.get("I", spos)
                self.site(fpath, "length", spos, "I", n)
                out[name] = self.buf[spos + 4 : spos + 4 + n]
            elif kind.startswith("["):
                out[name] = self.vector(kind[1:-1], self.ref(fpos, fpath), fpath)
            else:
                out[name] = self.table(kind, self.ref(fpos, fpath), fpath)
        return out

    def vector(self, elem: str, vpos: int, path: str) -> Any:
        n = self.get("I", vpos)
        self.site(path, "length", vpos, "I", n)
        start = vpos + 4
        if elem == "B":  # raw data: one site for the whole block
            return self.buf[start : start + n]
        if elem in _SCALARS:
            size = struct.calcsize(elem)
            for i in range(min(n, 16)):
                self.site(f"{path}[{i}]", "element", start + i * size, elem)
            return [self.get(elem, start + i * size) for i in range(n)]
        return [
            self.table(elem, self.ref(start + 4 * i, f"{path}[{i}]"), f"{path}[{i}]")
            for i in range(n)
        ]


def decode(buf: bytes) -> tuple[dict[str, Any], list[Site]]:
    """The model as plain values, and the byte sites of ``buf``."""
    d = _Decoder(buf)
    root = d.ref(0, "root")
    return d.table("Model", root, "model"), d.sites


# --- encoding -------------------------------------------------------------------------------


def encode(model: dict[str, Any]) -> bytes:
    """A .tflite file of the decoded form, every scalar field written."""
    b = flatbuffers.Builder(4096)
    b.ForceDefaults(True)
    b.Finish(_encode_table(b, "Model", model), file_identifier=b"TFL3")
    return bytes(b.Output())


def _encode_table(b: flatbuffers.Builder, type_name: str, value: dict[str, Any]) -> int:
    fields = SCHEMA[type_name]
    refs: dict[int, int] = {}
    for slot, field in enumerate(fields):  # children first: a flatbuffer is built backwards
        if field is None or field[0] not in value:
            continue
        name, kind = field
        v = value[name]
        if kind == "str":
            refs[slot] = b.CreateString(bytes(v))
        elif kind == "union":
            refs[slot] = _encode_table(b, v[0], v[1])
        elif kind.startswith("["):
            elem = kind[1:-1]
            if elem == "B":
                refs[slot] = b.CreateByteVector(bytes(v))
            elif elem in _SCALARS:
                with np.errstate(over="ignore"):  # a mutated float may be beyond float32: inf
                    refs[slot] = b.CreateNumpyVector(np.array(v, dtype=_NUMPY[elem]))
            else:
                offsets = [_encode_table(b, elem, item) for item in v]
                b.StartVector(4, len(offsets), 4)
                for off in reversed(offsets):
                    b.PrependUOffsetTRelative(off)
                refs[slot] = b.EndVector()
        elif kind not in ("tag",) and _split(kind)[0] not in _SCALARS:
            refs[slot] = _encode_table(b, kind, v)
    b.StartObject(len(fields))
    for slot, field in enumerate(fields):
        if field is None or field[0] not in value:
            continue
        name, kind = field
        if slot in refs:
            b.PrependUOffsetTRelativeSlot(slot, refs[slot], 0)
        elif kind == "tag":
            b.PrependSlot(N.Uint8Flags, slot, int(value[name]), 0)
        else:
            base, default = _split(kind)
            v = value[name]
            b.PrependSlot(_SCALARS[base], slot, float(v) if base == "f" else int(v), default)
    return b.EndObject()


# --- seed models ------------------------------------------------------------------------------

_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int8": 9}


class ModelTree:
    """Builds the decoded form of a one-subgraph model, for :func:`encode`:
    ``tensor()`` and ``op()`` return the new tensor's / operator's index."""

    def __init__(self, description: str = "lowp test model"):
        self.tensors: list[dict[str, Any]] = []
        self.operators: list[dict[str, Any]] = []
        self.codes: list[str] = []
        self.buffers: list[dict[str, Any]] = [{"data": b""}]
        self.description = description

    def tensor(
        self,
        shape: list[int],
        dtype: str,
        name: str,
        scale: Any = None,
        zero_point: Any = None,
        *,
        data: np.ndarray | None = None,
        quantized_dimension: int = 0,
    ) -> int:
        """A tensor; ``scale`` (one or per channel) makes it quantized, ``data`` constant."""
        t: dict[str, Any] = {
            "shape": list(shape),
            "type": _TYPES[dtype],
            "buffer": 0,
            "name": name.encode(),
            "is_variable": 0,
        }
        if scale is not None:
            scales = [float(v) for v in np.atleast_1d(np.float32(scale))]
            zps = np.atleast_1d(zero_point if zero_point is not None else 0)
            t["quantization"] = {
                "scale": scales,
                "zero_point": [int(z) for z in np.broadcast_to(zps, len(scales))],
                "quantized_dimension": quantized_dimension,
            }
        if data is not None:
            arr = np.ascontiguousarray(data)
            self.buffers.append({"data": arr.astype(arr.dtype.newbyteorder("<")).tobytes()})
            t["buffer"] = len(self.buffers) - 1
        self.tensors.append(t)
        return len(self.tensors) - 1

    def op(
        self, name: str, inputs: list[int], outputs: list[int], options: str | None = None, **fields
    ) -> int:
        """An operator; ``options`` names its options table, ``fields`` set its fields."""
        if name not in self.codes:
            self.codes.append(name)
        o: dict[str, Any] = {
            "opcode_index": self.codes.index(name),
            "inputs": list(inputs),
            "outputs": list(outputs),
            "builtin_options_type": 0,
        }
        if options is not None:
            o["builtin_options_type"] = OPTION_TAGS[options]
            o["builtin_options"] = (options, {**_defaults(options), **fields})
        self.operators.append(o)
        return len(self.operators) - 1

    def tree(self, inputs: list[int], outputs: list[int]) -> dict[str, Any]:
        codes = [
            {
                "deprecated_builtin_code": min(OPCODES[n], 127),
                "builtin_code": OPCODES[n],
                "version": 1,
            }
            for n in self.codes
        ]
        graph = {
            "tensors": self.tensors,
            "inputs": list(inputs),
            "outputs": list(outputs),
            "operators": self.operators,
            "name": b"main",
        }
        return {
            "version": 3,
            "operator_codes": codes,
            "subgraphs": [graph],
            "description": self.description.encode(),
            "buffers": self.buffers,
        }


def zoo(dtype: str = "int8") -> dict[str, Any]:
    """One small model with every operator lowp runs (decoded form):
    QUANTIZE -> CONV_2D -> AVERAGE_POOL_2D, MAX_POOL_2D -> ADD -> PAD, PADV2
    -> CONCATENATION -> RESHAPE -> FULLY_CONNECTED -> DEQUANTIZE and QUANTIZE
    (int to int). int8: per-channel symmetric weights; uint8: per tensor."""
    rng = np.random.default_rng(11)
    signed = dtype == "int8"
    off = 0 if signed else 128  # the zero points below are int8 ones
    wtype = np.int8 if signed else np.uint8
    lo, hi = (-127, 128) if signed else (0, 256)
    m = ModelTree(f"lowp fuzz zoo ({dtype})")
    x = m.tensor([1, 8, 8, 3], "float32", "x")
    q = m.tensor([1, 8, 8, 3], dtype, "q", 0.02, -3 + off)
    w_scale = [0.01, 0.012, 0.008, 0.02] if signed else [0.011]
    conv_w = m.tensor(
        [4, 3, 3, 3],
        dtype,
        "conv_w",
        w_scale,
        0 if signed else 120,
        data=rng.integers(lo, hi, (4, 3, 3, 3)).astype(wtype),
    )
    conv_b = m.tensor(
        [4],
        "int32",
        "conv_b",
        np.float32(0.02) * np.float32(w_scale),
        0,
        data=rng.integers(-500, 500, 4).astype(np.int32),
    )
    conv = m.tensor([1, 8, 8, 4], dtype, "conv", 0.05, -128 + off)
    avg = m.tensor([1, 4, 4, 4], dtype, "avg", 0.05, -128 + off)
    mx = m.tensor([1, 4, 4, 4], dtype, "max", 0.05, -128 + off)
    add = m.tensor([1, 4, 4, 4], dtype, "add", 0.08, -100 + off)
    pads = m.tensor(
        [4, 2], "int32", "pads", data=np.array([[0, 0], [1, 1], [1, 1], [0, 0]], np.int32)
    )
    pad = m.tensor([1, 6, 6, 4], dtype, "pad", 0.08, -100 + off)
    pad_value = m.tensor([1], dtype, "pad_value", 0.08, -100 + off, data=np.array([5 + off], wtype))
    padv2 = m.tensor([1, 6, 6, 4], dtype, "padv2", 0.08, -100 + off)
    cat = m.tensor([1, 6, 6, 8], dtype, "cat", 0.1, -20 + off)
    new_shape = m.tensor([2], "int32", "new_shape", data=np.array([1, 288], np.int32))
    flat = m.tensor([1, 288], dtype, "flat", 0.1, -20 + off)
    fc_w = m.tensor(
        [5, 288],
        dtype,
        "fc_w",
        0.005,
        0 if signed else 128,
        data=rng.integers(lo, hi, (5, 288)).astype(wtype),
    )
    fc_b = m.tensor(
        [5],
        "int32",
        "fc_b",
        np.float32(0.1) * np.float32(0.005),
        0,
        data=rng.integers(-500, 500, 5).astype(np.int32),
    )
    fc = m.tensor([1, 5], dtype, "fc", 0.6, 2 + off)
    y = m.tensor([1, 5], "float32", "y")
    requant = m.tensor([1, 5], dtype, "requant", 0.4, 0 + off)

    pool = {"padding": 1, "stride_w": 2, "stride_h": 2, "filter_width": 2, "filter_height": 2}
    m.op("QUANTIZE", [x], [q], "QuantizeOptions")
    m.op(
        "CONV_2D",
        [q, conv_w, conv_b],
        [conv],
        "Conv2DOptions",
        stride_w=1,
        stride_h=1,
        fused_activation_function=1,
    )
    m.op("AVERAGE_POOL_2D", [conv], [avg], "Pool2DOptions", **pool)
    m.op(
        "MAX_POOL_2D",
        [conv],
        [mx],
        "Pool2DOptions",
        **{**pool, "padding": 0, "filter_width": 3, "filter_height": 3},
    )
    m.op("ADD", [avg, mx], [add], "AddOptions", fused_activation_function=3)
    m.op("PAD", [add, pads], [pad], "PadOptions")
    m.op("PADV2", [add, pads, pad_value], [padv2], "PadV2Options")
    m.op("CONCATENATION", [pad, padv2], [cat], "ConcatenationOptions", axis=3)
    m.op("RESHAPE", [cat, new_shape], [flat], "ReshapeOptions", new_shape=[1, 288])
    m.op("FULLY_CONNECTED", [flat, fc_w, fc_b], [fc], "FullyConnectedOptions")
    m.op("DEQUANTIZE", [fc], [y], "DequantizeOptions")
    m.op("QUANTIZE", [fc], [requant], "QuantizeOptions")
    return m.tree([x], [y, requant])


def _seed_bytes(name: str) -> bytes:
    if name == "unet":
        import lowp.tflite

        return lowp.tflite.bundled_model().read_bytes()
    if name == "conv_uint8":
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        import tflite_models

        return tflite_models.conv_model()
    if name in ("zoo_int8", "zoo_uint8"):
        return encode(zoo(name[4:]))
    raise KeyError(f"no seed model {name!r} (there are {', '.join(SEED_MODELS)})")


#: the seed models, by name
SEED_MODELS = ("unet", "zoo_int8", "zoo_uint8", "conv_uint8")

_SEEDS: dict[str, tuple[dict[str, Any], bytes, list[Site]]] = {}


def seed(name: str) -> tuple[dict[str, Any], bytes, list[Site]]:
    """The seed model decoded, re-encoded with every field, and its byte sites."""
    if name not in _SEEDS:
        tree, _ = decode(_seed_bytes(name))
        data = encode(tree)
        _, sites = decode(data)
        _SEEDS[name] = (tree, data, sites)
    return _SEEDS[name]


# --- mutations ------------------------------------------------------------------------------

_FLOATS = (
    0.0,
    -0.0,
    1e-45,
    1e-40,
    1.1754942e-38,
    1e-30,
    -1.0,
    1.0,
    1e30,
    3.4e38,
    1e38,
    float("inf"),
    float("-inf"),
    float("nan"),
    2.0**-126,
    2.0**100,
)


def _limits(fmt: str) -> tuple[int, int]:
    if fmt == "?":
        return 0, 1
    bits = 8 * struct.calcsize(fmt)
    return (0, 2**bits - 1) if fmt.isupper() else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)


# values a field's meaning makes likely, tried more often than the edges of its type
_FIELD_VALUES: dict[str, tuple[int, ...]] = {
    "type": tuple(range(19)),  # every TensorType
    "padding": (0, 1, 2, -1),
    "fused_activation_function": (0, 1, 2, 3, 4, 5, 6, -1),
    "weights_format": (0, 1, 2),
    "stride_w": (1, 2, 3, 7, 64),
    "stride_h": (1, 2, 3, 7, 64),
    "filter_width": (1, 2, 3, 5, 8, 9, 15, 17, 100),
    "filter_height": (1, 2, 3, 5, 8, 9, 15, 17, 100),
    "dilation_w_factor": (1, 2, 0),
    "dilation_h_factor": (1, 2, 0),
    "axis": (-5, -4, -1, 0, 1, 2, 3, 4),
    "version": (1, 2, 3, 4, 7),
}


def interesting(
    fmt: str,
    old: Any,
    rng: random.Random,
    hint: int | None = None,
    name: str = "",
) -> Any:
    """A value of type ``fmt`` likely to break something: what the field
    ``name`` plausibly holds, edges, off by one, around ``hint`` (a count the
    value indexes into), or random."""
    if name in _FIELD_VALUES and rng.random() < 0.6:
        return rng.choice(_FIELD_VALUES[name])
    if fmt == "f":
        return rng.choice((*_FLOATS, old * rng.choice((0.5, 2.0, 1e10, 1e-10))))
    lo, hi = _limits(fmt)
    choices = [0, 1, lo, hi, old + 1, old - 1, 2, hi // 2, rng.randint(lo, hi)]
    if hint is not None:
        choices += [hint, hint + 1, rng.randrange(max(hint, 1)), -1]
    if lo < 0:
        choices += [-1, -2, lo + 1]
    choices += [2**31 - 1, 2**16, 10000, 2**30]
    v = rng.choice(choices)
    return min(max(v, lo), hi)


class _Tree:
    """Walks a decoded model: every mutable place with its kind."""

    def __init__(self, model: dict[str, Any]):
        self.places: list[tuple[str, dict[str, Any], str, str]] = []  # path, table, field, kind
        self._walk("model", "Model", model)

    def _walk(self, path: str, type_name: str, table: dict[str, Any]) -> None:
        for field in SCHEMA[type_name]:
            if field is None:
                continue
            name, kind = field
            fpath = f"{path}.{name}"
            self.places.append((fpath, table, name, kind))
            if name not in table:
                continue
            v = table[name]
            if kind == "union":
                self._walk(fpath, v[0], v[1])
            elif kind.startswith("[") and kind[1:-1] in SCHEMA:
                for i, item in enumerate(v):
                    self._walk(f"{fpath}[{i}]", kind[1:-1], item)
            elif kind in SCHEMA:
                self._walk(fpath, kind, v)


def _hint(model: dict[str, Any], name: str) -> int | None:
    """How many things an index field counts (tensors, buffers, codes)."""
    sg = (model.get("subgraphs") or [{}])[0]
    if name in ("inputs", "outputs"):
        return len(sg.get("tensors", []))
    if name == "buffer":
        return len(model.get("buffers", []))
    if name == "opcode_index":
        return len(model.get("operator_codes", []))
    if name == "quantized_dimension":
        return 4
    if name == "builtin_options_type":
        return max(OPTION_TAGS.values())
    return None


def resize(model: dict[str, Any], rng: random.Random) -> str:
    """Change one dimension size everywhere it occurs in a shape (and in the
    int32 constants, which hold target shapes): a model that stays coherent
    and reaches the operators' run time with sizes the seed never had."""
    graphs = model.get("subgraphs") or [{}]
    tensors = graphs[0].get("tensors", [])
    sizes = sorted({d for t in tensors for d in t.get("shape", []) if 1 < d < 2**16})
    if not sizes:
        return "resize: no dimension to change"
    old = rng.choice(sizes)
    new = rng.choice((1, 2, 3, old - 1, old + 1, 2 * old, old * 3 + 1, 37))
    buffers = model.get("buffers", [])
    for t in tensors:
        t["shape"] = [new if d == old else d for d in t.get("shape", [])]
        b = t.get("buffer", 0)
        data = buffers[b].get("data", b"") if b < len(buffers) else b""
        if t.get("type") == 2 and len(t["shape"]) == 1 and data and len(data) % 4 == 0:
            values = np.frombuffer(data, "<i4").copy()
            values[values == old] = new
            buffers[b]["data"] = values.tobytes()
    return f"resize: every dimension {old} -> {new}"


def mutate_tree(model: dict[str, Any], rng: random.Random) -> str:
    """Change one decoded value in place; a description of the change."""
    if rng.random() < 0.1:
        return resize(model, rng)
    places = _Tree(model).places
    # weight what lowp reads most: tensors, quantization, operators, options
    weights = [
        4 if any(k in p for k in ("tensors", "operators", "quantization")) else 1
        for p, *_ in places
    ]
    path, table, name, kind = rng.choices(places, weights)[0]
    base = _split(kind)[0]
    present = name in table
    if present and rng.random() < 0.08:  # a field removed
        del table[name]
        return f"{path}: removed"
    if not present:
        if kind == "union":  # another op's options, or a table of the wrong type
            type_name = rng.choice([t for t in SCHEMA if t.endswith("Options")])
            table[name] = (type_name, _defaults(type_name))
            return f"{path}: added an empty {type_name}"
        if kind.startswith("[") and kind[1:-1] in _SCALARS:
            table[name] = [interesting(kind[1:-1], 0, rng, _hint(model, name))]
            return f"{path}: added {table[name]}"
        return f"{path}: absent, left alone"
    v = table[name]
    if base in _SCALARS or kind == "tag":
        fmt = "B" if kind == "tag" else base
        new = interesting(fmt, v, rng, _hint(model, name), name)
        if kind == "tag" and rng.random() < 0.5:  # a plausible options type of another op
            new = OPTION_TAGS[rng.choice([t for t in SCHEMA if t.endswith("Options")])]
        table[name] = new
        return f"{path} = {new!r} (was {v!r})"
    if kind == "union":  # swap in another type's table, keeping the tag
        type_name = rng.choice([t for t in SCHEMA if t.endswith("Options")])
        table[name] = (type_name, _defaults(type_name))
        return f"{path}: table replaced by a {type_name} (was {v[0]})"
    if kind == "str":
        new = rng.choice((b"", b"\xff\xfe", b"x" * 300, bytes(v) + b"\x00"))
        table[name] = new
        return f"{path} = {new[:20]!r}"
    if kind == "[B]":  # raw data
        data = bytearray(v)
        choice = rng.randrange(4)
        if choice == 0 and data:
            cut = rng.randint(1, len(data))
            table[name] = bytes(data[:-cut])
            return f"{path}: {cut} of {len(data)} bytes cut"
        if choice == 1:
            extra = rng.choice((1, 3, 64))
            table[name] = bytes(data) + bytes(extra)
            return f"{path}: {extra} bytes added"
        if choice == 2:
            table[name] = b""
            return f"{path}: emptied ({len(data)} bytes)"
        if data:
            i = rng.randrange(len(data))
            data[i] = rng.randrange(256)
            table[name] = bytes(data)
            return f"{path}[{i}] = {data[i]}"
        return f"{path}: empty, left alone"
    if kind.startswith("["):
        elem = kind[1:-1]
        items = list(v)
        choice = rng.randrange(6) if items else 3
        if choice <= 2 and elem in _SCALARS:  # one element
            i = rng.randrange(len(items))
            items[i] = interesting(elem, items[i], rng, _hint(model, name))
            table[name] = items
            return f"{path}[{i}] = {items[i]!r}"
        if choice <= 2:  # tables: one dropped or duplicated or two swapped
            i, j = rng.randrange(len(items)), rng.randrange(len(items))
            what = rng.randrange(3)
            if what == 0:
                del items[i]
                desc = f"[{i}] dropped"
            elif what == 1:
                items.insert(j, items[i])
                desc = f"[{i}] duplicated at {j}"
            else:
                items[i], items[j] = items[j], items[i]
                desc = f"[{i}] and [{j}] swapped"
            table[name] = items
            return f"{path}{desc}"
        if choice == 3:  # extended
            extra = (
                interesting(elem, 0, rng, _hint(model, name))
                if elem in _SCALARS
                else items[rng.randrange(len(items))]
                if items
                else None
            )
            if extra is None:
                return f"{path}: empty table vector, left alone"
            items.insert(rng.randint(0, len(items)), extra)
            table[name] = items
            return (
                f"{path}: extended to {len(items)} with {extra if elem in _SCALARS else 'a copy'}"
            )
        if choice == 4:  # truncated
            keep = rng.randrange(len(items))
            table[name] = items[:keep]
            return f"{path}: truncated from {len(items)} to {keep}"
        table[name] = []
        return f"{path}: emptied (had {len(items)})"
    # a table
    return f"{path}: table, left alone"


def mutate_bytes(data: bytearray, sites: list[Site], rng: random.Random) -> str:
    """Overwrite one recorded site (or any byte) of the encoded file."""
    if rng.random() < 0.1 or not sites:
        pos = rng.randrange(len(data))
        old = data[pos]
        data[pos] = rng.randrange(256)
        return f"byte {pos} = {data[pos]} (was {old})"
    site = rng.choice(sites)
    if site.pos + struct.calcsize(site.fmt) > len(data):
        return f"{site.path} ({site.kind}) lies past a shortened file, left alone"
    old = struct.unpack_from("<" + site.fmt, data, site.pos)[0]
    if site.kind == "length":
        n = site.count
        new = rng.choice((0, n - 1, n + 1, n + 2, 2 * n + 1, n + 1000, 2**31 - 1, 2**32 - 1))
    elif site.kind == "offset":
        new = rng.choice(
            (0, 1, 4, old + 4, old - 4, old + 1, len(data), 2**32 - 1, rng.randrange(len(data)))
        )
    elif site.kind == "vtable":
        new = rng.choice((0, 1, 2, 4, old + 1, old + 4, old - 4, 0xFFFF))
    elif site.kind == "soffset":
        new = rng.choice((0, 4, old + 2, old - 2, -old, 2**31 - 1, -(2**31)))
    else:
        new = interesting(site.fmt, old, rng)
    if site.fmt == "f":
        with np.errstate(over="ignore"):  # beyond float32: inf
            new = float(np.float32(new))
    else:
        lo, hi = _limits(site.fmt)
        new = min(max(int(new), lo), hi)
    struct.pack_into("<" + site.fmt, data, site.pos, new)
    return f"{site.path} ({site.kind} at byte {site.pos}) = {new!r} (was {old!r})"


def make_case(model_name: str, case_seed: int) -> tuple[bytes, list[str]]:
    """The mutated file of one case and what was done to it."""
    import copy

    rng = random.Random(f"{model_name}:{case_seed}")
    tree, data, sites = seed(model_name)
    n = rng.choices((1, 2, 3), (6, 3, 1))[0]
    kinds = sorted(rng.random() < 0.3 for _ in range(n))  # tree mutations first, then bytes
    done: list[str] = []
    if not all(kinds):
        mutated = copy.deepcopy(tree)
        for is_byte in kinds:
            if not is_byte:
                done.append(mutate_tree(mutated, rng))
        data = encode(mutated)
        sites = decode(data)[1]
    out = bytearray(data)
    for is_byte in kinds:
        if is_byte:
            done.append(mutate_bytes(out, sites, rng))
    return bytes(out), done


# --- running cases ------------------------------------------------------------------------

#: the memory limit cases load with: far above any seed's needs, far below the machine's
MEMORY_LIMIT = 2**27


def check(data: bytes) -> str:
    """Load and run one file; 'refused', 'refused at run' or 'ran'. Anything
    else lowp raises propagates (and fails the case)."""
    import lowp.tflite as lt

    try:
        model = lt.load(data, memory_limit=MEMORY_LIMIT)
    except lt.ModelError:
        return "refused"
    try:
        model(*model.random_inputs(0))
    except lt.ModelError:
        return "refused at run"
    return "ran"


def _limit_memory() -> None:
    """A corrupted file must not be able to take the machine's memory: past
    this an allocation is a MemoryError (a failure) rather than the OOM killer."""
    try:
        import resource
    except ImportError:  # not on POSIX
        return
    limit = 8 * 2**30
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def worker(model_name: str, first_seed: int, seconds: float, case_timeout: float) -> int:
    """Run cases from ``first_seed`` on until ``seconds`` have passed; one JSON
    line per case on stdout ('start' before it, so a crash or hang names it)."""
    _limit_memory()
    warnings.simplefilter("error")
    faulthandler.enable()
    seed(model_name)  # decode outside the clock of the first case
    deadline = time.monotonic() + seconds
    case_seed = first_seed
    while time.monotonic() < deadline:
        print(json.dumps({"start": case_seed}), flush=True)
        faulthandler.dump_traceback_later(case_timeout, exit=True)
        outcome, error = "harness error", None
        try:
            data, _ = make_case(model_name, case_seed)
            outcome = "error"
            outcome, error = check(data), None
        except Exception as err:  # every other exception fails the case
            error = "".join(traceback.format_exception(err))
        faulthandler.cancel_dump_traceback_later()
        print(json.dumps({"end": case_seed, "outcome": outcome, "error": error}), flush=True)
        case_seed += 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=SEED_MODELS, required=True)
    parser.add_argument("--seed", type=int, default=0, help="the case (or the first one)")
    parser.add_argument("--worker", action="store_true", help="run cases for --seconds")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--case-timeout", type=float, default=20.0)
    parser.add_argument("--write", type=Path, help="write the mutated file here")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.model, args.seed, args.seconds, args.case_timeout)
    data, mutations = make_case(args.model, args.seed)
    print(f"case {args.model}:{args.seed}, {len(data)} bytes")
    for m in mutations:
        print(f"  {m}")
    if args.write:
        args.write.write_bytes(data)
    warnings.simplefilter("error")
    print(check(data))
    return 0


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    raise SystemExit(main())
