"""Xception (Chollet 2017) as keras.applications.Xception builds it: entry flow, 8 middle
blocks, exit flow, global average pool, a linear classifier. BatchNorm uses Keras's
eps=1e-3 and momentum (Keras 0.99 is torch 0.01). 299x299 inputs give 10x10 before the pool.
"""
from torch import nn

from .. import nn as cnn
from ._weights import load_weights


def sep_bn(in_channels, out_channels):
    """SeparableConv2D 3x3 'same' without bias, then BatchNormalization."""
    return [cnn.SeparableConv2d(in_channels, out_channels, 3, padding="same", bias=False),
            batch_norm(out_channels)]


def batch_norm(channels):
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class Block(nn.Module):
    """main(x) + residual(x). main: [ReLU, SepConv 3x3, BN] per width (the very first ReLU
    left out with first_relu=False), then MaxPool 3x3/2 'same' when downsampling.
    residual: Conv 1x1/2 'same' + BN when downsampling, else the identity."""

    def __init__(self, in_channels, widths, downsample, first_relu=True):
        super().__init__()
        layers, channels = [], in_channels
        for i, width in enumerate(widths):
            if i > 0 or first_relu:
                layers.append(nn.ReLU())
            layers += sep_bn(channels, width)
            channels = width
        if downsample:
            layers.append(cnn.MaxPool2d(3, stride=2, padding="same"))
            self.residual = nn.Sequential(
                cnn.Conv2d(in_channels, channels, 1, stride=2, padding="same", bias=False),
                batch_norm(channels))
        else:
            self.residual = nn.Identity()
        self.main = nn.Sequential(*layers)

    def forward(self, x):
        return self.main(x) + self.residual(x)


class Xception(nn.Module):
    HEAD = "fc"

    def __init__(self, num_classes=1000, in_channels=3):
        super().__init__()
        self.stem = nn.Sequential(
            cnn.Conv2d(in_channels, 32, 3, stride=2, bias=False), batch_norm(32), nn.ReLU(),
            cnn.Conv2d(32, 64, 3, bias=False), batch_norm(64), nn.ReLU())
        self.entry = nn.Sequential(Block(64, [128, 128], True, first_relu=False),
                                   Block(128, [256, 256], True),
                                   Block(256, [728, 728], True))
        self.middle = nn.Sequential(*[Block(728, [728] * 3, False) for _ in range(8)])
        self.exit = nn.Sequential(Block(728, [728, 1024], True),
                                  *sep_bn(1024, 1536), nn.ReLU(),
                                  *sep_bn(1536, 2048), nn.ReLU())
        self.avgpool = cnn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.exit(self.middle(self.entry(self.stem(x))))
        return self.fc(self.avgpool(x).flatten(1))


def xception(num_classes=1000, weights=None, in_channels=3):
    return load_weights(Xception(num_classes, in_channels), weights)
