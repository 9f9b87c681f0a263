"""A small fully convolutional segmentation network:

    encoder: three stages of [Conv 3x3 -> BN -> ReLU, Conv 3x3 stride 2 -> BN -> ReLU]
             with 64, 128, 256 channels (1/8 resolution);
    decoder: three ConvTranspose 3x3 stride 2 -> BN -> ReLU (256 -> 128 -> 64 -> 32), each
             back to the size of the matching encoder input, so any H x W comes back exactly;
    classifier: Conv 1x1 to num_classes logits, (N, num_classes, H, W).
"""
from torch import nn

from .. import nn as cnn
from ._weights import load_weights


def conv_bn_relu(in_channels, out_channels, stride=1):
    return [cnn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True)]


class Up(nn.Module):
    """ConvTranspose 3x3 stride 2 -> BN -> ReLU to a given output size (2x by default)."""

    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.conv = cnn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1,
                                        output_padding=1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x, size=None):
        return self.relu(self.bn(self.conv(x, output_size=size)))


class SegmentationFCN(nn.Module):
    HEAD = "classifier"

    def __init__(self, num_classes=3, in_channels=3):
        super().__init__()
        widths = (in_channels, 64, 128, 256)
        self.encoder = nn.ModuleList(
            nn.Sequential(*conv_bn_relu(i, o), *conv_bn_relu(o, o, stride=2))
            for i, o in zip(widths, widths[1:]))
        self.decoder = nn.ModuleList([Up(256, 128), Up(128, 64), Up(64, 32)])
        self.classifier = cnn.Conv2d(32, num_classes, 1)

    def forward(self, x):
        sizes = []
        for stage in self.encoder:
            sizes.append(x.shape[-2:])
            x = stage(x)
        for up, size in zip(self.decoder, reversed(sizes)):
            x = up(x, size)
        return self.classifier(x)


def segmentation_fcn(num_classes=3, in_channels=3, weights=None):
    return load_weights(SegmentationFCN(num_classes, in_channels), weights)
