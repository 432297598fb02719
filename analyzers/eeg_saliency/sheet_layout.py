"""How EEG saliency recognises ICLabel's feature sheet (models/eeg_iclabel.py), without torch, so pages and the
analyzer's ``accepts`` can ask it cheaply: an image2d card whose ``extra['input_layout']`` says "iclabel_sheet"
and whose input is (1, 34, 100). The card's declaration decides, never its id."""

from __future__ import annotations

LAYOUT = "iclabel_sheet"  # the card's extra['input_layout'] and the emotiv.ica samples' meta['layout']
SHEET = (1, 34, 100)


def is_sheet(card) -> bool:
    """Whether ``card`` takes ICLabel's feature sheet (see the module doc)."""
    return (getattr(card, "kind", "") == "image2d" and dict(getattr(card, "extra", {}) or {}).get("input_layout")
            == LAYOUT and tuple(getattr(card, "input_shape", ())) == SHEET)
