"""LRP speed: LRP time / forward time (and / plain input-gradient time) on a batch, the lrp analyzer
(through the runner, ledger included) over calling zennit directly with the same composite and canonizers,
and relevance-scoring throughput for the pruning reference set (LRP vs Taylor)."""

from __future__ import annotations

import copy
import os

from bench.timing import median_time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from analyzers._shared.lrp import applied, input_bounds, make_composite, plan_canonization  # noqa: E402
from analyzers.lrp_pruning.criteria import unit_scores  # noqa: E402
from analyzers.lrp_pruning.structure import find_prunable  # noqa: E402
from analyzers.lrp_pruning.sweep import reference_set  # noqa: E402
from workbench.core.cards import get_card  # noqa: E402
from workbench.runtime import RunSpec, load_model, make_batch, pick_device, run  # noqa: E402

CASES = (("digits_resnet.sk", "digits:test:16"), ("digits_vgg.sk", "digits:test:16"),
         ("resnet18.untrained", "skimage:chelsea"))
BATCH = {"resnet18.untrained": 8}


def _median(fn, repeat: int = 5) -> float:
    return median_time(fn, repeat)


def _zennit_direct(module, canonizers, bounds, x, target):
    """The bare zennit pass the analyzer wraps (canonizers prepared once, outside the timing): register the
    composite, forward, modified backward to the input, remove."""
    low, high = (bounds.low, bounds.high) if hasattr(bounds, "low") else bounds  # InputBounds or a pair
    composite = make_composite("epsilon_plus_flat", low, high, canonizers=canonizers)
    with applied(composite, module):
        xr = x.detach().clone().requires_grad_(True)
        out = module(xr)
        grad_out = torch.zeros_like(out).scatter_(1, target[:, None], out.detach().gather(1, target[:, None]))
        (rel,) = torch.autograd.grad(out, xr, grad_out)
    return rel


def bench_case(model_id: str, data: str, device: str) -> dict:
    card = get_card(model_id)
    batch = make_batch(card, data, device)
    n = BATCH.get(model_id, 16)
    x = batch.x.repeat(max(1, -(-n // batch.x.shape[0])), *([1] * (batch.x.dim() - 1)))[:n]
    module = copy.deepcopy(load_model(model_id, device).module)
    with torch.no_grad():
        target = module(x).argmax(1)
    fwd = _median(lambda: module(x).sum().item())

    def gradient():  # the plain input-gradient pass LRP modifies
        xr = x.detach().clone().requires_grad_(True)
        torch.autograd.grad(module(xr).gather(1, target[:, None]).sum(), xr)

    grad = _median(gradient, repeat=3)
    canonizers, bounds = plan_canonization(module).canonizers, input_bounds(card, x)
    direct = _median(lambda: _zennit_direct(module, canonizers, bounds, x, target), repeat=3)
    spec = RunSpec("lrp", model_id, data, {"sanity_check": False}, device=device)
    ours = _median(lambda: run(spec), repeat=3)
    one = batch.x  # the analyzer explains the data id's own batch: compare on that
    direct_same = _median(lambda: _zennit_direct(module, canonizers, bounds, one, module(one).argmax(1)), repeat=3)
    return {"batch": int(x.shape[0]), "forward_s": round(fwd, 5), "zennit_lrp_s": round(direct, 4),
            "lrp_over_forward": round(direct / fwd, 2), "gradient_s": round(grad, 4),
            "lrp_over_gradient": round(direct / grad, 2), "analyzer_s": round(ours, 4),
            "analyzer_over_zennit": round(ours / direct_same, 3)}


def bench_scoring(device: str) -> dict:
    """Reference-set relevance scoring for pruning: samples per second, LRP vs Taylor (digits VGG)."""
    card = get_card("digits_vgg.sk")
    module = copy.deepcopy(load_model(card.id, device).module)
    xtr, ytr = (torch.as_tensor(a).to(device) for a in card.extra["training_data"]("train"))
    x, y = reference_set(xtr, ytr, 10, 0)
    layers = find_prunable(module, x[:1])
    bounds = input_bounds(card, x)
    out = {"reference_samples": int(len(y))}
    for crit in ("lrp", "taylor"):
        t = _median(lambda c=crit: unit_scores(c, module, layers, x, y, bounds=bounds), repeat=3)
        out[f"{crit}_samples_per_s"] = round(len(y) / t, 1)
    out["lrp_over_taylor"] = round(out["taylor_samples_per_s"] / out["lrp_samples_per_s"], 2)
    return out


def bench_lrp(device: str = "auto") -> dict:
    device = pick_device(device)
    res = {"device": device, "models": {}}
    for model_id, data in CASES:
        card = get_card(model_id)
        if card.status(card).get("available"):
            res["models"][model_id] = bench_case(model_id, data, device)
    if get_card("digits_vgg.sk").status(get_card("digits_vgg.sk")).get("available"):
        res["pruning_scoring"] = bench_scoring(device)
    return res


if __name__ == "__main__":
    import json

    torch.set_num_threads(2)
    print(json.dumps(bench_lrp(), indent=2))
