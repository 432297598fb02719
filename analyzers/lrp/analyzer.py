"""Layer-wise relevance propagation (zennit) with a conservation ledger.

Composites: EpsilonPlusFlat, EpsilonGammaBox, EpsilonAlpha2Beta1 and the setting of Yeom et al.
(alpha1-beta0 on convolutions, epsilon on dense layers, z^B on the first layer). Canonizers are chosen
from the traced model (BatchNorm merged exactly, residual additions through zennit ``Sum`` modules);
what cannot be canonized is reported instead of drawn. The ledger books every layer boundary:
``logit = input relevance + absorbed by biases/stabilizers + leak``; a leak means relevance was created
or lost outside the rules, and the map is then not shown.

Cost (issue 21): one forward and one modified backward, as a direct zennit call. The explained class is read
from the LRP pass's own forward (the canonized model, equal to the original within the canonization check);
the un-canonized model runs only for that check, on the first ceil(N / 8) samples (reported in info); the
ledger is booked by tensor hooks as the backward passes (``books.py``).

References: Bach et al. 2015 (LRP); Montavon et al. 2019 (LRP overview, composites); Anders et al. 2021
(zennit, arXiv:2106.13200); Yeom et al. 2021 (Pattern Recognition 115:107899); Adebayo et al. 2018
(randomization sanity check).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers._shared.lrp import (
    BOX_COMPOSITES,
    COMPOSITES,
    InputBounds,
    input_bounds,
    make_composite,
    plan_canonization,
)
from analyzers._shared.quality_panel import quality_panel
from analyzers._shared.randomization import randomized_copy
from analyzers._shared.stats import mean_spearman_abs
from analyzers.lrp.ledger import LEDGER_TOL, Explanation, explain, ledger_checks, ledger_metrics
from analyzers.lrp.result import LRPResult
from workbench.core import Analyzer, option, register_analyzer
from workbench.core.errors import ConfigError, UnsupportedModelError

RHO_THRESHOLD = 0.5
MIN_DRAWN_SHARE = 0.01  # below this share of the logit at the input, no map is drawn (it would be noise)
MIN_ELEMENTS_FOR_SANITY = 16
CANONIZATION_CHECK_SHARE = 8  # the un-canonized model is run on ceil(N / 8) samples: the check's budget
UNTRACED = "the model could not be traced"  # plan_canonization's problem when torch.fx fails


def canonization_check_rows(n: int) -> int:
    """How many of N samples (the first ones) the un-canonized model is run on, to check that canonizing kept
    the output: a forward of the whole batch is ~15% of an LRP pass and would be spent on that check alone
    (the predicted class comes from the LRP pass's own forward)."""
    return max(1, -(-n // CANONIZATION_CHECK_SHARE))


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
    quality: bool = option(False, "quality panel: deletion/insertion AUC of the map against a random map, Gini "
                                  "sparseness and effective support (2 x (1/quality_step + 1) forwards per sample)",
                           label="Quality panel")
    quality_step: float = option(0.05, "quality panel: fraction of the input features removed/inserted per step",
                                 min=0.01, max=0.5)
    quality_road: bool = option(False, "quality panel: add ROAD curves (Rong et al. 2022: removed pixels imputed "
                                       "from their neighbours plus noise, not set to a baseline; pictures only)")
    quality_randomization: bool = option(False, "quality panel: add eMPRT (Hedstrom et al. 2023, fully randomized "
                                                "model) and the random-logit test (Sixt et al. 2020); two more "
                                                "LRP passes")


def _map(relevance: torch.Tensor, kind: str) -> np.ndarray:
    """Input relevance -> what is drawn: images (N, H, W) summed over channels, signals (N, C, T),
    vectors (N, D); float32."""
    r = relevance.detach().float().cpu()
    return (r.sum(1) if kind == "image2d" else r).numpy()


@dataclass(frozen=True)
class Pass:
    """One LRP pass: ``x`` (N, ...) in the pass dtype, ``target`` (N,) int64 classes or a function of the pass's
    own logits (N, K) -> (N,), the z^B ``bounds``."""

    x: torch.Tensor
    target: torch.Tensor | Callable[[torch.Tensor], torch.Tensor]
    bounds: InputBounds
    config: LRPConfig


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
    page = "lrp.py"  # hand-written page: Explain and Prune side by side; saves a pruned model as a zoo card
    supports = ("image2d", "signal1d", "eeg", "vector")
    libraries = ("scipy", "zennit")
    smoke_config = {"dtype": "float64"}
    headline_check = None
    headline_reason = ("the ledger and canonization checks hold for any weights, and the randomization check "
                       "compares with the analyzer's own re-initialized copy: an untrained net passes it too")
    exclusive = True  # traces with torch.fx / make_fx (process-global patching)
    mutates_model = True  # canonizers rewrite parameters and forward methods in place
    per_sample = True  # a data id naming many samples runs in chunks, merged (workbench/runtime/dataset_run.py)
    sample_axes = {"ledger_*": 1}  # (layers, samples)
    aggregate = {"*_rel_error": "max", "min_input_relevance_fraction": "min", "canonization_output_change": "max",
                 "ledger_closes": "max", "canonization_keeps_output": "max", "input_share": "min", "layer:*": "max",
                 "canonized": "max", "explained_logit": "first", "*_class": "first", "ledger_layers": "first",
                 "randomized_layers": "first"}

    def run(self, model, data, config, ctx):
        card, module = model.card, model.module
        if not card.class_names:
            raise UnsupportedModelError(f"{card.id} has no class logits to explain", "pick a classifier")
        # here, not with the class: canonizers.py is built on zennit (~1.2 s to import, through torchvision), and
        # listing analyzers or running another one must not pay it (issue 21; tests/cli/test_startup.py)
        from analyzers._shared.canonizers import bake_parametrizations

        dtype = torch.float64 if config.dtype == "float64" else torch.float32
        # the runner hands this analyzer a private copy (mutates_model): a parametrized layer (EEGNet's max-norm
        # conv) becomes a plain one with the same weight, so the BatchNorm after it can be merged into it
        baked = bake_parametrizations(module) if config.canonize else []
        module.to(dtype)
        x = data.x.to(dtype)
        ctx.progress(0.05, "forward pass (canonization check)")
        k = canonization_check_rows(x.shape[0])
        with torch.no_grad():
            before = module(x[:k])  # the un-canonized model, on the check's budget of samples

        def choose(logits: torch.Tensor) -> torch.Tensor:  # the class, from the LRP pass's own forward
            if config.target >= logits.shape[1]:
                raise ConfigError(f"target {config.target} is not a class of {card.id} (0..{logits.shape[1] - 1})")
            return logits.argmax(1) if config.target < 0 else torch.full_like(logits[:, 0], config.target).long()

        job = Pass(x, choose, input_bounds(card, x), config)
        ctx.progress(0.15, f"LRP ({config.composite})")
        plan, exp = self._explain(module, job)
        job, target, logits = replace(job, target=exp.target), exp.target, exp.logits
        ctx.progress(0.6, "ledger")
        arrays, metrics, checks, info = self._ledger(exp, before, config, plan)
        info["parametrizations_baked"] = baked
        info["canonization_checked_samples"] = k  # which samples the canonization check ran on: the first k
        out = Findings(metrics, checks, arrays, info)
        out.arrays.update(input_display=data.display, relevance=_map(exp.relevance, card.kind),
                          target=target.cpu().numpy(), logits=logits.detach().float().cpu().numpy())
        out.metrics.update(target_class=float(target[0]), predicted_class=float(logits[0].argmax()))
        out.merge(_bounds_findings(job.bounds, config.composite, card.kind))
        if config.quality:
            ctx.progress(0.65, "quality panel: deletion and insertion curves")
            drawn = torch.as_tensor(out.arrays["relevance"]).to(x.device)
            explain = {"lrp": self._explainer(job, card.kind)} if config.quality_randomization else None
            out.merge(quality_panel(module, x, {"lrp": drawn}, target, step=config.quality_step, seed=ctx.seed,
                                    rows_per_forward=max(16, ctx.batch_size), road=config.quality_road,
                                    explain=explain))
        if config.sanity_check and exp.relevance[0].numel() >= MIN_ELEMENTS_FOR_SANITY:
            ctx.progress(0.7, "randomization sanity check")
            out.merge(self._sanity(module, job, out.arrays["relevance"], ctx.seed, card.kind))
        names = list(card.class_names)
        out.info.update(ids=data.ids, labels=data.labels, kind=card.kind, trained=bool(card.trained),
                        target_names=[names[int(t)] if int(t) < len(names) else str(int(t)) for t in target],
                        composite=config.composite, dtype=config.dtype)  # dtype: the pass's, read by provenance
        return out.result(LRPResult, "lrp")

    @staticmethod
    def _explain(module, job: Pass):
        # make_composite is looked up in this module at call time: the one seam where the rule set is chosen
        # (tests/reliability/test_mutations.py plants wrong rules here)
        config = job.config
        plan = plan_canonization(module) if config.canonize else None
        canonizers = plan.canonizers if plan is not None else []
        composite = make_composite(config.composite, job.bounds.low, job.bounds.high, epsilon=config.epsilon,
                                   stabilizer=config.stabilizer, canonizers=canonizers)
        return plan, explain(module, composite, job.x, job.target)

    @classmethod
    def _explainer(cls, job: Pass, kind: str) -> Callable:
        """``fn(module, x, target) -> map`` for eMPRT and the random-logit test: the drawn map (:func:`_map`) of
        the same pass (composite, canonizers planned on ``module``, z^B bounds) for the classes ``target``."""
        def fn(module, x, target):
            return torch.as_tensor(_map(cls._explain(module, replace(job, x=x, target=target))[1].relevance, kind))

        return fn

    @staticmethod
    def _ledger(exp: Explanation, before, config, plan):
        """Metrics, checks, arrays and info of the conservation ledger (per sample and per layer). ``before``:
        (M, K) logits of the un-canonized model for the first M samples."""
        problems = list(plan.problems) if plan is not None else ["canonization switched off (control)"]
        problems += [f"BatchNorm {n} was not merged" for n in exp.unmerged if not any(n in p for p in problems)]
        notes = list(plan.notes) if plan is not None else []
        metrics = ledger_metrics(exp, before)
        closes = metrics["conservation_rel_error"] <= LEDGER_TOL
        untraced = [p for p in problems if p.startswith(UNTRACED)]
        if untraced and len(untraced) == len(problems) and closes:
            # what the trace would have verified is checked after the pass instead: every BatchNorm is the
            # identity inside the composite (exp.unmerged empty), and an addition left without a rule would
            # make the ledger leak; canonization_keeps_output checks the merges kept the output
            problems = []
            notes.append("not traced by torch.fx: BatchNorm merged by module order and checked (none left "
                         "unmerged), residual additions checked by the ledger (it closes)")
        checks = ledger_checks(exp, metrics, problems, notes, 1e-10 if config.dtype == "float64" else 1e-4,
                               checked=before.shape[0])
        arrays = {"ledger_r_out": exp.r_out, "ledger_r_in": exp.r_in, "ledger_gap": exp.gap,
                  "explained_logit": exp.target_logit, "input_relevance": exp.input_total,
                  "absorbed_total": exp.absorbed.sum(0), "leak": exp.leak}
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

    def _sanity(self, module, job: Pass, relevance: np.ndarray, seed: int, kind: str) -> Findings:
        """Adebayo et al.: re-initialize the top layers; the map must change (Spearman of |map| < 0.5)."""
        rnd = randomized_copy(module, job.config.randomize_layers, seed)
        _, exp = self._explain(rnd.module, job)
        b = _map(exp.relevance, kind)
        rho = mean_spearman_abs(relevance, b)
        out = Findings(metrics={"sanity_rank_corr": rho, "randomized_layers": float(rnd.n_layers)},
                       arrays={"rand_relevance": b}, info={"randomized_layer_names": rnd.layers})
        out.check("randomization", rho < RHO_THRESHOLD, rho, RHO_THRESHOLD,
                  f"Spearman rank correlation of |relevance| after re-initializing {rnd.n_layers} layer(s) from "
                  "the top; a map that survives randomization does not depend on what was learned")
        return out


def _bounds_findings(bounds: InputBounds, composite: str, kind: str) -> Findings:
    """Where the z^B bounds came from (info), and, where the composite uses them on an image, a check that
    they are the card's pixel domain rather than the batch's range (a silent fallback otherwise)."""
    out = Findings(info={"input_bounds": bounds.source, "input_bounds_note": bounds.note})
    if composite in BOX_COMPOSITES and kind == "image2d":
        out.check("input_bounds_from_preprocessing", bounds.source == "card preprocessing", None, None,
                  bounds.note or "z^B bounds: the card's preprocessing of an all-black and an all-white picture")
    return out
