"""Channel-last convolutions and transposed convolutions on the GEMM
(DESIGN.md section 2 Convolution / Transposed convolution, section 3
``lowp.conv2d``, ``lowp.conv_transpose2d``, ``lowp.Conv2d``,
``lowp.ConvTranspose2d``).

Input NHWC, weights OHWI ``[Cout, KH, KW, Cin]``, output NHWC; int32
accumulators, or uint8 through a fused :class:`~lowp.Requant`. int8 inputs,
weights and zero points map exactly onto uint8 (``q + 128``).

Long calls can be interrupted (Ctrl-C: KeyboardInterrupt within about 50 ms);
an ``out=`` array of an interrupted call is left filled with zeros. An output
larger than the machine's memory (a padding or stride of millions) is refused
before allocating, naming the argument.
"""

from __future__ import annotations

import numbers

import numpy as np

from . import _checks, _core
from .fixedpoint import Requant
from .gemm import (
    MAX_K,
    _bias,
    _layer_input,
    _layer_x_dtype,
    _operand_u8,
    _requant,
    _zero_points,
)

__all__ = ["Conv2d", "ConvTranspose2d", "conv2d", "conv_transpose2d"]


#: Strides, paddings and output sizes travel to the core as C ints.
_MAX_EXTENT = 2**31 - 1


