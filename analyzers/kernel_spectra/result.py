"""The kernel_spectra result: figures grouped by tab (singular values, frequency, ESD, NTK, locality) and
per-layer figures for the page's layer picker, all from stored arrays.

Arrays (L = conv + linear layers in execution order, C = conv layers):
``layer_sigma_fft`` / ``layer_sigma_zero`` / ``layer_sigma_folded`` / ``layer_dense_err`` (L,) float64,
``layer_is_conv`` (L,) int8; ``svmap_<j>`` float32 (*grid) sigma_max per output frequency of conv j;
``sv_hist`` (C, B) counts over ``sv_hist_edges`` (B+1,) in log10(sigma); ``freq_radial`` (C, nfft/2+1) mean
filter power over radial frequency ``freq_radial_cpsample`` (cycles/sample); ``freq_band_energy`` (C, 3);
``layer_fs`` (C,) Hz (0 = unknown); ``filters_<j>`` / ``filter_spectra_<j>``; ``esd_evals`` /
``esd_rand_evals`` with ``*_offsets`` (L+1,); ``esd_alpha``, ``esd_xmin``, ``esd_D``, ``esd_n_tail``, ``esd_flag``,
``esd_rand_alpha``, ``esd_NM`` (L, 2) ...; ``ntk_eigs`` (n,) descending (Gram eigenvalues), ``ntk_eigs_init``,
``ntk_cumtrace``; locality: ``ns``, ``dims``, ``curve_local`` / ``curve_global`` (D, m), slopes.
"""

from __future__ import annotations

import numpy as np

from analyzers.kernel_spectra import figures as kf
from analyzers.kernel_spectra.esd import UNRELIABLE, fitted
from workbench.core.result import Result

MAX_REPORT_LAYERS = 6
TABS = ("Singular values", "Frequency responses", "ESD", "NTK", "Locality experiment")


