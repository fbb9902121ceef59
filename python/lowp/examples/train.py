"""Trains the example networks on CPU and writes their float files.

    python -m lowp.examples.train [--only NAME] [--out DIR] [--threads N]

For each network: a PyTorch state dict NAME.pt and an ONNX export NAME.onnx
(opset 17, dynamic batch axis), by default into the package's data folder,
which is where lowp.examples reads them. Seeds are fixed, so a rerun on the
same machine and torch build gives the same weights; each network takes a few
CPU minutes on two threads.

The ONNX files come from torch's TorchScript exporter (dynamo=False): the
torch.export-based one, torch's default since 2.9, needs the onnxscript
package. In eval mode that exporter folds every BatchNorm into the
convolution before it.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from . import _DATA, NAMES, dataset, psnr
from ._data import denoise_patches, photo_patches
from .models import build

OPSET = 17


def _one_cycle(
    optimizer: torch.optim.Optimizer, steps: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A tenth of the steps warming up to the optimizer's rate, then a cosine
    down to nearly zero: short runs converge well with it."""
    return torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=optimizer.param_groups[0]["lr"], total_steps=steps, pct_start=0.1
    )


def _flip(x: torch.Tensor, g: torch.Generator, *, rotate: bool) -> torch.Tensor:
    """One random dihedral transform (or, without rotate, a random flip) of the
    whole batch: cheap, and every patch still comes from the same image."""
    code = int(torch.randint(0, 8 if rotate else 4, (1,), generator=g))
    if code & 1:
        x = x.flip(-1)
    if code & 2:
        x = x.flip(-2)
    if code & 4:
        x = x.transpose(-1, -2)
    return x


def train_denoiser(steps: int = 1200, batch: int = 32, patch: int = 48, seed: int = 0) -> nn.Module:
    """Clean 48x48 training patches with fresh noise every step: the network
    is fully convolutional, so it runs on 64x64 (or any multiple of 4) after."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    _, clean = denoise_patches(8192, size=patch, sigma=0.0, seed=seed, split="train")
    data = torch.from_numpy(clean)
    model = build("denoise_unet").train()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    schedule = _one_cycle(optimizer, steps)
    for step in range(steps):
        idx = torch.randint(0, data.shape[0], (batch,), generator=g)
        target = _flip(data[idx], g, rotate=True)
        noisy = target + 0.1 * torch.randn(target.shape, generator=g)
        loss = nn.functional.mse_loss(model(noisy), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 200 == 0 or step == steps - 1:
            print(f"  step {step:5d}  loss {loss.item():.6f}", flush=True)
    return model.eval()


def train_classifier(steps: int = 1500, batch: int = 64, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    x, labels = photo_patches(16384, size=32, seed=seed, split="train")
    data, targets = torch.from_numpy(x), torch.from_numpy(labels)
    model = build("small_resnet").train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = _one_cycle(optimizer, steps)
    for step in range(steps):
        idx = torch.randint(0, data.shape[0], (batch,), generator=g)
        loss = nn.functional.cross_entropy(model(_flip(data[idx], g, rotate=False)), targets[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % 250 == 0 or step == steps - 1:
            print(f"  step {step:5d}  loss {loss.item():.4f}", flush=True)
    return model.eval()


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray, batch: int = 64) -> np.ndarray:
    return np.concatenate(
        [model(torch.from_numpy(x[i : i + batch])).numpy() for i in range(0, len(x), batch)]
    )


def evaluate(name: str, model: nn.Module, split: str = "test", n: int = 512) -> dict[str, float]:
    """The score the README quotes: PSNR in dB of the noisy input and of the
    denoised output against the clean patches, or top-1 accuracy."""
    x, target = dataset(name, split, n, seed=0)
    y = predict(model, x)
    if name == "denoise_unet":
        return {"psnr_noisy": psnr(x, target), "psnr_denoised": psnr(y, target)}
    return {"accuracy": float(np.mean(y.argmax(axis=1) == target))}


def export_onnx(name: str, model: nn.Module, path: Path) -> None:
    x, _ = dataset(name, "calibration", 2)
    torch.onnx.export(
        model,
        (torch.from_numpy(x),),
        str(path),
        opset_version=OPSET,
        input_names=["input"],
        output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
        dynamo=False,
    )


def _check_onnx(name: str, model: nn.Module, path: Path) -> str:
    try:
        import onnx
        import onnxruntime
    except ImportError:
        return "not checked (onnx or onnxruntime missing)"
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    x, _ = dataset(name, "test", 16)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    diff = float(np.max(np.abs(got - predict(model, x))))
    ops: dict[str, int] = {}
    for node in proto.graph.node:
        ops[node.op_type] = ops.get(node.op_type, 0) + 1
    kinds = ", ".join(f"{k} x{v}" for k, v in sorted(ops.items()))
    return f"onnxruntime vs torch max |diff| {diff:.2e}; nodes: {kinds}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m lowp.examples.train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", choices=NAMES, action="append", help="train only this one")
    parser.add_argument("--out", type=Path, default=_DATA, help="folder to write the files to")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    trainers: dict[str, Callable[[], nn.Module]] = {
        "denoise_unet": train_denoiser,
        "small_resnet": train_classifier,
    }
    for name in args.only or NAMES:
        print(f"{name}: training", flush=True)
        start = time.perf_counter()
        model = trainers[name]()
        seconds = time.perf_counter() - start
        scores = {split: evaluate(name, model, split) for split in ("calibration", "test")}
        pt, onnx_file = args.out / f"{name}.pt", args.out / f"{name}.onnx"
        torch.save(model.state_dict(), pt)
        export_onnx(name, model, onnx_file)
        print(f"{name}: trained in {seconds:.0f} s on {args.threads} threads")
        for split, score in scores.items():
            print(f"  {split}: " + ", ".join(f"{k} {v:.4f}" for k, v in score.items()))
        print(
            f"  {pt.name} {pt.stat().st_size} bytes, {onnx_file.name} "
            f"{onnx_file.stat().st_size} bytes"
        )
        print(f"  {_check_onnx(name, model, onnx_file)}", flush=True)


if __name__ == "__main__":
    main()