def _pair(value, name: str) -> tuple[int, int]:
    """``stride``: a positive int or a pair of them."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2:
        raise ValueError(f"{name} must be an int or a pair (sh, sw), got {value!r}")
    out = []
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
        if not 1 <= int(v) <= _MAX_EXTENT:
            raise ValueError(f"{name} must be in [1, {_MAX_EXTENT}], got {value!r}")
        out.append(int(v))
    return out[0], out[1]


def _padding_spec(value, name: str):
    """``"valid"``, ``"same"``, an int >= 0 or ``(top, bottom, left, right)``."""
    if isinstance(value, str):
        if value not in ("valid", "same"):
            raise ValueError(f"{name} must be 'valid', 'same', an int or 4 ints, got {value!r}")
        return value
    items = value if isinstance(value, (tuple, list)) else (value,) * 4
    if len(items) != 4:
        raise ValueError(
            f"{name} must be 'valid', 'same', an int or (top, bottom, left, right), got {value!r}"
        )
    for v in items:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            raise TypeError(f"{name} must hold ints, got {value!r}")
        if not 0 <= int(v) <= _MAX_EXTENT:
            raise ValueError(f"{name} must be in [0, {_MAX_EXTENT}], got {value!r}")
    return tuple(int(v) for v in items)


def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


class _PackedConv:
    """OHWI weights packed once with zero points, bias and output stage."""

    def __init__(
        self,
        transposed: bool,
        w,
        w_zero_point,
        x_zero_point,
        x_signed: bool,
        stride,
        padding,
        bias,
        requant,
    ):
        w_u8, w_signed = _operand_u8(w, "w")
        if w_u8.ndim != 4:
            raise ValueError(f"w must be 4-D [Cout, KH, KW, Cin], got shape {w_u8.shape}")
        if 0 in w_u8.shape:
            raise ValueError(f"w must not be empty, got shape {w_u8.shape}")
        self.transposed = transposed
        self.out_c, self.kh, self.kw, self.in_c = (int(d) for d in w_u8.shape)
        self.stride = _pair(stride, "stride")
        self.padding = _padding_spec(padding, "padding")
        sh, sw = self.stride
        if transposed:  # products summed into one output pixel
            terms = self.in_c * -(-self.kh // sh) * -(-self.kw // sw)
        else:
            terms = self.in_c * self.kh * self.kw
        if terms > MAX_K:
            raise ValueError(
                f"w: {terms} products would be summed into one output (Cin x overlapping taps);"
                f" at most {MAX_K} give an exact int32 result"
            )
        self.x_signed = x_signed
        w_zp = _zero_points(w_zero_point, "w_zero_point", w_signed, self.out_c)
        self.x_zp = int(_zero_points(x_zero_point, "x_zero_point", x_signed, None)[0])
        self.requant = _requant(requant, self.out_c, "channels")
        core = _core.ConvTranspose2d if transposed else _core.Conv2d
        self.core = core(
            np.ascontiguousarray(w_u8),
            sh,
            sw,
            w_zp,
            self.x_zp,
            _bias(bias, self.out_c, "output channel"),
        )
        rq = self.requant  # the output stage's tables, prepared once
        self.stage = (
            None
            if rq is None
            else self.core.prepare(rq.multiplier, rq.shift, rq.zero_point, rq.qmin, rq.qmax)
        )
        self.out_dtype = np.dtype(np.int32 if rq is None else np.uint8)
        self._geometry: dict[tuple[int, int], tuple[int, int, int, int]] = {}

    def checked_geometry(self, n: int, h: int, w: int, x_name: str) -> tuple[int, int, int, int]:
        """geometry() of an n x h x w input, refusing an output too large for
        memory (naming the argument that makes it so); cached per input size."""
        geom = self._geometry.get((h, w))
        if geom is None:
            geom = self.geometry(h, w)
            if len(self._geometry) < 64:
                self._geometry[(h, w)] = geom
        out_h, out_w = geom[2], geom[3]
        nbytes = n * out_h * out_w * self.out_c * self.out_dtype.itemsize
        if nbytes > _checks.MAX_ALLOC_BYTES:
            raise ValueError(
                f"{self._culprit(n, h, w, x_name)} an output of shape"
                f" {(n, out_h, out_w, self.out_c)}: {_checks.memory_size(nbytes)}, more than"
                f" this machine's memory ({_checks.memory_size(_checks.MAX_ALLOC_BYTES)})"
            )
        if max(out_h, out_w) > _MAX_EXTENT:
            raise ValueError(f"{x_name}: the output would be {out_h}x{out_w}, too large")
        return geom

    def _culprit(self, n: int, h: int, w: int, x_name: str) -> str:
        """The argument an oversized output comes from: the padding or the
        stride when the output would fit without it, else the input."""
        itemsize = self.out_c * self.out_dtype.itemsize
        if self.transposed:
            sh, sw = self.stride
            if max(sh, sw) > 1 and n * (h + self.kh) * (w + self.kw) * itemsize <= (
                _checks.MAX_ALLOC_BYTES
            ):
                return f"stride {self.stride} on a {h}x{w} input gives"
        elif isinstance(self.padding, tuple):
            if n * (h + 1) * (w + 1) * itemsize <= _checks.MAX_ALLOC_BYTES:
                return f"padding {self.padding} on a {h}x{w} input gives"
        return f"{x_name} of shape {(n, h, w, self.in_c)} gives"

    def geometry(self, h: int, w: int) -> tuple[int, int, int, int]:
        """(pad_top, pad_left, out_h, out_w) for an h x w input."""
        sh, sw = self.stride
        if self.transposed:  # padding is the crop of the full output
            full_h, full_w = (h - 1) * sh + self.kh, (w - 1) * sw + self.kw
            if self.padding == "same":
                # Output in * stride. With a kernel smaller than the stride
                # that is past the full output: those pixels get only the bias.
                top, left = max(self.kh - sh, 0) // 2, max(self.kw - sw, 0) // 2
                return top, left, h * sh, w * sw
            crop = (0, 0, 0, 0) if self.padding == "valid" else self.padding
            top, bottom, left, right = crop
            out_h, out_w = full_h - top - bottom, full_w - left - right
            if out_h < 1 or out_w < 1:
                raise ValueError(
                    f"padding {self.padding!r} crops the whole {full_h}x{full_w} output of a"
                    f" {h}x{w} input"
                )
            return top, left, out_h, out_w
        if self.padding == "valid":
            pads = (0, 0, 0, 0)
        elif self.padding == "same":
            pads = (*_same_pad(h, self.kh, sh), *_same_pad(w, self.kw, sw))
        else:
            pads = self.padding
        top, bottom, left, right = pads
        span_h, span_w = h + top + bottom - self.kh, w + left + right - self.kw
        if span_h < 0 or span_w < 0:
            raise ValueError(
                f"x: a {h}x{w} input with padding {self.padding!r} is smaller than the"
                f" {self.kh}x{self.kw} kernel"
            )
        return top, left, span_h // sh + 1, span_w // sw + 1

    def __call__(self, x_u8: np.ndarray, out, x_name: str = "x") -> np.ndarray:
        if x_u8.ndim != 4:
            raise ValueError(f"{x_name} must be 4-D NHWC [N, H, W, Cin], got shape {x_u8.shape}")
        n, h, w, c = x_u8.shape  # Python ints
        if c != self.in_c:
            raise ValueError(f"{x_name} has {c} channels but w expects Cin={self.in_c}")
        if h < 1 or w < 1:
            raise ValueError(f"{x_name} must have H, W >= 1, got shape {x_u8.shape}")
        top, left, out_h, out_w = self.checked_geometry(n, h, w, x_name)
        x_c = _checks.contiguous(x_u8, x_name)
        shape = (n, out_h, out_w, self.out_c)
        stage = self.stage

        def compute(dest: np.ndarray) -> None:
            if n == 0:  # an empty batch, as gemm allows M = 0
                return
            if stage is None:
                self.core.run(x_c, top, left, out_h, out_w, dest)
            else:
                self.core.run_requant(x_c, top, left, out_h, out_w, stage, dest)

        if out is None:  # the common case, kept short
            dest = np.empty(shape, dtype=self.out_dtype)
            compute(dest)
            return dest
        return _checks.into_out(compute, (x_u8,), shape, self.out_dtype, out)


def conv2d(
    x,
    w,
    x_zero_point,
    w_zero_point,
    *,
    stride=1,
    padding="valid",
    bias=None,
    requant=None,
    out=None,
) -> np.ndarray:
    """2-D convolution, NHWC input ``x`` and OHWI weights ``w``.

    ``out[n, y, x, o] = sum (x[n, y*sh - top + ky, x*sw - left + kx, c] -
    x_zero_point) * (w[o, ky, kx, c] - w_zero_point[o])`` over the taps, a tap
    in the padding counting as an input equal to ``x_zero_point``. ``stride``
    is an int or ``(sh, sw)``; ``padding`` is ``"valid"``, ``"same"``
    (TFLite's: the odd extra row/column goes bottom/right), an int or
    ``(top, bottom, left, right)``. Returns int32 (plus ``bias``), or uint8
    with ``requant``. The weights are packed on the fly: use :class:`Conv2d`
    to pack once. ``out``, if given, is an array of the result's shape and
    dtype; a call interrupted by Ctrl-C leaves it filled with zeros.
    """
    x_u8, x_signed = _operand_u8(x, "x")
    op = _PackedConv(False, w, w_zero_point, x_zero_point, x_signed, stride, padding, bias, requant)
    return op(x_u8, out)


def conv_transpose2d(
    x,
    w,
    x_zero_point,
    w_zero_point,
    *,
    stride=1,
    padding="valid",
    bias=None,
    requant=None,
    out=None,
) -> np.ndarray:
    """Transposed 2-D convolution (TFLite TRANSPOSE_CONV), NHWC input ``x``,
    OHWI weights ``w`` ``[Cout, KH, KW, Cin]``.

    Every input pixel ``(y, x)`` adds ``(x - x_zero_point) . (w[o, ky, kx] -
    w_zero_point[o])`` to the full output at ``(y*sh + ky, x*sw + kx)``;
    overlaps add in int32. ``padding`` crops the full output: ``"valid"``
    (nothing), ``"same"`` (output ``in * stride``: ``max(k - stride, 0)``,
    the smaller half at the top/left), an int or ``(top, bottom, left,
    right)``. Returns int32 (plus ``bias``), or uint8 with ``requant``.
    ``out`` as for :func:`conv2d`.
    """
    x_u8, x_signed = _operand_u8(x, "x")
    op = _PackedConv(True, w, w_zero_point, x_zero_point, x_signed, stride, padding, bias, requant)
    return op(x_u8, out)


class _ConvLayer:
    _transposed = False

    def __init__(
        self,
        w,
        w_zero_point,
        *,
        x_zero_point,
        stride=1,
        padding="valid",
        bias=None,
        requant=None,
        x_dtype=None,
    ):
        self.x_dtype = _layer_x_dtype(w, x_dtype)
        self._op = _PackedConv(
            self._transposed,
            w,
            w_zero_point,
            x_zero_point,
            self.x_dtype == np.int8,
            stride,
            padding,
            bias,
            requant,
        )

    @property
    def in_channels(self) -> int:
        return self._op.in_c

    @property
    def out_channels(self) -> int:
        return self._op.out_c

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self._op.kh, self._op.kw

    @property
    def stride(self) -> tuple[int, int]:
        return self._op.stride

    @property
    def padding(self):
        return self._op.padding

    @property
    def requant(self) -> Requant | None:
        return self._op.requant

    def output_shape(self, input_shape) -> tuple[int, int, int, int]:
        """The NHWC output shape for an NHWC input shape."""
        try:
            dims = list(input_shape)
        except TypeError:
            raise TypeError(
                f"input_shape must be a sequence of 4 integers (NHWC), got {input_shape!r}"
            ) from None
        if len(dims) != 4:
            raise ValueError(f"input_shape must be NHWC (4 values), got {input_shape!r}")
        if any(isinstance(d, bool) or not isinstance(d, numbers.Integral) for d in dims):
            raise TypeError(f"input_shape must hold integers, got {input_shape!r}")
        n, h, w, c = (int(d) for d in dims)
        if n < 0 or h < 1 or w < 1 or c != self._op.in_c:
            raise ValueError(
                f"input_shape must be [N, H, W, {self._op.in_c}] with H, W >= 1,"
                f" got {input_shape!r}"
            )
        _, _, out_h, out_w = self._op.geometry(h, w)
        return n, out_h, out_w, self._op.out_c

    def __call__(self, x, out=None) -> np.ndarray:
        return self._op(_layer_input(x, self.x_dtype, "layer"), out)

    def __repr__(self) -> str:
        rq = f", requant={self.requant!r}" if self.requant is not None else ""
        return (
            f"{type(self).__name__}({self.in_channels} -> {self.out_channels},"
            f" kernel={self.kernel_size}, stride={self.stride}, padding={self.padding!r}{rq})"
        )


class Conv2d(_ConvLayer):
    """A 2-D convolution with its OHWI weights packed once (see :func:`conv2d`).

    ``x_zero_point`` is in the range of ``x_dtype`` (default: the weights'
    dtype). Calls take NHWC ``x`` and return int32, or uint8 with ``requant``.
    """

    _transposed = False


class ConvTranspose2d(_ConvLayer):
    """A transposed 2-D convolution with its OHWI weights packed once (see
    :func:`conv_transpose2d`). 2x2 stride 2 is one GEMM and a scatter."""

    _transposed = True
