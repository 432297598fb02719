"""Layer-wise relevance propagation (zennit) with a conservation ledger.

Composites: EpsilonPlusFlat, EpsilonGammaBox, EpsilonAlpha2Beta1 and the setting of Yeom et al.
(alpha1-beta0 on convolutions, epsilon on dense layers, z^B on the first layer). Canonizers are chosen
from the traced model (BatchNorm merged exactly, residual additions through zennit ``Sum`` modules);
what cannot be canonized is reported instead of drawn. The ledger books every layer boundary:
``logit = input relevance + absorbed by biases/stabilizers + leak``; a leak means relevance was created
or lost outside the rules, and the map is then not shown.

References: Bach et al. 2015 (LRP); Montavon et al. 2019 (LRP overview, composites); Anders et al. 2021
(zennit, arXiv:2106.13200); Yeom et al. 2021 (Pattern Recognition 115:107899); Adebayo et al. 2018
(randomization sanity check).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch

from analyzers._shared.lrp import COMPOSITES, input_bounds, make_composite, plan_canonization
from analyzers.lrp.ledger import LEDGER_TOL, Explanation, explain, ledger_checks, ledger_metrics
from analyzers.lrp.result import LRPResult
from workbench.core import Analyzer, Check, option, register_analyzer
from workbench.core.errors import ConfigError, UnsupportedModelError

RHO_THRESHOLD = 0.5
MIN_DRAWN_SHARE = 0.01  # below this share of the logit at the input, no map is drawn (it would be noise)
MIN_ELEMENTS_FOR_SANITY = 16


@dataclass(frozen=True)
class LRPConfig:
    composite: str = option("epsilon_plus_flat", "LRP rule set: EpsilonPlusFlat, EpsilonGammaBox, "
                            "EpsilonAlpha2Beta1, or 'paper' (Yeom et al.: alpha1-beta0 on convs with the bias "
                            "ignored, epsilon on dense layers, z^B on the first layer)", choices=COMPOSITES)
    target: int = option(-1, "class to explain; -1 = the predicted class", min=-1, max=100000)
    epsilon: float = option(1e-6, "epsilon of the Epsilon rule (dense layers)", min=0.0, max=100.0)
    stabilizer: float = option(1e-6, "denominator stabilizer of the other rules", min=0.0, max=1.0)
    dtype: str = option("float32", "precision of the pass (float64 for exact conservation tests)",
                        choices=("float32", "float64"))
    canonize: bool = option(True, "merge BatchNorm and route residual additions through Sum modules; off is a "
                                  "control: the ledger then shows the relevance that leaks")
    sanity_check: bool = option(True, "run the model-randomization sanity check (Adebayo et al.)")
    randomize_layers: int = option(-1, "top parameterized layers to re-initialize for the sanity check; "
                                       "-1 = all, 0 = none (a control that must fail)", min=-1, max=1000)


def randomized_copy(module: torch.nn.Module, n_top: int, seed: int) -> tuple[torch.nn.Module, int]:
    """A copy whose top ``n_top`` parameterized layers (-1 = all, 0 = none) are re-initialized
    (cascading from the output, Adebayo et al.); the caller's RNG stream is left alone."""
    rnd = copy.deepcopy(module)
    layers = [m for m in rnd.modules()
              if hasattr(m, "reset_parameters") and any(True for _ in m.parameters(recurse=False))]
    chosen = layers[::-1][: len(layers) if n_top < 0 else n_top]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed + 7919)
        for m in chosen:
            m.reset_parameters()
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.reset_running_stats()
    return rnd.eval(), len(chosen)


def _map(relevance: torch.Tensor, kind: str) -> np.ndarray:
    """Input relevance -> what is drawn: images (N, H, W) summed over channels, signals (N, C, T),
    vectors (N, D); float32."""
    r = relevance.detach().float().cpu()
    return (r.sum(1) if kind == "image2d" else r).numpy()


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import spearmanr

    rho = spearmanr(np.abs(a).ravel(), np.abs(b).ravel()).statistic
    return float(rho) if np.isfinite(rho) else 0.0


