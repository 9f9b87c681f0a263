"""The Fashion-MNIST CNN of Geron's "Hands-On Machine Learning" (ch. 14):

    Conv 64 7x7 'same' ReLU, MaxPool 2,
    Conv 128 3x3 'same' ReLU, Conv 128 3x3 'same' ReLU, MaxPool 2,
    Conv 256 3x3 'same' ReLU, Conv 256 3x3 'same' ReLU, MaxPool 2,
    Flatten, Linear 128 ReLU, Dropout 0.5, Linear 64 ReLU, Dropout 0.5, Linear num_classes.

The first Linear's input size follows from `input_size` (28: 3x3x256 = 2304 features).
"""
from torch import nn

from .. import nn as cnn
from ._weights import load_weights


def conv(in_channels, out_channels, kernel_size=3):
    return [cnn.Conv2d(in_channels, out_channels, kernel_size, padding="same"), nn.ReLU()]


class SimpleCNN(nn.Module):
    HEAD = "fc"

    def __init__(self, num_classes=10, in_channels=1, input_size=28):
        super().__init__()
        self.features = nn.Sequential(
            *conv(in_channels, 64, 7), cnn.MaxPool2d(2),
            *conv(64, 128), *conv(128, 128), cnn.MaxPool2d(2),
            *conv(128, 256), *conv(256, 256), cnn.MaxPool2d(2))
        side = input_size // 2 // 2 // 2
        if side < 1:
            raise ValueError(f"cnnops.models.simple_cnn: expected input_size >= 8, "
                             f"got {input_size}")
        self.hidden = nn.Sequential(nn.Flatten(), nn.Linear(256 * side * side, 128), nn.ReLU(),
                                    nn.Dropout(0.5), nn.Linear(128, 64), nn.ReLU(), nn.Dropout(0.5))
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x):
        return self.fc(self.hidden(self.features(x)))


def simple_cnn(num_classes=10, in_channels=1, input_size=28, weights=None):
    return load_weights(SimpleCNN(num_classes, in_channels, input_size), weights)
