"""Compare lowp with TensorFlow Lite's reference interpreter, operator by
operator. Needs TensorFlow (imported here only, on demand)."""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._model import Model

__all__ = ["OpCheck", "compare", "reference_interpreter", "run_reference"]


@dataclass(frozen=True)
class OpCheck:
    index: int
    op: str
    tensor: int
    match: bool
    mismatches: int  # elements that differ
    max_diff: float  # largest absolute difference (0 when they match)


def reference_interpreter(
    model_bytes: bytes, *, optimized: bool = False, threads: int = 1, keep_tensors: bool = True
) -> Any:
    """A ``tf.lite.Interpreter`` on TFLite's reference kernels (BUILTIN_REF),
    keeping every intermediate tensor unless ``keep_tensors`` is False;
    ``optimized=True`` gives the default interpreter (optimized kernels and
    the XNNPACK delegate) instead."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    kwargs: dict[str, Any] = {"model_content": model_bytes, "num_threads": threads}
    if not optimized:
        kwargs["experimental_op_resolver_type"] = tf.lite.experimental.OpResolverType.BUILTIN_REF
        kwargs["experimental_preserve_all_tensors"] = keep_tensors
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the interpreter's deprecation notice
        interp = tf.lite.Interpreter(**kwargs)
    interp.allocate_tensors()
    return interp


def run_reference(interp: Any, inputs: list[np.ndarray]) -> None:
    for detail, x in zip(interp.get_input_details(), inputs):
        interp.set_tensor(detail["index"], x)
    interp.invoke()


def compare(model: Model, model_bytes: bytes, inputs: list[np.ndarray]) -> list[OpCheck]:
    """Run ``model`` and the reference interpreter on ``inputs``; one
    :class:`OpCheck` per operator output, in the graph's order."""
    interp = reference_interpreter(model_bytes)
    run_reference(interp, inputs)
    ours = model.trace(*inputs)
    checks = []
    for op in model.ops:
        for t in op.outputs:
            ref = interp.get_tensor(t)
            got = ours[t]
            same = ref.shape == got.shape and ref.dtype == got.dtype
            if same:
                diff = got.astype(np.float64) - ref.astype(np.float64)
                bad = int(np.count_nonzero(diff))
                worst = float(np.max(np.abs(diff))) if bad else 0.0
            else:
                bad, worst = int(ref.size), float("inf")
            checks.append(OpCheck(op.spec.index, op.spec.name, t, bad == 0, bad, worst))
    return checks
