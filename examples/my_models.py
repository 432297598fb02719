"""Your own model file for the workbench: `workbench run lrp --model examples/my_models.py:build_net
--weights net.safetensors --data digits:test:8 --out out/lrp` and `workbench app --models examples/my_models.py`.

Every public function here that takes no required argument returns an nn.Module and becomes a card
``user.<function>``; the attributes set on it tell the workbench what it cannot infer.
"""

from torch import nn


class SmallCNN(nn.Module):
    """(N, 1, 8, 8) sklearn digits in [0, 1] -> (N, 10) logits. The same network as in
    examples/your_own_model.ipynb."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
                                      nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(32, 32, 3, padding=1), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10))

    def forward(self, x):
        return self.head(self.features(x))


def build_net():
    return SmallCNN()


build_net.input_shape = (1, 8, 8)  # digits at their own 8x8 size (the workbench resizes other pictures)
build_net.classes = [str(i) for i in range(10)]
build_net.default_data = "digits:21"
