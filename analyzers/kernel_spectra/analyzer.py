"""Kernel spectra: conv-operator singular values (FFT method), filter frequency responses, weight ESD
diagnostics (WeightWatcher conventions), the empirical NTK spectrum, and the seed paper's locality
experiment (kernel regression with the NTK of a hierarchical 1-D CNN).

References: Sedghi, Gupta & Long 2019 (arXiv:1805.10408); Martin & Mahoney 2021 (arXiv:1810.01075,
arXiv:2002.06716); Jacot et al. 2018 and Novak et al. 2022 (arXiv:2206.08720); Cagnetta, Favero & Wyart
2023 (arXiv:2208.01003). Formulas, traps and targets: shared/methods/linear-lrp-transfer-spectra.md §4.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analyzers.kernel_spectra.locality import LocalityPlan, locality_experiment
from analyzers.kernel_spectra.model_report import analyse_model
from analyzers.kernel_spectra.ntk import spectrum_slope
from analyzers.kernel_spectra.result import KernelSpectraResult
from workbench.core import Analyzer, Check, option, register_analyzer
from workbench.core.errors import ConfigError

PARTS = ("singular_values", "frequency", "esd")
MIN_N = 32  # smaller training sets sit before the power-law regime of the learning curves


@dataclass(frozen=True)
class KernelSpectraConfig:
    experiment: str = option("model", "model: analyse the chosen model; locality: the seed paper's learning-curve "
                                      "experiment (needs no model)", choices=("model", "locality"))
    parts: str = option(",".join(PARTS), "weight analyses to run, comma-separated", choices=PARTS, multi=True)
    nfft: int = option(32, "FFT size per axis for filter frequency responses", min=8, max=256)
    dense_check_max: int = option(1024, "check the FFT method against the dense operator's SVD on conv layers "
                                        "whose smaller side is at most this (0 = no check)", min=0, max=8192)
    norm_iters: int = option(300, "Lanczos restarts (at most) for the exact top singular value with the layer's own "
                                   "(zero) padding", min=10, max=5000)
    exact_max_dim: int = option(32768, "compute the exact top singular value (Lanczos, layer's own padding) on "
                                       "conv layers with at most this many inputs; larger layers use the FFT "
                                       "value and the Lipschitz bound becomes an estimate", min=0, max=10**8)
    min_evals: int = option(10, "ESD: skip layers with fewer eigenvalues (WeightWatcher advises 50)",
                            min=3, max=100000)
    max_evals: int = option(15000, "ESD: skip layers with more eigenvalues", min=10, max=1000000)
    ntk: bool = option(False, "compute the empirical NTK spectrum on n inputs")
    n: int = option(32, "NTK: number of inputs (the card's test split when it has one, else the data)",
                    min=2, max=4096)
    ntk_output: str = option("trace", "NTK of a multi-output model: trace = sum over logits of J_c J_c^T; "
                                      "sum = NTK of the summed logits", choices=("trace", "sum"))
    ntk_method: str = option("both", "jacobian: Gram by Jacobian contraction; lanczos: top eigenvalues by "
                                     "NTK-vector products only (large models); both: Gram plus a Lanczos "
                                     "cross-check on the first lanczos_n inputs",
                             choices=("both", "jacobian", "lanczos"))
    lanczos_k: int = option(6, "NTK: eigenvalues found by Lanczos", min=1, max=64)
    lanczos_n: int = option(32, "NTK: inputs used for the Lanczos cross-check when ntk_method=both",
                            min=4, max=4096)
    ntk_compare_init: bool = option(True, "NTK: also compute it for the same architecture at (seeded) "
                                          "initialisation, on the same inputs")
    ntk_budget_mb: int = option(256, "NTK: memory for one Jacobian block (parameters are chunked to fit)",
                                min=16, max=65536)
    s: int = option(2, "locality: filter size = stride of the hierarchical CNN", min=2, max=4)
    depths: str = option("2,3,4", "locality: depths L to compare (d = s^L inputs), comma-separated")
    width: int = option(64, "locality: channels per layer of the hierarchical CNN and the MLP control",
                        min=4, max=1024)
    n_max: int = option(512, "locality: largest training set (learning curve at n_max/16 ... n_max)",
                        min=64, max=8192)
    n_test: int = option(256, "locality: test points", min=16, max=8192)
    reps: int = option(2, "locality: repetitions (data, teacher and network draws) averaged", min=1, max=20)


def _depths(cfg) -> tuple[int, ...]:
    try:
        depths = tuple(sorted({int(p) for p in cfg.depths.split(",") if p.strip()}))
    except ValueError:
        raise ConfigError(f"depths={cfg.depths!r} is not a list of integers", "e.g. 2,3,4") from None
    if len(depths) < 2 or min(depths) < 1 or cfg.s ** max(depths) > 4096:
        raise ConfigError(f"depths={cfg.depths!r} needs two or more depths >= 1 with s^L <= 4096",
                          "e.g. 2,3,4 with s=2")
    return depths


def run_locality(cfg, ctx) -> KernelSpectraResult:
    """The seed paper's claims by kernel regression; slopes of log(error) against log(n)."""
    depths = _depths(cfg)
    ns = [cfg.n_max // 2 ** i for i in range(4, -1, -1) if cfg.n_max // 2 ** i >= MIN_N]
    plan = LocalityPlan(cfg.s, tuple(depths), cfg.width, tuple(ns), cfg.n_test, cfg.reps, ctx.seed)
    res = locality_experiment(plan, progress=ctx.sub(0.02, 0.98))
    sl, sg = res["slope_local"], res["slope_global"]
    metrics = {"slope_local": float(sl[-1]), "slope_global": float(sg[-1]),
               "slope_local_mlp": float(res["mlp_slope_local"]), "slope_global_mlp": float(res["mlp_slope_global"]),
               "slope_local_change": float(abs(sl[-1] - sl[-2])), "slope_global_change": float(sg[-1] - sg[0])}
    for L, a, b in zip(depths, sl, sg, strict=True):
        metrics[f"slope_local_L{L}"], metrics[f"slope_global_L{L}"] = float(a), float(b)
    gap_cnn, gap_mlp = float(sg[-1] - sl[-1]), float(res["mlp_slope_global"] - res["mlp_slope_local"])
    checks = [
        Check("local_steeper_than_global", bool(sl[-1] < sg[-1]), gap_cnn, 0.0,
              f"at the largest depth (d={s_pow(cfg.s, depths[-1])}) the one-patch target's learning curve falls "
              "faster than the global one's (at small d the global target is itself low-dimensional)"),
        Check("global_slope_falls_with_dimension", bool(sg[-1] > sg[0]), float(sg[-1] - sg[0]), 0.0,
              f"the global target's slope flattens from d={s_pow(cfg.s, depths[0])} to d={s_pow(cfg.s, depths[-1])}"),
        Check("locality_advantage_needs_locality", bool(gap_mlp < gap_cnn), gap_mlp, gap_cnn,
              "control: with a fully connected net's NTK the local target's advantage (global slope - local "
              "slope) shrinks below the hierarchical CNN's"),
    ]
    names = res.pop("arch_names")
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in res.items()}
    metrics.update({f"ntk_slope_{i}": spectrum_slope(e) for i, e in enumerate(arrays["arch_eigs"])})
    info = {"mode": "locality", "s": cfg.s, "depths": list(depths), "width": cfg.width, "ns": ns,
            "arch_names": names, "arch_n": int(arrays["arch_eigs"].shape[1])}
    return KernelSpectraResult("kernel_spectra", metrics=metrics, checks=checks, arrays=arrays, info=info)


