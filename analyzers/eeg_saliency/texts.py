"""The eeg_saliency result's longer texts (shown on the page and in the summary)."""

BN_TRAP_TEXT = (
    "BatchNorm trap: Cui et al.'s network normalises with the statistics of the batch it is given, also at test "
    "time, so a window's prediction and map depend on which other windows share its batch (a window alone is "
    "normalised over its own 3 s only). This run uses {mode} statistics; with batch statistics {flip:.0%} of the "
    "windows change class and P(drowsy) moves by up to {shift:.2f} between 'in the batch' and 'alone' (alone, "
    "each map is normalised by its own time statistics, so after global average pooling every window gets the "
    "same output), while the frozen population statistics (set after training, and folded into the last layer "
    "for LRP and IG) move it by {frozen:.1e}.")
#: why LRP and IG localize less than the CAM variant (measured by analyzers/eeg_saliency/variants.py, issue 17)
WHY_TEXT = (
    "Why LRP and Integrated Gradients localize the bursts less than the CAM variant: the network averages "
    "rectified alpha-filter outputs over all 321 time steps, so alpha-band background noise adds drowsy evidence "
    "at every time step and the 'alert' filters add counter-evidence everywhere. Both methods pass that whole sum "
    "down to the signed input through signed spatial and temporal filters, which turns counter-evidence into "
    "positive input relevance outside the bursts and puts relevance on the channels the spatial filters use to "
    "cancel shared noise (posterior share about 0.6). The CAM variant keeps only the 100 strongest (map, time) "
    "entries and smooths them, which drops the background. This is a property of these methods on this network, "
    "not a bug, and it is why their checks fail here.")
#: what issue 17 changed (defects fixed) and what it measured and kept
FIXES_TEXT = (
    "Fixed (defects): (1) the scores read |relevance|, counting counter-evidence and sign-alternating noise as "
    "localized mass; they now read the positive relevance, as the relevance mass accuracy of Arras et al. 2022 "
    "and Quantus do (readout 'absolute' gives the old numbers). (2) LRP used epsilon = 1e-6, i.e. LRP-0, which on "
    "this ReLU network is exactly Gradient x Input (checked to 1e-5), so the 'LRP' map was a second gradient map; "
    "epsilon is now 0.25 x the RMS of each convolution's output per window (Montavon et al. 2019). (3) LRP and IG "
    "explained the raw drowsy logit, which carries a part common to both logits that changes no prediction; they "
    "now explain the logit difference the softmax depends on (explain = 'logit' for the old behaviour). "
    "Measured and kept: the IG baseline (zeros equal the per-channel mean, because the preprocessing removes it; "
    "a blurred baseline changes little; an alpha band-stopped baseline localizes better, but a re-initialized "
    "model then points at the bursts too, so the baseline carries the answer); LRP rules (z+ and a Flat first layer "
    "raise the mass but lose the pointing game or the channels); temporal smoothing (readout 'smoothed' raises the "
    "mass to about 0.83 for LRP and 0.77 for IG, a view, not the method).")
#: what a run on a network other than Cui et al.'s, or on data without planted truth, can still check
NO_TRUTH_TEXT = (
    "No planted truth for these windows (a real recording has none), so mass-in-bursts, posterior share and the "
    "pointing game cannot be scored. What can still be checked: the randomization control compares each map with "
    "the same map of a re-initialized model (Spearman rank correlation of |map|, must stay below 0.5), and the "
    "quality panel (option quality) measures faithfulness: deletion and insertion AUC against a random map.")
