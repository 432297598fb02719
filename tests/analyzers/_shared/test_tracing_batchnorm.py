"""The shared leaf tracer and the one "which BatchNorm follows which layer" detector: what is a leaf,
what is paired, what stays lonely, and the BatchNorm affine equals the module in eval mode."""

import torch
from torch import nn

from analyzers._shared.batchnorm import bn_affine, bn_after_layers
from analyzers._shared.tracing import is_flatten, trace


class MyConv(nn.Conv2d):
    """A user-defined conv: fx's default rule would trace into its forward and lose the layer."""

    def forward(self, x):
        return super().forward(x) * 1.0


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1, self.bn1 = MyConv(1, 4, 3, padding=1), nn.BatchNorm2d(4)  # paired
        self.conv2, self.bn2 = nn.Conv2d(4, 4, 3, padding=1), nn.BatchNorm2d(4)  # conv2 also feeds the add
        self.relu, self.bn3 = nn.ReLU(), nn.BatchNorm2d(4)  # after a non-linearity: lonely
        self.shared, self.bn4 = nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4)  # called twice: never paired
        self.fc, self.bn5 = nn.Linear(4, 3), nn.BatchNorm1d(3)  # linear -> BatchNorm1d: paired

    def forward(self, x):
        h = self.bn1(self.conv1(x))
        c = self.conv2(h)
        h = self.bn3(self.relu(self.bn2(c) + c))
        h = self.bn4(self.shared(self.shared(h)))
        return self.bn5(self.fc(h.mean((2, 3)).flatten(1)))


def test_leaf_tracer_keeps_layers_and_records_their_output_nodes():
    traced = trace(Net())
    called = [n.target for n in traced.graph.nodes if n.op == "call_module"]
    assert "conv1" in called  # the subclass stayed one node
    assert traced.module_type["conv1"] == "MyConv" and traced.module_out["bn5"].target == "bn5"
    flat = [n for n in traced.graph.nodes if is_flatten(n, traced.modules())]
    assert len(flat) == 1 and flat[0].target == "flatten"
    x = torch.randn(2, 1, 6, 6)
    net = traced.root.eval()
    assert torch.allclose(traced.gm(x), net(x))


def test_batchnorm_pairs_only_where_bn_of_layer_is_one_affine_layer():
    traced = trace(Net())
    found = bn_after_layers(traced.graph, traced.modules())
    assert found.after == {"conv1": "bn1", "fc": "bn5"}
    assert found.lonely == ["bn2", "bn3", "bn4"]
    convs_only = bn_after_layers(traced.graph, traced.modules(), producers=(nn.Conv2d,))
    assert convs_only.after == {"conv1": "bn1"}


def test_bn_affine_equals_the_module_in_eval_mode():
    torch.manual_seed(0)
    bn = nn.BatchNorm2d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 2), bn.bias.uniform_(-1, 1)
        bn.running_mean.uniform_(-1, 1), bn.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64)
    scale, shift = bn_affine(bn)
    assert scale.dtype == torch.float64
    assert torch.allclose(bn.double().eval()(x), x * scale[:, None, None] + shift[:, None, None])
    plain = nn.BatchNorm1d(2, affine=False, track_running_stats=False)
    s, t = bn_affine(plain)
    assert torch.allclose(s, torch.full((2,), 1 / (1 + plain.eps) ** 0.5, dtype=torch.float64)) and not t.any()


def test_lrp_graph_is_unowned_so_additions_can_be_rewritten():
    from analyzers._shared.lrp import plan_canonization

    class Res(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.bn = nn.Conv2d(2, 2, 3, padding=1), nn.BatchNorm2d(2)

        def forward(self, x):
            return self.bn(self.conv(x)) + x

    plan = plan_canonization(Res().eval())
    assert plan.ok and any("merged" in n for n in plan.notes) and any("Sum" in n for n in plan.notes)
