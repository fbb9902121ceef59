"""Example float networks for lowp's post-training quantizer, and their data.

Two small networks trained on real images (patches of scikit-image's bundled
sample photographs) ship with the package, in float, as ONNX files and PyTorch
state dicts:

``denoise_unet``  DenoiseUNet: removes Gaussian noise (sigma 0.1) from
                  grayscale patches; inputs and targets from denoise_patches
``small_resnet``  SmallResNet: tells which of ten photographs a 32x32 patch
                  came from; inputs and labels from photo_patches

``python -m lowp.examples.train`` retrains both and rewrites the files.
Importing this module needs only NumPy: the data sets import scikit-image,
load_torch imports torch, when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._data import (
    BLOCK,
    DENOISE_IMAGES,
    PHOTO_CLASSES,
    SPLITS,
    denoise_patches,
    photo_patches,
)

if TYPE_CHECKING:
    from torch import nn

__all__ = [
    "BLOCK",
    "DENOISE_IMAGES",
    "NAMES",
    "PHOTO_CLASSES",
    "SPLITS",
    "dataset",
    "denoise_patches",
    "load_torch",
    "onnx_path",
    "photo_patches",
    "psnr",
    "state_dict_path",
]

#: The shipped example networks.
NAMES = ("denoise_unet", "small_resnet")

_DATA = Path(__file__).resolve().parent.parent / "data"


def _check_name(name: str) -> str:
    if name not in NAMES:
        raise ValueError(f"unknown example {name!r} (known: {', '.join(NAMES)})")
    return name


def onnx_path(name: str) -> Path:
    """The shipped float ONNX file of an example network: opset 17, one
    float32 NCHW input "input" with a dynamic batch axis ([batch, 1, 64, 64]
    for denoise_unet, [batch, 1, 32, 32] for small_resnet), one output
    "output"."""
    return _DATA / f"{_check_name(name)}.onnx"


def state_dict_path(name: str) -> Path:
    """The shipped PyTorch state dict (.pt) of an example network."""
    return _DATA / f"{_check_name(name)}.pt"


def load_torch(name: str) -> nn.Module:
    """The example network as a float torch.nn.Module, its trained weights
    loaded, in eval mode (needs torch)."""
    import torch

    from .models import build

    model = build(_check_name(name))
    state = torch.load(state_dict_path(name), map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval()


def dataset(
    name: str, split: str = "test", n: int = 256, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Inputs and targets for an example network: (noisy, clean) patches
    64x64 for denoise_unet, (patches 32x32, labels) for small_resnet.
    Calibrate on split "calibration", score on "test"."""
    if _check_name(name) == "denoise_unet":
        return denoise_patches(n, size=64, sigma=0.1, seed=seed, split=split)
    return photo_patches(n, size=32, seed=seed, split=split)


def psnr(estimate: np.ndarray, reference: np.ndarray, peak: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB of estimate against reference, over
    the whole array (values compared as they are, not clipped)."""
    diff = np.asarray(estimate, np.float64) - np.asarray(reference, np.float64)
    mse = float(np.mean(diff * diff))
    return float("inf") if mse == 0.0 else 10.0 * float(np.log10(peak * peak / mse))