def s_pow(s: int, L: int) -> int:
    return int(s ** L)


@register_analyzer
class KernelSpectra(Analyzer):
    name = "kernel_spectra"
    title = "Kernel spectra"
    description = ("Spectra of what a CNN computes: conv-operator singular values by the FFT method with the "
                   "Lipschitz bound, filter frequency responses (Hz and EEG bands for signals), weight ESDs "
                   "with power-law alpha (WeightWatcher conventions), the empirical NTK spectrum, and the "
                   "locality experiment of 'What can be learnt with wide CNNs?'.")
    paper = ("Sedghi et al. 2019; Martin & Mahoney 2021; Jacot et al. 2018; Cagnetta, Favero & Wyart 2023")
    Config = KernelSpectraConfig
    result_class = KernelSpectraResult
    page = "kernel_spectra.py"  # hand-written page: two models side by side, per-layer pickers, tabs
    supports = ("image2d", "signal1d", "eeg")
    libraries = ("scipy",)
    smoke_config = {"nfft": 16, "norm_iters": 30}
    # the defaults (weight analyses; NTK on 32 inputs when asked) take well under a minute on a small zoo
    # model; the NTK on 128 inputs at init and trained is one click away
    presets = {"paper": {"about": "every weight analysis plus the empirical NTK on 128 inputs, trained and at "
                                  "initialisation (several minutes per model on a 2-core CPU, ~1 min on a GPU)",
                         "config": {"ntk": True, "n": 128, "ntk_compare_init": True}}}

    @staticmethod
    def work_units(config: dict) -> float:
        """1 for the weight analyses plus the NTK's share, which grows with the inputs (Jacobian rows) and
        doubles with the comparison at initialisation: relative units for estimates."""
        if not config.get("ntk") or config.get("experiment", "model") != "model":
            return 1.0
        return 1.0 + int(config.get("n", 32)) / 32 * (2 if config.get("ntk_compare_init", True) else 1)
    headline_check = None
    headline_reason = ("its checks test numerical methods (FFT vs dense operator, ESD fit, NTK identities) that hold "
                       "for any weights; learned vs random shows in metrics (mean_alpha, mean_alpha_randomized)")
    exclusive = True  # traces with torch.fx / make_fx (process-global patching)
    mutates_model = False
    needs_data = True
    needs_model = False

    def run(self, model, data, config, ctx):
        if config.experiment == "locality":
            return run_locality(config, ctx)
        if model is None:
            raise ConfigError("kernel_spectra needs a model unless experiment=locality",
                              "give --model ID, or --set experiment=locality")
        metrics, checks, arrays, info = analyse_model(model, data, config, ctx)
        return KernelSpectraResult("kernel_spectra", metrics=metrics, checks=checks, arrays=arrays, info=info)
