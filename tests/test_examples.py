"""The example networks and their data sets (lowp.examples): deterministic,
honest splits, shipped files that agree with each other, trained networks
that do their job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lowp
import lowp.examples as ex


def _have(module: str) -> bool:
    try:
        __import__(module)
    except ImportError:
        return False
    return True


needs_skimage = pytest.mark.skipif(not _have("skimage"), reason="needs scikit-image")


def _locate(patch: np.ndarray, image: np.ndarray) -> list[tuple[int, int]]:
    """Every (row, column) at which patch occurs exactly in image."""
    size = patch.shape[0]
    corner = image[: image.shape[0] - size + 1, : image.shape[1] - size + 1]
    ys, xs = np.nonzero(corner == patch[0, 0])
    i = np.arange(size)
    windows = image[ys[:, None, None] + i[:, None], xs[:, None, None] + i[None, :]]
    hit = (windows == patch).all(axis=(1, 2))
    return list(zip(ys[hit].tolist(), xs[hit].tolist()))


def test_import_needs_only_numpy():
    """lowp.examples imports, and names its files, with torch, onnx and
    scikit-image all unimportable."""
    code = (
        "import sys\n"
        "for m in ('torch', 'onnx', 'onnxruntime', 'skimage'): sys.modules[m] = None\n"
        "import lowp.examples as ex\n"
        "print(ex.onnx_path('small_resnet').name, ex.state_dict_path('denoise_unet').name)\n"
        "try:\n"
        "    ex.load_torch('small_resnet')\n"
        "except ImportError:\n"
        "    print('no torch')\n"
    )
    root = str(Path(lowp.__file__).resolve().parent.parent)
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    assert "small_resnet.onnx denoise_unet.pt" in out
    assert "no torch" in out


def test_shipped_files():
    assert ex.NAMES == ("denoise_unet", "small_resnet")
    for name in ex.NAMES:
        for path in (ex.onnx_path(name), ex.state_dict_path(name)):
            assert path.is_file(), path
            assert 10_000 < path.stat().st_size < 1_000_000, path
    with pytest.raises(ValueError, match="unknown example"):
        ex.onnx_path("resnet50")


@needs_skimage
def test_denoise_patches():
    noisy, clean = ex.denoise_patches(24, size=64, sigma=0.1, seed=3, split="test")
    assert noisy.shape == clean.shape == (24, 1, 64, 64)
    assert noisy.dtype == clean.dtype == np.float32
    assert clean.min() >= 0.0 and clean.max() <= 1.0
    assert noisy.min() < 0.0 or noisy.max() > 1.0  # the noise is not clipped
    # sigma 0.1: the noisy patches are at 20 dB against the clean ones
    assert 19.5 < ex.psnr(noisy, clean) < 20.5
    again = ex.denoise_patches(24, size=64, sigma=0.1, seed=3, split="test")
    np.testing.assert_array_equal(again[0], noisy)
    np.testing.assert_array_equal(again[1], clean)
    other = ex.denoise_patches(24, size=64, sigma=0.1, seed=4, split="test")[1]
    assert not np.array_equal(other, clean)
    quiet, same = ex.denoise_patches(24, size=64, sigma=0.0, seed=3, split="test")
    np.testing.assert_array_equal(same, clean)
    np.testing.assert_array_equal(quiet, clean)


@needs_skimage
def test_denoise_test_photographs_are_unseen():
    from lowp.examples._data import photo

    images = ex.DENOISE_IMAGES
    assert set(images) == set(ex.SPLITS)
    # calibration draws other patches of the training photographs; the test
    # photographs are in neither
    assert images["calibration"] == images["train"]
    assert not set(images["test"]) & set(images["train"])
    _, train = ex.denoise_patches(8, size=48, seed=1, split="train")
    _, cal = ex.denoise_patches(8, size=48, seed=1, split="calibration")
    assert not np.array_equal(train, cal)
    # every patch is found in a photograph of its own split
    for split in ex.SPLITS:
        _, clean = ex.denoise_patches(12, size=48, seed=1, split=split)
        for patch in clean[:, 0]:
            assert any(_locate(patch, photo(name)) for name in images[split]), split


@needs_skimage
def test_photo_patches():
    x, labels = ex.photo_patches(103, size=32, seed=5, split="calibration")
    assert x.shape == (103, 1, 32, 32) and x.dtype == np.float32
    assert labels.shape == (103,) and labels.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    counts = np.bincount(labels, minlength=len(ex.PHOTO_CLASSES))
    assert counts.tolist() == [11, 11, 11] + [10] * 7
    again = ex.photo_patches(103, size=32, seed=5, split="calibration")
    np.testing.assert_array_equal(again[0], x)
    np.testing.assert_array_equal(again[1], labels)
    assert not np.array_equal(ex.photo_patches(103, size=32, seed=6, split="calibration")[0], x)
    assert not np.array_equal(ex.photo_patches(103, size=32, seed=5, split="test")[0], x)


@needs_skimage
def test_photo_splits_use_disjoint_blocks():
    from lowp.examples._data import BLOCK, blocks, equalized

    for name in ex.PHOTO_CLASSES:
        owned = blocks(name)
        keys = [set(map(tuple, owned[split].tolist())) for split in ex.SPLITS]
        assert all(keys), name  # every split has blocks of every photograph
        assert sum(map(len, keys)) == len(set.union(*keys)), name  # no block twice
    size = 24
    x, labels = ex.photo_patches(60, size=size, seed=2, split="test")
    unique = 0
    for patch, label in zip(x[:, 0], labels):
        name = ex.PHOTO_CLASSES[label]
        found = _locate(patch, equalized(name))
        assert found, name
        if len(found) == 1:  # a flat patch may occur in several places
            unique += 1
            y, col = found[0]
            assert y % BLOCK + size <= BLOCK and col % BLOCK + size <= BLOCK
            assert [y // BLOCK, col // BLOCK] in blocks(name)["test"].tolist()
    assert unique >= 50


def test_bad_arguments():
    with pytest.raises(ValueError, match="split"):
        ex.denoise_patches(2, split="validation")
    with pytest.raises(ValueError, match="size"):
        ex.photo_patches(2, size=65)
    with pytest.raises(ValueError, match="n must be"):
        ex.photo_patches(-1)
    with pytest.raises(ValueError, match="unknown example"):
        ex.dataset("unet", "test", 2)


@pytest.fixture(scope="module")
def torch():
    torch = pytest.importorskip("torch")
    pytest.importorskip("skimage")
    threads = torch.get_num_threads()
    torch.set_num_threads(min(threads, 2))
    yield torch
    torch.set_num_threads(threads)


def _run_torch(torch, name: str, x: np.ndarray) -> np.ndarray:
    model = ex.load_torch(name)
    assert not model.training
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", ex.NAMES)
def test_models_use_only_quantizable_layers(torch, name):
    """Traced, the networks hold only the layers and functions the quantizer
    lowers (no nn.Identity, no in-place ReLU)."""
    import operator

    graph = torch.fx.symbolic_trace(ex.load_torch(name))
    modules = {
        type(graph.get_submodule(node.target)).__name__
        for node in graph.graph.nodes
        if node.op == "call_module"
    }
    functions = {node.target for node in graph.graph.nodes if node.op == "call_function"}
    assert modules <= {
        "Conv2d",
        "ConvTranspose2d",
        "BatchNorm2d",
        "ReLU",
        "MaxPool2d",
        "AdaptiveAvgPool2d",
        "Linear",
    }
    assert "Conv2d" in modules and "BatchNorm2d" in modules
    assert functions <= {operator.add, torch.cat, torch.flatten}
    relus = [m for m in graph.modules() if isinstance(m, torch.nn.ReLU)]
    assert relus and not any(m.inplace for m in relus)


@pytest.mark.parametrize("name", ex.NAMES)
def test_onnx_matches_state_dict(torch, name):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    proto = onnx.load(str(ex.onnx_path(name)))
    assert proto.opset_import[0].version == 17
    ops = {node.op_type for node in proto.graph.node}
    assert "BatchNormalization" not in ops  # folded into the convolutions
    assert ops <= {
        "Conv",
        "ConvTranspose",
        "Relu",
        "MaxPool",
        "Concat",
        "Add",
        "GlobalAveragePool",
        "Flatten",
        "Gemm",
    }
    x, _ = ex.dataset(name, "test", 5, seed=1)  # a batch size the export never saw
    session = ort.InferenceSession(str(ex.onnx_path(name)), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    np.testing.assert_allclose(got, _run_torch(torch, name, x), rtol=1e-4, atol=1e-4)


def test_denoiser_beats_the_noise(torch):
    noisy, clean = ex.dataset("denoise_unet", "test", 96)
    denoised = _run_torch(torch, "denoise_unet", noisy)
    before, after = ex.psnr(noisy, clean), ex.psnr(denoised, clean)
    assert after > before + 5.0, (before, after)


def test_classifier_beats_chance(torch):
    x, labels = ex.dataset("small_resnet", "test", 400)
    accuracy = float(np.mean(_run_torch(torch, "small_resnet", x).argmax(axis=1) == labels))
    assert accuracy > 0.6, accuracy  # chance is 0.1
