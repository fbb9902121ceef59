"""Type stubs for the compiled module lowp._core (python/bindings/: module.cc,
graph.cc, calib.cc).

The functions trust their arguments' dtypes and contiguity; call them through
the lowp package, which validates.
"""

from typing import Any

import numpy as np
import numpy.typing as npt

def cpu_info() -> dict[str, Any]: ...
def available_paths() -> list[str]: ...
def get_path() -> str: ...
def set_path(name: str) -> None: ...
def get_num_threads() -> int: ...
def set_num_threads(n: int) -> None: ...
def default_num_threads() -> int: ...
def pool_jobs() -> int: ...

MAX_THREADS: int

def quantize_multiplier(
    real: npt.NDArray[np.float64],
) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int32]]: ...
def srdhm(
    a: npt.NDArray[np.int32], b: npt.NDArray[np.int32], out: npt.NDArray[np.int32]
) -> None: ...
def rdivpot(
    x: npt.NDArray[np.int32], exponent: npt.NDArray[np.int32], out: npt.NDArray[np.int32]
) -> None: ...
def multiply_by_quantized_multiplier(
    x: npt.NDArray[np.int32],
    multiplier: npt.NDArray[np.int32],
    shift: npt.NDArray[np.int32],
    out: npt.NDArray[np.int32],
) -> None: ...
def requantize(
    acc: npt.NDArray[np.int32],
    multiplier: npt.NDArray[np.int32],
    shift: npt.NDArray[np.int32],
    zero_point: int,
    qmin: int,
    qmax: int,
    out: npt.NDArray[np.uint8],
) -> None: ...
def quantize_f32(
    x: npt.NDArray[np.float32],
    scale: float,
    zero_point: int,
    qmin: int,
    qmax: int,
    out: npt.NDArray[np.uint8] | npt.NDArray[np.int8],
) -> bool: ...
def histogram_f32(
    x: npt.NDArray[np.float32], inv_width: float, first_bin: int, counts: npt.NDArray[np.int64]
) -> int: ...

class OutputStage:
    """A fused output stage prepared once by an operator's prepare(); only
    that operator's run_requant takes it."""

class Gemm:
    """lowp::Gemm: B [K, N] uint8 packed at construction with its zero points
    (1 or N values, uint8 domain), the input zero point and an optional bias."""

    def __init__(
        self,
        b: npt.NDArray[np.uint8],
        b_zero_point: npt.NDArray[np.int32],
        a_zero_point: int,
        bias: npt.NDArray[np.int32] | None,
    ) -> None: ...
    def run(self, a: npt.NDArray[np.uint8], out: npt.NDArray[np.int32]) -> None: ...
    def prepare(
        self,
        multiplier: npt.NDArray[np.int32],
        shift: npt.NDArray[np.int32],
        zero_point: int,
        qmin: int,
        qmax: int,
    ) -> OutputStage: ...
    def run_requant(
        self, a: npt.NDArray[np.uint8], stage: OutputStage, out: npt.NDArray[np.uint8]
    ) -> None: ...

class _Conv:
    """OHWI weights [Cout, KH, KW, Cin] uint8 packed at construction with their
    zero points (1 or Cout values, uint8 domain), the input zero point and an
    optional bias. Runs take NHWC x, the resolved top/left padding (the crop,
    for a transposed conv) and the output size."""

    def __init__(
        self,
        w: npt.NDArray[np.uint8],
        stride_h: int,
        stride_w: int,
        w_zero_point: npt.NDArray[np.int32],
        x_zero_point: int,
        bias: npt.NDArray[np.int32] | None,
    ) -> None: ...
    def run(
        self,
        x: npt.NDArray[np.uint8],
        pad_top: int,
        pad_left: int,
        out_h: int,
        out_w: int,
        out: npt.NDArray[np.int32],
    ) -> None: ...
    def prepare(
        self,
        multiplier: npt.NDArray[np.int32],
        shift: npt.NDArray[np.int32],
        zero_point: int,
        qmin: int,
        qmax: int,
    ) -> OutputStage: ...
    def run_requant(
        self,
        x: npt.NDArray[np.uint8],
        pad_top: int,
        pad_left: int,
        out_h: int,
        out_w: int,
        stage: OutputStage,
        out: npt.NDArray[np.uint8],
    ) -> None: ...

