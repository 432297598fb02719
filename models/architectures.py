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


class RepeatChannels(nn.Module):
    """(N, C, T) -> (N, C * repeats, T): output channel i copies input channel i // repeats.

    With a depthwise conv after it this is exactly a grouped conv with ``repeats`` kernels per group
    (Conv1d(C, C * repeats, groups=C)), but runs as a true depthwise conv, several times faster on CPU.
    """

    def __init__(self, repeats: int) -> None:
        super().__init__()
        self.repeats = repeats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.repeat_interleave(self.repeats, dim=1)


class EEGInterpretableCNN(nn.Module):
    """The compact interpretable CNN of Cui et al. (IEEE TNNLS 2023) for cross-subject drowsiness.

    Input (N, 30, 384) float32: 3 s of 30-channel EEG at 128 Hz (card preprocessing: per-channel mean
    removed, divided by 10 uV); output (N, 2) logits (alert, drowsy). Layers, as in the paper (its
    Conv2d on a 1 x 30 x 384 image written as the equivalent Conv1d):
    ``pointwise`` Conv1d(30 -> 16, k=1) spatial filters -> 16 virtual channels; ``expand`` + ``depthwise``
    2 temporal kernels of 64 samples (0.5 s) per virtual channel -> (N, 32, 321) (map i filters virtual
    channel i // 2); ``relu``; ``bn`` BatchNorm1d(32); ``pool`` global average over time; ``fc`` 32 -> 2.
    2706 parameters. The paper's BatchNorm uses batch statistics also at test time; here ``bn`` keeps
    population statistics frozen after training (``models.eeg_fit.freeze_batch_statistics``), so a
    window's prediction does not depend on which windows share its batch.
    """

    def __init__(self, n_channels: int = 30, n_virtual: int = 16, depth: int = 2, kernel: int = 64,
                 num_classes: int = 2) -> None:
        super().__init__()
        self.pointwise = nn.Conv1d(n_channels, n_virtual, 1)
        self.expand = RepeatChannels(depth)
        self.depthwise = nn.Conv1d(n_virtual * depth, n_virtual * depth, kernel, groups=n_virtual * depth)
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(n_virtual * depth)
        self.pool = nn.AdaptiveAvgPool1d(1)
        self.flatten = nn.Flatten()
        self.fc = nn.Linear(n_virtual * depth, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.depthwise(self.expand(self.pointwise(x)))
        return self.fc(self.flatten(self.pool(self.bn(self.relu(z)))))


class SRCNNx2(nn.Module):
    """Small x2 super-resolution CNN (SRCNN-style feature extraction, ESPCN-style sub-pixel output)
    that learns the residual over bicubic upsampling.

    Input (N, 1, H, W) grayscale in [0, 1] (the low-resolution image); output (N, 1, 2H, 2W):
    ``bicubic(x) + shuffle(conv3(relu2(conv2(relu1(conv1 x)))))``. conv1 5x5 (32 ch), conv2 3x3 (32),
    conv3 3x3 (4 = 2x2 sub-pixels), then ``PixelShuffle(2)``. Fully convolutional (any H, W).
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, width, 5, padding=2)
        self.relu1 = nn.ReLU()
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.conv3 = nn.Conv2d(width, 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        base = nn.functional.interpolate(x, scale_factor=2, mode="bicubic", align_corners=False)
        return base + self.shuffle(self.conv3(self.relu2(self.conv2(self.relu1(self.conv1(x))))))


class DenoiseCNN(nn.Module):
    """Small DnCNN-style denoiser (Zhang et al. 2017) with residual learning.

    Input (N, 1, H, W) noisy grayscale in [0, 1]; output (N, 1, H, W) = ``x - noise_estimate(x)``.
    ``head`` conv3x3 (16 ch) + ReLU; ``body``: 2 x (conv3x3 (16, no bias) + BatchNorm + ReLU);
    ``tail`` conv3x3 -> 1 channel. Receptive field 9 x 9; fully convolutional.
    """

    def __init__(self, width: int = 16, depth: int = 2) -> None:
        super().__init__()
        self.head = nn.Sequential(OrderedDict([("conv", nn.Conv2d(1, width, 3, padding=1)), ("relu", nn.ReLU())]))
        body: list[tuple[str, nn.Module]] = []
        for i in range(1, depth + 1):
            body += [(f"conv{i}", nn.Conv2d(width, width, 3, padding=1, bias=False)),
                     (f"bn{i}", nn.BatchNorm2d(width)), (f"relu{i}", nn.ReLU())]
        self.body = nn.Sequential(OrderedDict(body))
        self.tail = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x - self.tail(self.body(self.head(x)))


class ToyMLP(nn.Module):
    """Yeom et al.'s pruning toy network, as they published it (2 -> 1000 -> 1000 -> 1000 -> 2).

    Input (N, 2) float32 points; output (N, 2) logits. ``network``: fc1 -> relu1 -> dropout (p 0.5)
    -> fc2 -> relu2 -> fc3 -> out. The authors' code builds the layers from an OrderedDict that reuses
    the key ``nonlin2``, so their third hidden layer has no ReLU: it is mirrored here on purpose,
    because their toy-table numbers come from that network. Hidden widths: ``width`` each (3000 units).
    """

    def __init__(self, num_classes: int = 2, width: int = 1000) -> None:
        super().__init__()
        self.network = nn.Sequential(OrderedDict([
            ("fc1", nn.Linear(2, width)), ("relu1", nn.ReLU()), ("dropout", nn.Dropout(0.5)),
            ("fc2", nn.Linear(width, width)), ("relu2", nn.ReLU()),
            ("fc3", nn.Linear(width, width)),
            ("out", nn.Linear(width, num_classes))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network(x)
