"""Small CNNs trained by ``make zoo``: a VGG-style and a ResNet-style digit net, a 1-D CNN.

Every activation is its own ``nn.ReLU`` module (never functional, never shared, never
in-place) so forward/backward hooks see each nonlinearity exactly once.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn


def _conv_bn_relu(c_in: int, c_out: int, i: int) -> list[tuple[str, nn.Module]]:
    return [(f"conv{i}", nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)),
            (f"bn{i}", nn.BatchNorm2d(c_out)),
            (f"relu{i}", nn.ReLU())]


class DigitsVGG(nn.Module):
    """VGG-style digit classifier.

    Input (N, 1, 32, 32) float32, normalized to about [-1, 1]; output (N, 10) logits.
    ``features``: conv1 (16 ch) pool1 -> 16x16, conv2 (32) pool2 -> 8x8, conv3 (64) conv4 (64)
    pool3 -> (N, 64, 4, 4); ``classifier``: flatten -> dropout -> linear(1024, 10).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        layers = [*_conv_bn_relu(1, 16, 1), ("pool1", nn.MaxPool2d(2)),
                  *_conv_bn_relu(16, 32, 2), ("pool2", nn.MaxPool2d(2)),
                  *_conv_bn_relu(32, 64, 3), *_conv_bn_relu(64, 64, 4), ("pool3", nn.MaxPool2d(2))]
        self.features = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("dropout", nn.Dropout(0.2)),
            ("fc", nn.Linear(64 * 4 * 4, num_classes))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a skip connection: relu2(bn2(conv2(relu1(bn1(conv1 x)))) + skip x).

    (N, c_in, H, W) -> (N, c_out, H / stride, W / stride). When the shape changes the skip is a
    1x1 strided conv + BN projection (``shortcut``), otherwise the identity.
    """

    def __init__(self, c_in: int, c_out: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu2 = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(OrderedDict([
                ("conv", nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)),
                ("bn", nn.BatchNorm2d(c_out))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu1(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu2(out + self.shortcut(x))


class DigitsResNet(nn.Module):
    """Small ResNet digit classifier.

    Input (N, 1, 32, 32) float32; output (N, 10) logits. ``stem`` conv3x3 (16) + BN + ReLU +
    maxpool -> (N, 16, 16, 16); ``layer1`` BasicBlock(16) -> 16x16; ``layer2`` BasicBlock(32,
    stride 2, projection) -> 8x8; ``layer3`` BasicBlock(64, stride 2, projection) -> (N, 64, 4, 4);
    global average pool -> ``fc`` linear(64, 10).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        self.stem = nn.Sequential(OrderedDict([
            ("conv", nn.Conv2d(1, 16, 3, padding=1, bias=False)), ("bn", nn.BatchNorm2d(16)),
            ("relu", nn.ReLU()), ("pool", nn.MaxPool2d(2))]))
        self.layer1 = BasicBlock(16, 16)
        self.layer2 = BasicBlock(16, 32, stride=2)
        self.layer3 = BasicBlock(32, 64, stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(64, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.layer3(self.layer2(self.layer1(self.stem(x))))
        return self.fc(self.flatten(self.avgpool(x)))


class MNIST1DCNN(nn.Module):
    """1-D CNN for mnist1d.

    Input (N, 1, 40) float32 (raw mnist1d signal, unit scale); output (N, 10) logits.
    ``features``: conv1 (32 ch, k5) -> 40, conv2 (32, stride 2) -> 20, conv3 (64, stride 2) -> 10,
    conv4 (64) -> (N, 64, 10), each Conv1d-BN-ReLU; ``classifier``: flatten -> linear(640, 10).
    """

    def __init__(self, num_classes: int = 10) -> None:
        super().__init__()
        spec = [(1, 32, 5, 1), (32, 32, 3, 2), (32, 64, 3, 2), (64, 64, 3, 1)]
        layers: list[tuple[str, nn.Module]] = []
        for i, (c_in, c_out, k, s) in enumerate(spec, start=1):
            layers += [(f"conv{i}", nn.Conv1d(c_in, c_out, k, stride=s, padding=k // 2, bias=False)),
                       (f"bn{i}", nn.BatchNorm1d(c_out)), (f"relu{i}", nn.ReLU())]
        self.features = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Sequential(OrderedDict([
            ("flatten", nn.Flatten()), ("dropout", nn.Dropout(0.1)),
            ("fc", nn.Linear(64 * 10, num_classes))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))
