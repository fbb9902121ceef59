"""Patches of scikit-image's bundled sample photographs: the data sets the
example networks are trained, calibrated and tested on.

Only the images that scikit-image ships inside its wheel are used (no
download). Every draw is a pure function of its arguments: the random
generator is seeded with (task, split, seed), so the three splits of one seed
are independent streams and the same call always returns the same arrays.

The test split is disjoint from the others so that a test score is honest.
The denoising task calibrates on other patches of the training photographs
and tests on photographs neither saw. The
photograph task must see every class in every split, so it cuts each
photograph into square blocks and gives each block to one split: a patch lies
inside one block, and no test pixel was ever in a training patch.
"""

from __future__ import annotations

from functools import cache

import numpy as np

SPLITS = ("train", "calibration", "test")

_DENOISE_TRAIN = (
    "astronaut",
    "coffee",
    "rocket",
    "immunohistochemistry",
    "page",
    "text",
    "grass",
    "gravel",
)

#: Which bundled photographs each denoising split draws from. Calibration
#: draws other patches of the training photographs: a quantizer is
#: calibrated on the data the network was trained for (as TFLite's
#: representative dataset is), and a set of two photographs of their own
#: had a narrower range of intensities than either the training or the test
#: photographs, which made every clipping method look better on it than it
#: is. Test photographs are never seen by training or calibration.
DENOISE_IMAGES: dict[str, tuple[str, ...]] = {
    "train": _DENOISE_TRAIN,
    "calibration": _DENOISE_TRAIN,
    "test": ("camera", "coins", "brick"),
}

#: The photograph task's classes, in label order: which photograph a patch
#: came from (each histogram equalized, so that brightness alone says little).
PHOTO_CLASSES: tuple[str, ...] = (
    "astronaut",
    "brick",
    "camera",
    "chelsea",
    "coffee",
    "coins",
    "grass",
    "gravel",
    "immunohistochemistry",
    "rocket",
)

#: The side of the square blocks that each photograph is cut into for the
#: photograph task; every block belongs to one split.
BLOCK = 64

#: The share of each photograph's blocks that the calibration and the test
#: splits get (the rest is for training).
BLOCK_SHARES = {"calibration": 0.1, "test": 0.2}

_TASK_DENOISE = 1
_TASK_PHOTO = 2
_LAYOUT = 3


def _split_index(split: str) -> int:
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    return SPLITS.index(split)


def _check_count(n: int, size: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, not {n!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"size must be a positive integer, not {size!r}")


@cache
def photo(name: str) -> np.ndarray:
    """A bundled scikit-image photograph as grayscale float32 in [0, 1], [H, W]
    (read-only; ITU-R 601 luma for colour images, as skimage.color.rgb2gray)."""
    try:
        import skimage.data
        from skimage.color import rgb2gray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "the example data sets need scikit-image: pip install 'lowp[examples]'"
        ) from e
    image = getattr(skimage.data, name)()
    if image.ndim == 3:
        gray = rgb2gray(image[..., :3])
    else:
        gray = image.astype(np.float64) / 255.0
    out = np.ascontiguousarray(gray, dtype=np.float32)
    out.setflags(write=False)
    return out


@cache
def equalized(name: str) -> np.ndarray:
    """A photograph, histogram equalized, float32 [H, W] in [0, 1] (read-only)."""
    from skimage.exposure import equalize_hist

    out = np.ascontiguousarray(equalize_hist(photo(name), nbins=256), dtype=np.float32)
    out.setflags(write=False)
    return out


