"""The example networks as PyTorch modules (this module imports torch).

Both are built only from layers that lowp's post-training quantizer lowers:
Conv2d, ConvTranspose2d, Linear, BatchNorm2d (folded into the convolution
before it), ReLU, MaxPool2d, AdaptiveAvgPool2d(1), channel concatenation,
addition and flatten. No in-place ReLU and no nn.Identity, so that a graph
captured with torch.export or torch.fx holds nothing else either.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["BasicBlock", "DenoiseUNet", "SmallResNet", "build"]


def _conv_bn_relu(in_channels: int, out_channels: int, stride: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    ]


def _double_conv(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        *_conv_bn_relu(in_channels, out_channels), *_conv_bn_relu(out_channels, out_channels)
    )


class DenoiseUNet(nn.Module):
    """A two-level UNet that removes additive noise from grayscale images.

    Encoder blocks of two [3x3 conv, batch norm, ReLU] at base, 2 base and
    4 base channels with 2x2 max pooling between them; the decoder up-samples
    with 2x2 stride-2 transposed convolutions and concatenates the encoder's
    features of the same size on the channel axis. The last 1x1 convolution
    predicts a correction that is *added* to the input (a residual: the noise
    with its sign flipped), so an untrained network starts as the identity
    and quantization error in the correction is small against the image.

    Input [N, 1, H, W] with H and W multiples of 4; output of the same shape.
    """

    def __init__(self, base: int = 16, channels: int = 1) -> None:
        super().__init__()
        self.enc1 = _double_conv(channels, base)
        self.enc2 = _double_conv(base, 2 * base)
        self.mid = _double_conv(2 * base, 4 * base)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(4 * base, 2 * base, 2, stride=2)
        self.dec2 = _double_conv(4 * base, 2 * base)
        self.up1 = nn.ConvTranspose2d(2 * base, base, 2, stride=2)
        self.dec1 = _double_conv(2 * base, base)
        self.head = nn.Conv2d(base, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        m = self.mid(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(m), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return x + self.head(d1)


class BasicBlock(nn.Module):
    """ResNet's basic block: conv-bn-relu-conv-bn, plus the input (or its 1x1
    strided projection with batch norm when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn_relu(in_channels, out_channels, stride),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        # None rather than nn.Identity: a traced graph then holds only the
        # listed layers, and the state dict is the same either way
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return self.relu(out + (x if self.shortcut is None else self.shortcut(x)))


class SmallResNet(nn.Module):
    """A small ResNet for grayscale patches: a 3x3 stem, three basic blocks
    (width, 2 width with stride 2, 4 width with stride 2), global average
    pooling, flatten and a linear classifier. Input [N, 1, H, W], output
    logits [N, num_classes]."""

    def __init__(self, num_classes: int = 4, width: int = 16, channels: int = 1) -> None:
        super().__init__()
        self.stem = nn.Sequential(*_conv_bn_relu(channels, width))
        self.layer1 = BasicBlock(width, width)
        self.layer2 = BasicBlock(width, 2 * width, stride=2)
        self.layer3 = BasicBlock(2 * width, 4 * width, stride=2)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(torch.flatten(self.pool(x), 1))


def build(name: str) -> nn.Module:
    """A new, untrained example network with the configuration its shipped
    weights have."""
    from . import NAMES
    from ._data import PHOTO_CLASSES

    if name == "denoise_unet":
        return DenoiseUNet(base=16)
    if name == "small_resnet":
        return SmallResNet(num_classes=len(PHOTO_CLASSES), width=16)
    raise ValueError(f"unknown example {name!r} (known: {', '.join(NAMES)})")