class Conv2d(_Conv):
    """lowp::Conv2d."""

class ConvTranspose2d(_Conv):
    """lowp::ConvTranspose2d."""

# --- the integer graph's native operators and plan (python/bindings/graph.cc) ---

class _GraphConv:
    def __init__(
        self,
        w: npt.NDArray[np.uint8],
        stride_h: int,
        stride_w: int,
        w_zero_point: npt.NDArray[np.int32],
        x_zero_point: int,
        bias: npt.NDArray[np.int32] | None,
        multiplier: npt.NDArray[np.int32],
        shift: npt.NDArray[np.int32],
        zero_point: int,
        qmin: int,
        qmax: int,
    ) -> None: ...

class GraphConv2d(_GraphConv):
    """lowp::Conv2d with its prepared output stage, for plans."""

class GraphConvTranspose2d(_GraphConv):
    """lowp::ConvTranspose2d with its prepared output stage, for plans."""

class GraphGemm:
    def __init__(
        self,
        b: npt.NDArray[np.uint8],
        b_zero_point: npt.NDArray[np.int32],
        a_zero_point: int,
        bias: npt.NDArray[np.int32] | None,
    ) -> None: ...

class Plan:
    """lowp::Plan: steps on byte offsets of an activation arena."""

    arena_bytes: int
    @property
    def steps(self) -> int: ...
    def add_input(self, offset: int, bytes: int, xor_mask: int) -> None: ...
    def add_output(self, offset: int, bytes: int, xor_mask: int) -> None: ...
    def add_constant(self, offset: int, bytes: npt.NDArray[np.uint8]) -> None: ...
    def add_conv2d(
        self,
        op: GraphConv2d,
        input: int,
        batch: int,
        in_h: int,
        in_w: int,
        pad_top: int,
        pad_left: int,
        out_h: int,
        out_w: int,
        output: int,
        out_stride: int,
    ) -> None: ...
    def add_conv_transpose2d(
        self,
        op: GraphConvTranspose2d,
        input: int,
        batch: int,
        in_h: int,
        in_w: int,
        crop_top: int,
        crop_left: int,
        out_h: int,
        out_w: int,
        output: int,
        out_stride: int,
    ) -> None: ...
    def add_fully_connected(
        self,
        op: GraphGemm,
        input: int,
        rows: int,
        acc: int,
        real: npt.NDArray[np.float64],
        zero_point: int,
        qmin: int,
        qmax: int,
        output: int,
    ) -> None: ...
    def add_pool(
        self,
        out_stride: int,
        average: bool,
        offset: int,
        batch: int,
        in_h: int,
        in_w: int,
        channels: int,
        kh: int,
        kw: int,
        stride_h: int,
        stride_w: int,
        pad_top: int,
        pad_left: int,
        out_h: int,
        out_w: int,
        input: int,
        output: int,
        qmin: int,
        qmax: int,
    ) -> None: ...
    def add_copy(
        self,
        src: int,
        src_strides: list[int],
        dst: int,
        dst_strides: list[int],
        shape: list[int],
        elem_bytes: int,
        lut: npt.NDArray[np.uint8] | None,
    ) -> None: ...
    def add_fill(self, offset: int, bytes: int, value: int) -> None: ...
    def add_binary_lut(
        self,
        a: int,
        a_strides: list[int],
        b: int,
        b_strides: list[int],
        dst: int,
        dst_strides: list[int],
        shape: list[int],
        lut: npt.NDArray[np.uint8],
    ) -> None: ...
    def add_quantize_f32(
        self,
        input: int,
        n: int,
        scale: float,
        zero_point: int,
        qmin: int,
        qmax: int,
        offset: int,
        output: int,
    ) -> None: ...
    def add_dequantize(
        self, input: int, n: int, lut: npt.NDArray[np.float32], output: int
    ) -> None: ...
    def run(
        self,
        inputs: list[npt.NDArray[Any]],
        outputs: list[npt.NDArray[Any]],
        seconds: npt.NDArray[np.float64] | None,
        arena: npt.NDArray[np.uint8] | None,
    ) -> None: ...
