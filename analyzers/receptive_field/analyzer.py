"""Receptive fields: the exact theoretical RF of every layer of any traceable CNN graph, a gradient
probe that cross-checks it, the effective RF (Luo et al. 2016) with RepLKNet's high-contribution
area ratio (Ding et al. 2022), and Luo's sqrt(n) growth-law experiment.

References: Araujo, Norris & Sim (Distill 2019) for the recurrence; Luo, Li, Urtasun & Zemel
(NeurIPS 2016) for the ERF; Ding et al. (CVPR 2022), ``erf/`` scripts, for the aggregation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from analyzers._shared.findings import Findings
from analyzers.receptive_field import erf as rf_erf
from analyzers.receptive_field.box import FLAT, GLOBAL, KIND_CODE, LOCAL
from analyzers.receptive_field.erf import Span
from analyzers.receptive_field.graph import RFAnalysis, Row, analyze, trace, truncated
from analyzers.receptive_field.growth import ACTIVATIONS, Stack, growth_experiment
from analyzers.receptive_field.ops import tensor_shape
from analyzers.receptive_field.probe import clipped, probe_network, probe_size, run_probe
from analyzers.receptive_field.result import ReceptiveFieldResult
from workbench.core import Analyzer, Check, option, register_analyzer
from workbench.core.errors import ConfigError

EXPONENT_TARGET, EXPONENT_TOL = 0.5, 0.1
OUTSIDE_TOL = 1e-6  # ERF mass allowed outside the theoretical box (float rounding only)


@dataclass(frozen=True)
class ReceptiveFieldConfig:
    experiment: str = option("model", "model: RF table, probe and ERF of the chosen model; erf_growth: Luo et "
                                      "al.'s random 3x3 conv stacks (needs no model)",
                             choices=("model", "erf_growth"))
    layer: str = option("", "module path of the layer to study (layer4, features, features.conv4, ...); "
                            "empty = the card's first layer of interest, else the last spatial layer")
    input_size: int = option(0, "input side in pixels (time samples for 1-D/EEG) for the RF table and the ERF; "
                                "0 = the model's own size; RepLKNet's protocol uses 1024", min=0, max=2048)
    probe: bool = option(True, "cross-check the analytic RF with a gradient probe (max-pool -> avg-pool, "
                               "constant positive weights, float64)")
    probe_max_size: int = option(1024, "largest probe input side in pixels; the probe is skipped when the RF "
                                       "needs more", min=16, max=4096)
    erf: bool = option(True, "measure the effective RF: mean input gradient of the layer's centre unit")
    erf_method: str = option("replknet", "replknet: ReLU'd centre features summed, ReLU'd gradient (the "
                                         "area-ratio protocol); luo: plain centre sum, |gradient|",
                             choices=("replknet", "luo"))
    n_images: int = option(16, "inputs averaged for the ERF (RepLKNet uses 50: the 'paper' preset); 0 = every "
                               "sample the data id "
                               "names (a whole set such as digits:test, in measured chunks with progress and "
                               "cancel)", min=0, max=100000)
    fill: str = option("augment", "when the data has fewer inputs than n_images: augment = random resized "
                                  "crops and flips of them, noise = standard-normal inputs (Luo et al.), "
                                  "repeat", choices=("augment", "noise", "repeat"))
    compare_untrained: bool = option(True, "also measure the ERF with the architecture's fresh random weights "
                                           "(skipped when the model is itself untrained)")
    depths: str = option("5,10,20,40", "erf_growth: comma-separated stack depths n (2 or more, each 1-200)")
    growth_channels: int = option(16, "erf_growth: channels per conv layer", min=1, max=128)
    growth_draws: int = option(10, "erf_growth: independent weight draws averaged per depth", min=1, max=100)
    growth_activation: str = option("relu", "erf_growth: nonlinearity between the convs", choices=ACTIVATIONS)
    growth_weights: str = option("random", "erf_growth: random (Kaiming Gaussian, map = mean squared gradient) "
                                           "or uniform (1/(9C), linear: sigma = sqrt(2n/3) exactly)",
                                 choices=("random", "uniform"))


def parse_depths(text: str) -> list[int]:
    try:
        depths = sorted({int(p) for p in text.replace(" ", "").split(",") if p})
    except ValueError:
        raise ConfigError(f"depths={text!r} is not a list of integers", "e.g. 5,10,20,40") from None
    if len(depths) < 2 or depths[0] < 1 or depths[-1] > 200:
        raise ConfigError(f"depths={text!r} needs two or more distinct depths in 1..200", "e.g. 5,10,20,40")
    return depths


def input_shape(card, size: int) -> tuple:
    """(C, *spatial) the analysis runs at: ``size`` replaces every image axis, or the time axis only."""
    shape = tuple(int(s) for s in card.input_shape)
    if size <= 0:
        return shape
    if card.kind == "image2d":
        return (shape[0],) + (size,) * (len(shape) - 1)
    return shape[:-1] + (size,)


def _axis_names(card, n: int) -> list[str]:
    if card.kind == "image2d" and n == 2:
        return ["height", "width"]
    return ["time"] if n == 1 else [f"axis{a}" for a in range(n - 1)] + ["time"]


def _table(an: RFAnalysis) -> dict:
    """Per-row arrays (L, S): size, jump, start, effective padding (-1 / 0 where not local)."""
    n, s = len(an.rows), an.n_axes
    out = {k: np.full((n, s), -1.0) for k in ("rf_size", "rf_jump", "rf_eff_padding")}
    out["rf_start"] = np.zeros((n, s))
    out["rf_kind"] = np.array([KIND_CODE[r.box.kind] for r in an.rows], dtype=np.int8)
    out["rf_approx"] = np.array([int(r.box.approx) for r in an.rows], dtype=np.int8)
    for i, r in enumerate(an.rows):
        if r.box.kind == LOCAL and len(r.box.r) == s:
            out["rf_size"][i], out["rf_jump"][i] = r.box.r, r.box.j
            out["rf_start"][i], out["rf_eff_padding"][i] = r.box.start, r.box.eff_padding
        elif r.box.kind == FLAT and r.box.r:
            out["rf_size"][i] = max(r.box.r)
    return out


@dataclass(frozen=True)
class Studied:
    """The layer under study: the traced model's analysis ``an``, the layer's ``row`` and the model input
    shape (C, *spatial) it was traced at."""

    an: RFAnalysis
    row: Row
    shape: tuple


@register_analyzer
class ReceptiveField(Analyzer):
    name = "receptive_field"
    title = "Receptive fields"
    description = ("Exact theoretical receptive field of every layer of any CNN graph (residual adds, "
                   "concatenations, dilation, padding; global layers flagged), cross-checked by a "
                   "gradient probe; the effective RF with RepLKNet's area ratio; Luo's sqrt(n) growth law.")
    paper = "Araujo et al. 2019 (Distill); Luo et al. 2016; Ding et al. 2022 (RepLKNet)"
    Config = ReceptiveFieldConfig
    result_class = ReceptiveFieldResult
    page = "receptive_field.py"  # hand-written page: any torchvision architecture, layer picker, growth tab
    supports = ("image2d", "signal1d", "eeg")
    libraries = ("pillow",)
    smoke_config = {"n_images": 4}
    # the default ERF averages 16 inputs (resnet50 with its untrained control: under a minute on 2 CPU cores);
    # RepLKNet's 50 is one click away
    presets = {"paper": {"about": "paper scale: ERF over 50 inputs as in RepLKNet (~3 min on a 2-core CPU for "
                                  "resnet50, seconds on a GPU)", "config": {"n_images": 50}}}

    @staticmethod
    def work_units(config: dict) -> float:
        """ERF inputs: the run's time is about proportional to them (used to extrapolate estimates)."""
        return float(config.get("n_images", 1)) if config.get("erf", True) else 1.0
    headline_check = None
    headline_reason = ("the theoretical receptive field is a property of the architecture, and the ERF check (no "
                       "gradient outside the theoretical box) holds for any weights")
    exclusive = True  # traces with torch.fx / make_fx (process-global patching)
    tasks = ("classification", "image2image")  # structure only: any output map has receptive fields
    mutates_model = False  # the probe and the untrained ERF work on private copies
    needs_data = True
    needs_model = False  # experiment=erf_growth builds its own networks
    # not per_sample: the ERF is a statistic of a set of inputs (the mean gradient map over N images), not a
    # per-image explanation; a data id naming a whole set (digits:test) is averaged over with n_images=0,
    # chunked by erf_map (measured chunk, progress and cancel between chunks)
    per_sample = False

    def run(self, model, data, config, ctx):
        if config.experiment == "erf_growth":
            return self._growth(config, ctx)
        if model is None:
            raise ConfigError("experiment=model needs a model", "give --model ID, or --set experiment=erf_growth")
        card = model.card
        shape = input_shape(card, config.input_size)
        ctx.progress(0.01, "tracing the graph")
        an = analyze(model.module, shape)
        row = an.find(config.layer) if config.layer else an.default_layer(tuple(card.layers_of_interest))
        res = Findings(arrays=_table(an), info=self._info(an, row, card, shape))
        self._theory(an, row, card, res)
        ctx.progress(0.05, "theoretical RF done")
        if config.probe:
            self._probe(an, row, shape, config, res)
        ctx.progress(0.25, "probe done")
        if config.erf and data is not None:
            self._erf(model, Studied(an, row, shape), data, config, ctx, res)
        return res.result(ReceptiveFieldResult, "receptive_field")

    # -- theory -------------------------------------------------------------------------------
    @staticmethod
    def _info(an: RFAnalysis, row: Row, card, shape: tuple) -> dict:
        return {"experiment": "model", "layer": row.name, "layer_index": an.rows.index(row) if row in an.rows
                else -1, "layer_kind": row.box.kind, "layer_names": [r.name for r in an.rows],
                "layer_ops": [r.op for r in an.rows], "axis_names": _axis_names(card, an.n_axes),
                "input_shape": list(shape), "kind": card.kind, "trained": bool(card.trained),
                "sampling_rate": card.sampling_rate, "warnings": list(an.warnings),
                "layer_shape": list(tensor_shape(row.node) or ())}

    @staticmethod
    def _theory(an: RFAnalysis, row: Row, card, res: Findings) -> None:
        m, box = res.metrics, row.box
        m["rf_global"] = float(box.kind == GLOBAL)
        m["rf_approximate"] = float(box.approx)
        if box.kind == LOCAL:
            a = int(np.argmax(box.r))
            m.update(rf_size=box.r[a], rf_jump=box.j[a], rf_start=box.start[a], rf_eff_padding=box.eff_padding[a])
            if len(box.r) == 2:
                for i, ax in enumerate(("h", "w")):
                    m.update({f"rf_size_{ax}": box.r[i], f"rf_jump_{ax}": box.j[i], f"rf_start_{ax}": box.start[i]})
            shape = tensor_shape(row.node)
            unit = [int(shape[t]) // 2 for t in box.dims] if shape else [0] * len(box.r)
            centre = np.array(box.start) + np.array(unit) * np.array(box.j)
            res.arrays["trf_box_lo"] = centre - (np.array(box.r) - 1) / 2
            res.arrays["trf_box_hi"] = centre + (np.array(box.r) - 1) / 2
        else:
            m.update(rf_size=-1.0, rf_jump=-1.0, rf_start=-1.0, rf_eff_padding=-1.0)
            if box.kind == FLAT and box.r:
                m["rf_size"] = max(box.r)
        fs = card.sampling_rate
        if fs and card.kind in ("signal1d", "eeg"):
            t = res.arrays
            ok = t["rf_kind"] == 0
            t["rf_size_ms"] = np.where(ok, t["rf_size"][:, -1] / fs * 1000, -1.0)
            t["rf_jump_ms"] = np.where(ok, t["rf_jump"][:, -1] / fs * 1000, -1.0)
            if box.kind == LOCAL:
                m.update(rf_size_ms=box.r[-1] / fs * 1000, rf_jump_ms=box.j[-1] / fs * 1000)

    # -- probe --------------------------------------------------------------------------------
    @staticmethod
    def _probe(an: RFAnalysis, row: Row, shape: tuple, config, res: Findings) -> None:
        box, info = row.box, res.info
        if box.kind not in (LOCAL, GLOBAL) or not box.dims:
            info["probe_note"] = f"skipped: the layer is {box.kind} (no spatial centre unit)"
            return
        size = probe_size(box, shape[1:])
        if max(size) > config.probe_max_size:
            info["probe_note"] = (f"skipped: the probe needs an input of {size} px, above probe_max_size="
                                  f"{config.probe_max_size}")
            return
        net, swapped = probe_network(an.gm, row.node)
        try:
            for extra in (2, 6, 14):
                out = run_probe(net, box, shape[0], size, swapped)
                if not clipped(out, box):
                    break
                size = probe_size(box, shape[1:], extra)
        except RuntimeError as e:
            info["probe_note"] = f"skipped: the truncated model does not run at {size} ({str(e)[:120]})"
            return
        finally:
            del net
        res.metrics.update(probe_rf_size=float(max(out.measured)), probe_disagreement_px=out.disagreement,
                              probe_outside_px=out.outside, probe_swapped_maxpools=float(swapped))
        res.arrays.update(probe_lo=np.array(out.lo, float), probe_hi=np.array(out.hi, float),
                             probe_expected_lo=np.array(out.expected_lo, float),
                             probe_expected_hi=np.array(out.expected_hi, float),
                             probe_size=np.array(out.size, float))
        what = "the whole input (global layer)" if box.kind == GLOBAL else "the recurrence's box"
        how = (f"gradient probe at {'x'.join(map(str, out.size))} px (constant weights, float64, {swapped} "
               f"max-pool(s) swapped for average pools): non-zero support {out.measured} px vs {what}")
        if box.approx:  # fractional steps: the box is a conservative bound, the support must lie inside it
            res.checks.append(Check("probe_matches_theory", out.outside <= 1e-9, out.outside, 0.0,
                                       f"{how}; the box is a bound here (interpolation or adaptive pooling): "
                                       f"px of support outside it, slack {out.disagreement:g} px"))
        else:
            res.checks.append(Check("probe_matches_theory", out.disagreement <= 0.0, out.disagreement, 0.0,
                                       f"{how}; largest edge difference in px"))

    # -- ERF ----------------------------------------------------------------------------------
    def _erf(self, model, layer: Studied, data, config, ctx, res: Findings) -> None:
        an, row, shape = layer.an, layer.row, layer.shape
        info, box = res.info, row.box
        if not box.dims or len(set(box.dims)) != len(box.dims):
            info["erf_note"] = "skipped: the layer has no spatial dims (pick a convolutional layer)"
            return
        n = config.n_images or int(data.x.shape[0])  # 0: the data set itself (a set-level statistic)
        x, how = rf_erf.fill_inputs(data.x, shape[1:], n, config.fill, ctx.seed,
                                    flip=model.card.kind == "image2d")
        info["erf_inputs"] = how
        ctx.batch_size = _chunk_size(an, ctx)
        untrained = config.compare_untrained and model.card.trained
        stop = 0.6 if untrained else 0.97
        net = truncated(an.gm, row.node)
        m, used, skipped = rf_erf.erf_map(net, x, box.dims, config.erf_method, ctx, Span(0.25, stop, "ERF"))
        info["erf_chunk"] = int(ctx.batch_size)  # measured: images per backward pass
        self._erf_store(m, used, skipped, "", box, res)
        if data.display is not None and np.ndim(data.display) >= 3:
            res.arrays["display"] = np.asarray(data.display[0], dtype=np.float32)
        if untrained:
            rnd = _fresh_copy(model, row, ctx.seed)
            m, used, skipped = rf_erf.erf_map(rnd, x, box.dims, config.erf_method, ctx,
                                              Span(stop, 0.97, "ERF, untrained"), chunk=ctx.batch_size)
            self._erf_store(m, used, skipped, "untrained_", box, res)
            info["untrained_weights"] = "the card's architecture builder, seeded (fresh random weights)"
        elif config.compare_untrained:
            info["untrained_note"] = "the model is itself untrained (random weights): no second ERF"

    @staticmethod
    def _erf_store(m: np.ndarray, used: int, skipped: int, tag: str, box, res: Findings) -> None:
        s = rf_erf.erf_summary(m)
        met, arr = res.metrics, res.arrays
        for t, r, side in zip(rf_erf.THRESHOLDS, s["ratios"], s["sides"], strict=True):
            met[f"erf_{tag}area_ratio_t{round(t * 100)}"] = float(r)
            met[f"erf_{tag}side_t{round(t * 100)}"] = float(side)
        met[f"erf_{tag}std_px"] = float(np.sqrt(np.mean(s["std"] ** 2)))
        met[f"erf_{tag}width95_px"] = float(np.mean(s["width95"]))
        if len(s["std"]) == 2:
            met[f"erf_{tag}std_px_h"], met[f"erf_{tag}std_px_w"] = (float(v) for v in s["std"])
        if box.kind == LOCAL:
            met[f"erf_{tag}trf_ratio"] = float(np.mean(s["width95"]) / max(box.r))
        met[f"erf_{tag}images"], met[f"erf_{tag}skipped_nan"] = float(used), float(skipped)
        arr.update({f"erf_{tag}map": m.astype(np.float32), f"erf_{tag}ratios": s["ratios"],
                    f"erf_{tag}sides": s["sides"].astype(np.int64), f"erf_{tag}curve_sides": s["curve_sides"],
                    f"erf_{tag}curve_frac": s["curve_frac"], f"erf_{tag}std": s["std"],
                    f"erf_{tag}width95": s["width95"]})
        for a, p in enumerate(s["profiles"]):
            arr[f"erf_{tag}profile_{a}"] = p.astype(np.float64)
        if box.kind == LOCAL and "trf_box_lo" in arr:
            out = mass_outside(m, arr["trf_box_lo"], arr["trf_box_hi"])
            met[f"erf_{tag}mass_outside_trf"] = out
            res.checks.append(Check(
                f"erf_{tag}inside_theoretical_rf", out <= OUTSIDE_TOL, out, OUTSIDE_TOL,
                "fraction of the ERF's gradient mass outside the theoretical RF box of the same centre unit: "
                "a gradient cannot reach pixels the recurrence says the unit does not see"))

    # -- growth law -------------------------------------------------------------------------------
    @staticmethod
    def _growth(config, ctx) -> ReceptiveFieldResult:
        depths = parse_depths(config.depths)
        ctx.progress(0.02, "ERF growth experiment")
        g = growth_experiment(depths, Stack(config.growth_channels, config.growth_draws, config.growth_activation,
                                            config.growth_weights), ctx.seed, ctx)
        e = g["exponent"]
        ok = abs(e - EXPONENT_TARGET) <= EXPONENT_TOL
        check = Check("erf_growth_exponent", bool(ok), e, EXPONENT_TOL,
                      f"fitted exponent of ERF std vs depth must be 0.5 +- {EXPONENT_TOL} (Luo et al.: sqrt(n)); "
                      f"the threshold is the allowed |exponent - 0.5|")
        metrics = {"erf_depth_exponent": e, "erf_depth_coefficient": g["coefficient"],
                   "erf_depth_exponent_error": abs(e - EXPONENT_TARGET)}
        arrays = {f"growth_{k}": v for k, v in g.items() if isinstance(v, np.ndarray)}
        info = {"experiment": "erf_growth", "activation": config.growth_activation,
                "weights": config.growth_weights, "channels": config.growth_channels,
                "draws": config.growth_draws, "trained": False}
        return ReceptiveFieldResult("receptive_field", metrics=metrics, checks=[check], arrays=arrays, info=info)


def mass_outside(m: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> float:
    """Fraction of |m| (*spatial) outside the box [lo, hi] (input px per axis, clipped to the map)."""
    total = float(np.abs(m).sum())
    if total <= 0:
        return 0.0
    idx = tuple(slice(max(0, int(math.ceil(a - 1e-9))), max(0, int(math.floor(b + 1e-9)) + 1))
                for a, b in zip(lo, hi, strict=True))
    return float(max(0.0, 1.0 - np.abs(m[idx]).sum() / total))


def _chunk_size(an: RFAnalysis, ctx) -> int:
    """Images per backward pass that fit the run's memory budget (activations kept for autograd)."""
    numel = 0
    for node in an.gm.graph.nodes:
        s = tensor_shape(node)
        numel += int(np.prod(s)) if s else 0
    per_image = max(1, numel * 4 * 3)  # activation + saved tensor + gradient, float32
    return int(max(1, min(ctx.batch_size, ctx.memory_budget_mb * 2**20 // per_image)))


def _fresh_copy(model, row: Row, seed: int):
    """The same architecture with its builder's random initialisation, truncated at the same node."""
    card = model.card
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(card.seed) + 7919 * (int(seed) + 1))
        fresh = card.build()
    fresh = fresh.to(model.device).float().eval()
    gm, _ = trace(fresh)
    node = next((n for n in gm.graph.nodes if n.name == row.node.name), None)
    if node is None:
        raise ConfigError(f"the fresh {card.architecture} graph has no node {row.node.name}",
                          "set compare_untrained=false")
    return truncated(gm, node)