def _spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when n <= k)."""
    return list(range(n)) if n <= k else sorted({int(round(i)) for i in np.linspace(0, n - 1, k)})


class KernelSpectraResult(Result):
    """Figures come in groups (one per page tab); ``figures()`` is their concatenation for reports."""

    # -- helpers -----------------------------------------------------------------------------------
    @property
    def layers(self) -> list[str]:
        return list(self.info.get("layers", []))

    @property
    def conv_layers(self) -> list[str]:
        return list(self.info.get("conv_layers", [n for n, k in zip(self.layers, self.info.get("layer_kinds", []),
                                                                   strict=False) if k == "conv"]))

    def esd_layer(self, i: int) -> tuple:
        off, roff = self.arrays["esd_evals_offsets"], self.arrays["esd_rand_evals_offsets"]
        fit = {"ok": fitted(self.arrays["esd_flag"][i]), "alpha": float(self.arrays["esd_alpha"][i]),
               "xmin": float(self.arrays["esd_xmin"][i]), "n_tail": int(self.arrays["esd_n_tail"][i])}
        title = f"{self.layers[i]}: alpha {fit['alpha']:.2f}" if fit["ok"] else f"{self.layers[i]}: no fit"
        if self.arrays["esd_flag"][i] == UNRELIABLE:
            title += " (unreliable: few eigenvalues)"
        return (title, self.arrays["esd_evals"][off[i]:off[i + 1]],
                self.arrays["esd_rand_evals"][roff[i]:roff[i + 1]], fit, tuple(self.arrays["esd_NM"][i]))

    # -- per-layer figures (the page's layer picker) ------------------------------------------------
    def sv_map_figure(self, conv_indices: list[int]):
        maps = [(self.conv_layers[j], self.arrays[f"svmap_{j}"]) for j in conv_indices if f"svmap_{j}" in self.arrays]
        return kf.sv_maps(maps, "Largest singular value per frequency, sigma_max(u, v) (FFT method, circular)") \
            if maps else None

    def filter_figure(self, j: int):
        if f"filters_{j}" not in self.arrays:
            return None
        fs = float(self.arrays["layer_fs"][j]) if "layer_fs" in self.arrays else 0.0
        return kf.filter_gallery(self.conv_layers[j], self.arrays[f"filters_{j}"], self.arrays[f"filter_spectra_{j}"],
                                 fs if self.info.get("kind") != "image2d" else 0.0)

    def esd_figure(self, indices: list[int]):
        items = [self.esd_layer(i) for i in indices]
        return kf.esd_grid(items) if items else None

    # -- grouped figures ---------------------------------------------------------------------------
    def figure_groups(self) -> dict[str, list]:
        if self.info.get("mode") == "locality":
            return {"Locality experiment": self._locality_figures()}
        groups = {"Singular values": self._sv_figures(), "Frequency responses": self._freq_figures(),
                  "ESD": self._esd_figures(), "NTK": self._ntk_figures()}
        return {k: [f for f in v if f is not None] for k, v in groups.items() if any(f is not None for f in v)}

    def figures(self) -> list:
        return [f for figs in self.figure_groups().values() for f in figs]

    def _sv_figures(self) -> list:
        a = self.arrays
        if "layer_sigma_fft" not in a:
            return []
        note = self.info.get("lipschitz_note", "")
        bound = self.metrics.get("lipschitz_bound", float("nan"))
        title = f"Spectral norm per layer · network Lipschitz bound {bound:.4g} ({note})"
        figs = [kf.spectral_norms(self.layers, a["layer_sigma_fft"], a["layer_sigma_zero"], a["layer_sigma_folded"],
                                  title)]
        pads = iter(self.info.get("padding", []))
        notes = [next(pads, "") if k == "conv" else "dense layer: exact SVD" for k in self.info.get("layer_kinds", [])]
        figs.append(kf.layer_table(self.layers, self.info.get("input_sizes", []),
                                   {"sigma FFT (circular)": a["layer_sigma_fft"],
                                    "sigma exact (own padding)": a["layer_sigma_zero"],
                                    "sigma BN folded": a["layer_sigma_folded"],
                                    "dense check |diff|/sigma": a["layer_dense_err"]}, notes))
        if "sv_hist" in a:
            figs.append(kf.sv_histograms(self.conv_layers, a["sv_hist"], a["sv_hist_edges"]))
        figs.append(self.sv_map_figure(_spread(len(self.conv_layers), MAX_REPORT_LAYERS)))
        return figs

    def _freq_figures(self) -> list:
        a = self.arrays
        if "freq_radial" not in a:
            return []
        convs = self.conv_layers
        figs = [kf.band_energy(convs, a["freq_band_energy"]),
                kf.radial_curves(convs, a["freq_radial"], a["freq_radial_cpsample"], a["layer_fs"],
                                 self.info.get("kind", "image2d"))]
        first = next((j for j in range(len(convs)) if f"filters_{j}" in a), None)
        if first is not None:
            figs.append(self.filter_figure(first))
        return figs

    def _esd_figures(self) -> list:
        a = self.arrays
        if "esd_alpha" not in a:
            return []
        figs = [kf.alpha_bars(self.layers, a["esd_alpha"], a["esd_flag"].astype(int), a["esd_rand_alpha"],
                              self.info.get("esd_flags", []))]
        shown = [i for i in range(len(self.layers)) if fitted(a["esd_flag"][i])]
        if shown:
            figs.append(self.esd_figure([shown[i] for i in _spread(len(shown), MAX_REPORT_LAYERS)]))
        return figs

    def _ntk_figures(self) -> list:
        a = self.arrays
        if "ntk_eigs" not in a:
            return []
        n = int(self.info.get("ntk_n", a["ntk_eigs"].size))
        trained = "trained" if self.info.get("trained", True) else "model"
        eigs, slopes = {trained: a["ntk_eigs"]}, {}
        if "ntk_spectrum_slope" in self.metrics:
            slopes[trained] = self.metrics["ntk_spectrum_slope"]
        if "ntk_eigs_init" in a:
            eigs["at initialisation"] = a["ntk_eigs_init"]
            if "ntk_spectrum_slope_init" in self.metrics:
                slopes["at initialisation"] = self.metrics["ntk_spectrum_slope_init"]
        figs = [kf.ntk_spectrum(eigs, n, slopes)]
        if "ntk_cumtrace" in a:
            curves = {trained: a["ntk_cumtrace"]}
            if "ntk_eigs_init" in a and a["ntk_eigs_init"].size == a["ntk_eigs"].size:
                e0 = np.clip(a["ntk_eigs_init"], 0, None)
                curves["at initialisation"] = np.cumsum(e0) / max(e0.sum(), 1e-300)
            figs.append(kf.cumulative_trace(curves))
        return figs

    def _locality_figures(self) -> list:
        a = self.arrays
        mlp_curves = (a["mlp_curve_local"], a["mlp_curve_global"])
        mlp_slopes = (float(a["mlp_slope_local"]), float(a["mlp_slope_global"]))
        figs = [kf.learning_curves(a["ns"], a["dims"].astype(int), a["curve_local"], a["curve_global"], mlp_curves,
                                   (a["slope_local"], a["slope_global"])),
                kf.slopes_vs_dim(a["dims"].astype(int), a["slope_local"], a["slope_global"], mlp_slopes)]
        names = self.info.get("arch_names", [])
        if "arch_eigs" in a and len(names) == a["arch_eigs"].shape[0]:
            eigs = dict(zip(names, a["arch_eigs"], strict=True))
            slopes = {nm: self.metrics[f"ntk_slope_{i}"] for i, nm in enumerate(names)
                      if f"ntk_slope_{i}" in self.metrics}
            figs.append(kf.ntk_spectrum(eigs, int(a["arch_eigs"].shape[1]), slopes,
                                        f"NTK spectra of architectures at d={int(a['dims'][-1])} (initialisation)"))
        return figs

    # -- text --------------------------------------------------------------------------------------
    def summary(self) -> str:
        m = self.metrics
        if self.info.get("mode") == "locality":
            return (f"Kernel regression with the empirical NTK of a hierarchical CNN (s={self.info.get('s')}, "
                    f"depths {self.info.get('depths')}): at the largest depth the one-patch target's learning "
                    f"curve slope is {m['slope_local']:.2f} against {m['slope_global']:.2f} for the global target; "
                    f"the local slope moved by {m['slope_local_change']:.2f} between the two largest depths while "
                    f"the global slope flattened by {m['slope_global_change']:.2f} over the range. The MLP control "
                    f"gives {m['slope_local_mlp']:.2f} (local) and {m['slope_global_mlp']:.2f} (global).")
        parts = []  # a few short lines, the numbers that matter first
        if "lipschitz_bound" in m:
            cert = "certified" if m.get("lipschitz_certified") else "estimate, not certified"
            parts.append(f"Lipschitz bound: {m['lipschitz_bound']:.4g} ({cert})")
        if "fft_vs_dense_max_error" in m:
            parts.append(f"FFT vs dense singular values: max relative error {m['fft_vs_dense_max_error']:.1e}")
        if "mean_alpha" in m:
            weak = int(m.get("esd_layers_unreliable", 0))
            parts.append(f"Mean ESD alpha: {m['mean_alpha']:.2f} over {self.info.get('mean_alpha_over', 'fits')} "
                         f"({int(m['esd_layers_fitted'])} layers fitted"
                         + (f", {weak} unreliable: < 50 eigenvalues" if weak else "") + f"; "
                         f"{int(m['layers_over_trained'])} below 2, {int(m['layers_under_trained'])} above 6)")
        if "ntk_top_eig" in m:
            parts.append(f"NTK top eigenvalue: {m['ntk_top_eig']:.4g} on {self.info.get('ntk_n')} inputs"
                         + (f" (trace check {m['ntk_trace_check']:.1e})" if "ntk_trace_check" in m else ""))
        if not self.info.get("trained", True):
            parts.append("Untrained model (seeded random weights)")
        return "  \n".join(parts)