@cache
def blocks(name: str) -> dict[str, np.ndarray]:
    """Which BLOCK x BLOCK blocks of a photograph each split owns: for each
    split, int64 [k, 2] of (row, column) block indices. A fixed layout (not
    drawn from the seed), so that the splits of any two calls are disjoint."""
    rows, cols = (side // BLOCK for side in photo(name).shape)
    order = np.random.default_rng((_LAYOUT, PHOTO_CLASSES.index(name))).permutation(rows * cols)
    n_cal = max(1, round(BLOCK_SHARES["calibration"] * order.size))
    n_test = max(1, round(BLOCK_SHARES["test"] * order.size))
    parts = {
        "calibration": order[:n_cal],
        "test": order[n_cal : n_cal + n_test],
        "train": order[n_cal + n_test :],
    }
    return {
        split: np.stack(np.divmod(np.sort(part), cols), axis=1) for split, part in parts.items()
    }


def _gather(image: np.ndarray, ys: np.ndarray, xs: np.ndarray, size: int) -> np.ndarray:
    """The size x size crops of image whose top-left corners are (ys, xs)."""
    out = np.empty((len(ys), size, size), np.float32)
    for i, (y, x) in enumerate(zip(ys, xs)):
        out[i] = image[y : y + size, x : x + size]
    return out


def denoise_patches(
    n: int, size: int = 64, sigma: float = 0.1, seed: int = 0, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """n grayscale patches of the split's photographs with additive Gaussian
    noise: (noisy, clean), both float32 [n, 1, size, size].

    clean lies in [0, 1]; noisy = clean + sigma * N(0, 1) is not clipped, so
    it leaves [0, 1]. Each patch's photograph is drawn uniformly from
    DENOISE_IMAGES[split], then its position uniformly inside it.
    """
    _check_count(n, size)
    if not np.isfinite(sigma) or sigma < 0:
        raise ValueError(f"sigma must be a finite non-negative number, not {sigma!r}")
    split_id = _split_index(split)
    names = DENOISE_IMAGES[split]
    smallest = min(min(photo(name).shape) for name in names)
    if size > smallest:
        raise ValueError(
            f"size {size} exceeds the {split} split's smallest photograph ({smallest})"
        )
    rng = np.random.default_rng((_TASK_DENOISE, split_id, seed))
    which = rng.integers(0, len(names), n)
    clean = np.empty((n, 1, size, size), np.float32)
    for k, name in enumerate(names):
        picked = np.flatnonzero(which == k)
        height, width = photo(name).shape
        ys = rng.integers(0, height - size + 1, picked.size)
        xs = rng.integers(0, width - size + 1, picked.size)
        clean[picked, 0] = _gather(photo(name), ys, xs, size)
    noise = rng.standard_normal(clean.shape, dtype=np.float32)
    noisy = clean + np.float32(sigma) * noise
    return noisy, clean


def photo_patches(
    n: int, size: int = 32, seed: int = 0, split: str = "train"
) -> tuple[np.ndarray, np.ndarray]:
    """n patches of the PHOTO_CLASSES photographs (histogram equalized), and
    which photograph each came from: (x float32 [n, 1, size, size] in [0, 1],
    labels int64 [n]).

    The classes are balanced (n // 10 each, the remainder to the first ones)
    and shuffled. Each patch lies inside one block (BLOCK) of its photograph
    that the split owns (blocks), at a uniform position.
    """
    _check_count(n, size)
    split_id = _split_index(split)
    if size > BLOCK:
        raise ValueError(f"size must be at most the block side {BLOCK}, not {size}")
    rng = np.random.default_rng((_TASK_PHOTO, split_id, seed))
    labels = rng.permutation(np.arange(n) % len(PHOTO_CLASSES)).astype(np.int64)
    x = np.empty((n, 1, size, size), np.float32)
    for k, name in enumerate(PHOTO_CLASSES):
        picked = np.flatnonzero(labels == k)
        owned = blocks(name)[split]
        which = owned[rng.integers(0, len(owned), picked.size)]
        ys = which[:, 0] * BLOCK + rng.integers(0, BLOCK - size + 1, picked.size)
        xs = which[:, 1] * BLOCK + rng.integers(0, BLOCK - size + 1, picked.size)
        x[picked, 0] = _gather(equalized(name), ys, xs, size)
    return x, labels
