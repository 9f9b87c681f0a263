"""A small Xception-like classifier after the Keras example "Image classification from
scratch", sized for small images such as 32x32 (1/16 resolution before the pool):

    stem:   Conv 5x5 'same' 32 -> BN -> ReLU
    blocks: for width in 64, 128, 256, 512:
              main     = ReLU -> SepConv 3x3 'same' -> BN -> ReLU -> SepConv 3x3 'same' -> BN
                         -> MaxPool 3x3/2 'same'
              residual = Conv 1x1/2 'same' (with bias, no BN)
              x = main(x) + residual(x)
    head:   SepConv 3x3 'same' 1024 -> BN -> ReLU -> global average pool -> Dropout(0.5)
            -> Linear(1024, num_classes)

Convolutions keep Keras's default bias; BatchNorm uses Keras's eps=1e-3 and momentum.
"""
from torch import nn

from .. import nn as cnn
from ._weights import load_weights
from .xception import batch_norm

WIDTHS = (64, 128, 256, 512)


def sep_conv(in_channels, out_channels):
    return cnn.SeparableConv2d(in_channels, out_channels, 3, padding="same")


class Block(nn.Module):
    def __init__(self, in_channels, width):
        super().__init__()
        self.main = nn.Sequential(nn.ReLU(), sep_conv(in_channels, width), batch_norm(width),
                                  nn.ReLU(), sep_conv(width, width), batch_norm(width),
                                  cnn.MaxPool2d(3, stride=2, padding="same"))
        self.residual = cnn.Conv2d(in_channels, width, 1, stride=2, padding="same")

    def forward(self, x):
        return self.main(x) + self.residual(x)


class MiniXception(nn.Module):
    HEAD = "fc"

    def __init__(self, num_classes, in_channels=3):
        super().__init__()
        self.stem = nn.Sequential(cnn.Conv2d(in_channels, 32, 5, padding="same"),
                                  batch_norm(32), nn.ReLU())
        widths = (32,) + WIDTHS
        self.blocks = nn.Sequential(*[Block(i, o) for i, o in zip(widths, widths[1:])])
        self.top = nn.Sequential(sep_conv(widths[-1], 1024), batch_norm(1024), nn.ReLU())
        self.avgpool = cnn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(0.5)
        self.fc = nn.Linear(1024, num_classes)

    def forward(self, x):
        x = self.top(self.blocks(self.stem(x)))
        return self.fc(self.dropout(self.avgpool(x).flatten(1)))


def mini_xception(num_classes, in_channels=3, weights=None):
    return load_weights(MiniXception(num_classes, in_channels), weights)