@register_analyzer
class LRP(Analyzer):
    name = "lrp"
    title = "Layer-wise relevance propagation"
    description = ("LRP heat maps (zennit composites, canonizers chosen from the model's structure) with a "
                   "conservation ledger: relevance at every layer boundary, what biases and stabilizers "
                   "absorbed, and whether the books close against the explained logit.")
    paper = "Bach et al. 2015; Montavon et al. 2019; Anders et al. 2021 (zennit); Yeom et al. 2021"
    Config = LRPConfig
    result_class = LRPResult
    supports = ("image2d", "signal1d", "eeg", "vector")
    exclusive = True  # traces with torch.fx / make_fx (process-global patching)
    mutates_model = True  # canonizers rewrite parameters and forward methods in place

    def run(self, model, data, config, ctx):
        card, module = model.card, model.module
        if not card.class_names:
            raise UnsupportedModelError(f"{card.id} has no class logits to explain", "pick a classifier")
        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        module.to(dtype)
        x = data.x.to(dtype)
        ctx.progress(0.05, "forward pass")
        with torch.no_grad():
            logits = module(x)
        if config.target >= logits.shape[1]:
            raise ConfigError(f"target {config.target} is not a class of {card.id} (0..{logits.shape[1] - 1})")
        target = logits.argmax(1) if config.target < 0 else torch.full_like(logits[:, 0], config.target).long()
        low, high = input_bounds(card, x)
        ctx.progress(0.15, f"LRP ({config.composite})")
        plan, exp = self._explain(module, x, target, low, high, config)
        ctx.progress(0.6, "ledger")
        arrays, metrics, checks, info = self._ledger(exp, logits, config, plan)
        arrays.update(input_display=data.display, relevance=_map(exp.relevance, card.kind),
                      target=target.cpu().numpy(), logits=logits.detach().float().cpu().numpy())
        metrics.update(target_class=float(target[0]), predicted_class=float(logits[0].argmax()))
        if config.sanity_check and exp.relevance[0].numel() >= MIN_ELEMENTS_FOR_SANITY:
            ctx.progress(0.7, "randomization sanity check")
            self._sanity(module, x, target, low, high, config, ctx.seed, card.kind, arrays, metrics, checks)
        names = list(card.class_names)
        info.update(ids=data.ids, labels=data.labels, kind=card.kind, trained=bool(card.trained),
                    target_names=[names[int(t)] if int(t) < len(names) else str(int(t)) for t in target],
                    composite=config.composite, dtype=config.dtype)
        return LRPResult("lrp", metrics=metrics, checks=checks, arrays=arrays, info=info)

    @staticmethod
    def _explain(module, x, target, low, high, config):
        plan = plan_canonization(module) if config.canonize else None
        canonizers = plan.canonizers if plan is not None else []
        composite = make_composite(config.composite, low, high, epsilon=config.epsilon,
                                   stabilizer=config.stabilizer, canonizers=canonizers)
        return plan, explain(module, composite, x, target)

    @staticmethod
    def _ledger(exp: Explanation, logits, config, plan):
        """Metrics, checks, arrays and info of the conservation ledger (per sample and per layer)."""
        problems = list(plan.problems) if plan is not None else ["canonization switched off (control)"]
        problems += [f"BatchNorm {n} was not merged" for n in exp.unmerged if not any(n in p for p in problems)]
        notes = plan.notes if plan is not None else []
        metrics = ledger_metrics(exp, logits)
        checks = ledger_checks(exp, metrics, problems, notes, 1e-10 if config.dtype == "float64" else 1e-4)
        arrays = {"ledger_r_out": exp.r_out, "ledger_r_in": exp.r_in, "ledger_gap": exp.gap,
                  "explained_logit": exp.target_logit, "input_relevance": exp.input_total,
                  "absorbed_total": exp.absorbed.sum(0), "leak": exp.leak}
        closes = metrics["conservation_rel_error"] <= LEDGER_TOL
        share = float(np.max(np.abs(exp.input_total) / np.maximum(np.abs(exp.target_logit), 1e-12)))
        reason = ""
        if problems or not closes:
            reason = "LRP is not conservative on this model: " + "; ".join(problems or ["the ledger does not close"])
        elif share < MIN_DRAWN_SHARE:  # every sample: the map would be a faint remainder
            reason = (f"only {share:.2%} of the explained logit reaches the input: biases and stabilizers absorb "
                      "the rest (see the ledger), so a map would show noise; the 'paper' composite ignores conv "
                      "biases and passes more relevance down")
        info = {"ledger_calls": exp.calls, "ledger_rules": exp.rules, "problems": problems, "canonizer_notes": notes,
                "trustworthy": bool(closes and not problems), "no_map_reason": reason}
        return arrays, metrics, checks, info

    def _sanity(self, module, x, target, low, high, config, seed, kind, arrays, metrics, checks) -> None:
        """Adebayo et al.: re-initialize the top layers; the map must change (Spearman of |map| < 0.5)."""
        rnd, k = randomized_copy(module, config.randomize_layers, seed)
        _, exp = self._explain(rnd, x, target, low, high, config)
        a, b = arrays["relevance"], _map(exp.relevance, kind)
        rho = float(np.mean([_spearman(p, q) for p, q in zip(a, b, strict=True)]))
        arrays["rand_relevance"] = b
        metrics.update(sanity_rank_corr=rho, randomized_layers=float(k))
        checks.append(Check("randomization", rho < RHO_THRESHOLD, rho, RHO_THRESHOLD,
                            f"Spearman rank correlation of |relevance| after re-initializing {k} layer(s) from "
                            "the top; a map that survives randomization does not depend on what was learned"))
