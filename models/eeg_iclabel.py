"""ICLabel (Pion-Tonachini, Kreutz-Delgado & Makeig 2019), the pretrained EEG CNN that ships inside
mne-icalabel: it labels independent components of an EEG recording as brain, muscle, eye, heart, line
noise, channel noise or other, from three features of each component (a 32 x 32 scalp topomap, a 100-bin
power spectrum and a 100-lag autocorrelation).

The network is mne-icalabel's own ``ICLabelNet`` with its packaged weights (``ICLabelNet.pt``, read with
``torch.load(weights_only=True)`` after its sha256 is checked). The workbench's analyzers take one input
tensor per sample, so :class:`PackedICLabel` wraps it: one sample is a (1, 34, 100) "feature sheet":
rows 0-31 / columns 0-31 the topomap, columns 32-63 the negated topomap (the rest of those rows is zero and
unused), row 32 the spectrum, row 33 the autocorrelation. Its forward does what mne-icalabel's
``_format_input`` does with a batch (each component also as -topo, mirrored and -mirrored; spectra repeated)
per sample, so samples never mix, and returns the MEAN LOGIT of the 4 views. ICLabel itself averages the
4 softmax outputs; a mean of logits is what relevance can be conserved through (LRP cannot pass a softmax),
and it agrees with ICLabel's own labels (tests/models/test_models_eeg_real.py compares both on the real
recording's components).

Why -topo is part of the sheet and not computed in the forward: LRP (zennit) passes relevance through
operations without a rule by their gradient, and the gradient of a negation is -1, so the relevance of the
two negated views reached the input with its sign flipped and cancelled the other two views' share: the LRP
ledger lost 88% of the logit on the Emotiv components (input relevance 0.12 of the logit). With the negated
copy read from the sheet (and the mirrored views a permutation, which keeps relevance), the input receives
0.84-0.93 of the logit with EpsilonPlusFlat over the 13 components (float64). The rest is what the convolution
biases absorb under z+ (which keeps a positive bias in its denominator): with every bias zeroed the same pass
keeps 0.993. The lrp ledger cannot book that per layer here, because each branch runs once on the 4-view
batch (4N rows, the ledger reads N), so it reports the absorbed share as a leak.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
from pathlib import Path

from workbench.data.emotiv import pack  # noqa: F401 - the sheet layout lives with the data

ICLABEL_CLASSES = ("brain", "muscle artifact", "eye blink", "heart beat", "line noise", "channel noise", "other")
#: sha256 of mne-icalabel 0.10.0's ICLabelNet.pt
ICLABEL_SHA256 = "bccfee77d028858c855ea370b17e21b77e2f52d533775d4c54f12b168063579e"
SHEET = (1, 34, 100)
CITE_ICLABEL = ("Pion-Tonachini, L., Kreutz-Delgado, K. & Makeig, S. (2019). ICLabel: An automated "
                "electroencephalographic independent component classifier, dataset, and website. NeuroImage 198, "
                "181-197. Implementation and weights: mne-icalabel (Li, A. et al., 2022, JOSS 7(76), 4484).")


def weights_file() -> Path:
    """mne-icalabel's ICLabelNet.pt, found without importing the package (importlib.resources.files
    imports it, and mne_icalabel's __init__ pulls in mne, scipy.signal and onnx: 2.7 s of `zoo list`)."""
    spec = importlib.util.find_spec("mne_icalabel")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("mne-icalabel is not installed")
    return Path(spec.submodule_search_locations[0]) / "iclabel" / "network" / "assets" / "ICLabelNet.pt"


def file_sha256() -> str:
    return hashlib.sha256(weights_file().read_bytes()).hexdigest()


@functools.lru_cache(maxsize=1)
def packed_class():
    """The wrapper class, defined when first needed (torch loads with it, not when the zoo lists its cards)."""
    import torch
    from torch import nn

    class PackedICLabel(nn.Module):
        """ICLabelNet on (N, 1, 34, 100) feature sheets -> (N, 7) mean logits of the 4 views (see the module doc)."""

        def __init__(self) -> None:
            super().__init__()
            from mne_icalabel.iclabel.network.torch import ICLabelNet

            self.net = ICLabelNet()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            n = x.shape[0]
            topo, neg, psd, ac = x[:, :, :32, :32], x[:, :, :32, 32:64], x[:, :, 32:33, :], x[:, :, 33:34, :]
            topo4 = torch.cat([topo, neg, topo.flip(-1), neg.flip(-1)])  # mne-icalabel's _format_input (see above)
            psd4, ac4 = psd.repeat(4, 1, 1, 1), ac.repeat(4, 1, 1, 1)
            net = self.net
            # ICLabelNet.reshape_concat without its len()-based Fortran reshapes (an identity on (B, 1, 1, 100)),
            # so torch.fx can trace the model (LRP's canonizers and the receptive-field graph need that)
            out = torch.cat([net.img_conv(topo4), net.psds_conv(psd4).permute(0, 3, 1, 2).repeat(1, 1, 4, 4),
                             net.autocorr_conv(ac4).permute(0, 3, 1, 2).repeat(1, 1, 4, 4)], 1)
            return net.conv(out).reshape(4, n, 7).mean(0)  # mean logit of the 4 views (see the module doc)

    return PackedICLabel


def build():
    """A PackedICLabel with mne-icalabel's ICLabelNet inside (weights not loaded)."""
    return packed_class()()


def load_weights(model):
    """The package's weights through the one pinned-checkpoint loader (sha256 first, read once, tensors only)."""
    from workbench.io.weights import load_pinned_checkpoint

    sd = load_pinned_checkpoint(weights_file(), ICLABEL_SHA256, "install mne-icalabel==0.10.0 (requirements.txt)")
    model.net.load_state_dict(sd)
    return model.eval()
