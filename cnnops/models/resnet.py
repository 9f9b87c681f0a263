"""ResNet-18/34/50/101/152 (He et al. 2015) exactly as torchvision builds them (v1.5: the
stride of a Bottleneck is on its 3x3 conv): same module names, state_dict keys and
initialisation, so torchvision checkpoints load with weights=<path>."""
import torch
from torch import nn

from .. import nn as cnn
from ._weights import load_weights


def conv3x3(in_channels, out_channels, stride=1):
    return cnn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


def conv1x1(in_channels, out_channels, stride=1):
    return cnn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv3x3(in_channels, channels, stride)
        self.bn1 = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_channels, channels, stride=1, downsample=None):
        super().__init__()
        self.conv1 = conv1x1(in_channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels, stride)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = conv1x1(channels, channels * self.expansion)
        self.bn3 = nn.BatchNorm2d(channels * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(nn.Module):
    HEAD = "fc"

    def __init__(self, block, layers, num_classes=1000, in_channels=3):
        super().__init__()
        self.in_channels = 64
        self.conv1 = cnn.Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = cnn.MaxPool2d(3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = cnn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def _make_layer(self, block, channels, blocks, stride=1):
        downsample = None
        if stride != 1 or self.in_channels != channels * block.expansion:
            out_channels = channels * block.expansion
            downsample = nn.Sequential(conv1x1(self.in_channels, out_channels, stride),
                                       nn.BatchNorm2d(out_channels))
        layers = [block(self.in_channels, channels, stride, downsample)]
        self.in_channels = channels * block.expansion
        layers += [block(self.in_channels, channels) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def _resnet(block, layers, num_classes, weights, in_channels):
    return load_weights(ResNet(block, layers, num_classes, in_channels), weights)


def resnet18(num_classes=1000, weights=None, in_channels=3):
    return _resnet(BasicBlock, [2, 2, 2, 2], num_classes, weights, in_channels)


def resnet34(num_classes=1000, weights=None, in_channels=3):
    return _resnet(BasicBlock, [3, 4, 6, 3], num_classes, weights, in_channels)


def resnet50(num_classes=1000, weights=None, in_channels=3):
    return _resnet(Bottleneck, [3, 4, 6, 3], num_classes, weights, in_channels)


def resnet101(num_classes=1000, weights=None, in_channels=3):
    return _resnet(Bottleneck, [3, 4, 23, 3], num_classes, weights, in_channels)


def resnet152(num_classes=1000, weights=None, in_channels=3):
    return _resnet(Bottleneck, [3, 8, 36, 3], num_classes, weights, in_channels)
