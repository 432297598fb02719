"""What attribution needs beyond pictures for 1-D signal models (cards of kind ``signal1d``, input (N, C, T)):
Grad-CAM's layer, the deepest convolution whose output keeps a time axis, and what the figures show of the
signal (its sampling rate, and a pitch model's predicted pitch in Hz).

Grad-CAM's layer is found by one probing forward of a single sample with a hook on every convolution, since a
layer's output length is not in the module's declaration: a Conv1d gives (N, C', L), and a Conv2d over a
"time x 1" picture (CREPE reshapes its frame to (N, 1, 1024, 1) and convolves with (k, 1) kernels) gives
(N, C', L, 1). A layer keeps a time axis when exactly one of its spatial axes is over 1.
"""

from __future__ import annotations

import torch

from workbench.core.errors import ConfigError, UnsupportedModelError

CONVS = (torch.nn.Conv1d, torch.nn.Conv2d)


def time_lengths(module: torch.nn.Module, x: torch.Tensor, names: list[str]) -> dict[str, int]:
    """name -> the length of the time axis of that module's output for one sample of ``x`` (0 = no single time
    axis), from one forward without grad."""
    mods, found, hooks = dict(module.named_modules()), {}, []

    def keep(name):
        def hook(_m, _args, out):
            if torch.is_tensor(out) and name not in found:
                spatial = [d for d in out.shape[2:] if d > 1]
                found[name] = spatial[0] if len(spatial) == 1 and out.dim() >= 3 else 0
        return hook

    for n in names:
        hooks.append(mods[n].register_forward_hook(keep(n)))
    try:
        with torch.no_grad():
            module(x[:1])
    finally:
        for h in hooks:
            h.remove()
    return {n: found.get(n, 0) for n in names}


def gradcam_layer(module: torch.nn.Module, card, name: str, x: torch.Tensor) -> str:
    """Grad-CAM's layer on a signal model: ``name`` if given (checked: its output must keep a time axis), else
    the card's first layer of interest that keeps one, else the deepest convolution that keeps one."""
    mods = dict(module.named_modules())
    convs = [n for n, m in mods.items() if isinstance(m, CONVS)]
    if name:
        if name not in mods:
            raise ConfigError(f"gradcam_layer {name!r} is not a module of {card.id}", f"e.g. {', '.join(convs[-4:])}")
        if time_lengths(module, x, [name])[name] < 1:
            raise ConfigError(f"gradcam_layer {name!r} of {card.id} has no time axis in its output",
                              "name a convolution over time")
        return name
    ranked = [n for n in card.layers_of_interest if n in mods] + convs[::-1]
    lengths = time_lengths(module, x, list(dict.fromkeys(ranked)))
    keeps = [n for n in ranked if lengths[n] >= 2]  # a time axis of length 1 cannot say where anything is
    if not keeps:
        raise UnsupportedModelError(f"{card.id} has no convolution that keeps a time axis for Grad-CAM",
                                    "drop grad_cam from method, or name a layer with gradcam_layer=NAME")
    return keeps[0]


def is_pitch_card(card) -> bool:
    """A CREPE card (torchcrepe's pitch bins as classes): its classes are pitches the figures can name in Hz."""
    return str(card.architecture).lower().startswith("crepe") or \
        str((card.extra or {}).get("package", "")).startswith("torchcrepe")


def signal_info(card, target: torch.Tensor, predicted: torch.Tensor) -> dict:
    """What the 1-D figures read: ``sampling_rate`` (Hz or None: then the axis is in samples) and, on a pitch
    card, ``pitch_hz`` / ``target_pitch_hz`` (N,) of the predicted and the explained bin, from torchcrepe's
    cents mapping without its dither (workbench.data.tones.bin_frequency restates it in numpy)."""
    out: dict = {"sampling_rate": float(card.sampling_rate) if card.sampling_rate else None}
    if is_pitch_card(card):
        from workbench.data.tones import bin_frequency

        out["pitch_hz"] = [float(f) for f in bin_frequency(predicted.cpu().numpy())]
        out["target_pitch_hz"] = [float(f) for f in bin_frequency(target.cpu().numpy())]
    return out
