"""EEG saliency: pick an EEG model, a subject (or a recording) and a window; see the traces with the
heat map under them, scalp topomaps, band relevance, filter responses, the checks against the planted
bursts (each map's verdict in plain words: the CAM variant localizes, LRP and IG do not), the BatchNorm trap
and, on request, leave-one-subject-out accuracy. Nothing is computed here."""

import streamlit as st

from analyzers.eeg_saliency.result import FIXES_TEXT, WHY_TEXT
from analyzers.eeg_saliency.sheet_layout import is_sheet
from pages._ui import clear_error, config_form, job_status, launch, models_for, render_result, runtime
from pages._uploads import display, eeg_path, eeg_upload
from workbench.core.analyzer import get_analyzer
from workbench.data import get_samples
from workbench.runtime import RunSpec

KEY = "eeg_saliency"
SYNTH = "eeg_synth.drowsy"
PAPER_MODEL = "eeg_compact.synth"  # Cui et al.'s compact network trained on the synthetic set: the default
SHOWN = ("methods", "bn_mode", "window", "loso")
ICA = "emotiv.ica"  # ICLabel's inputs: the real Emotiv recording's ICA components as feature sheets
SHEET_SKIP = ("bn_mode", "loso", "loso_epochs", "loso_lr", "loso_folds", "variants", "cam_layer", "top_n", "radius",
              "lrp_epsilon", "readout", "dilate", "quality_randomization")  # Cui's layout or planted truth only
runtime()
analyzer = get_analyzer(KEY)
st.title("EEG saliency")
st.caption(f"{analyzer.description} — {analyzer.paper}")

# trained models first (zoo order within each group): an untrained architecture (braindecode.deep4) explains
# nothing learned and, much larger, would make the default run take minutes
cards = sorted(models_for(analyzer, available=False), key=lambda c: not c.trained)
ready = {c.id: c for c in cards if c.status(c).get("available")}
if not ready:
    st.warning("No EEG model is available yet: the model zoo has not been built on this server.")
    st.stop()
ids = list(ready)
model_id = st.selectbox("Model", ids, index=ids.index(PAPER_MODEL) if PAPER_MODEL in ids else 0,
                        help="EEG cards of the zoo (30 channels, 3 s at 128 Hz) and ICLabel (iclabel.mne: ICA "
                             "components as feature sheets); the default is Cui et al.'s network, the one the "
                             "paper's filters, BatchNorm trap and LOSO protocol are defined for")
SHEET = is_sheet(ready[model_id])


def _components() -> tuple[str, int]:
    """ICLabel: every ICA component of the Emotiv recording, one shown in detail (mne-icalabel's label beside it)."""
    samples = get_samples(ICA)
    st.caption(f"Data: `{ICA}`, the {len(samples)} ICA components of the real Emotiv recording (spkit), as ICLabel's "
               "feature sheets: topomap, power spectrum (1-100 Hz), autocorrelation (10-1000 ms). No ground truth: "
               "the checks are LRP conservation, IG completeness and the randomization control.")
    options = [-1] + list(range(len(samples)))
    window = st.selectbox("Component shown in detail", options, key=f"{KEY}.component",
                          format_func=lambda i: "first component labelled eye blink" if i < 0 else
                          f"{samples[i].id} (mne-icalabel: {samples[i].meta.get('mne_icalabel_label', '?')})")
    return ICA, window


def _synthetic() -> tuple[str, int]:
    subjects = ["test subjects 9-11 (default set)"] + [f"subject {s}" for s in range(1, 12)]
    pick = st.selectbox("Subject", subjects, help="synthetic drowsiness EEG: subjects 1-8 trained the zoo model")
    data_id = SYNTH if pick == subjects[0] else f"{SYNTH}:subject:{pick.split()[-1]}"
    samples = get_samples(data_id)
    options = [-1] + list(range(len(samples)))
    window = st.selectbox("Window shown in detail", options, format_func=lambda i: "first correctly classified "
                          "drowsy window" if i < 0 else f"{samples[i].id} ({samples[i].label_name})")
    return data_id, window


def _recording() -> tuple[str | None, int]:
    how = st.radio("Recording", ["upload", "path on the server"], horizontal=True, key=f"{KEY}.recording")
    data_id = None
    if how == "upload":
        # any file: a refusal is one line naming it (the picker's own refusal is a silent icon); the file is
        # read and checked against the model at once, not at Run
        up = st.file_uploader(".mat (Cui et al.'s published format), .edf, .bdf or .fif", key=f"{KEY}.upload")
        if up is not None:
            data_id = eeg_upload(up, ready[model_id])
    else:
        path = st.text_input("Path", "", help="a .mat / .edf / .bdf / .fif file readable by the app",
                             key=f"{KEY}.path").strip()
        data_id = eeg_path(path, ready[model_id])  # read and checked now, as an upload is
    window = st.number_input("Window shown in detail (-1: first window predicted drowsy)", -1, 100000, -1)
    return data_id, int(window)


left, right = st.columns(2)
with left:
    if SHEET:
        data_id, window = _components()
    else:
        source = st.radio("Data", ["synthetic drowsiness EEG", "a recording"], horizontal=True)
        data_id, window = _synthetic() if source.startswith("synthetic") else _recording()
with right:
    choices = [m for m in analyzer.Config.__dataclass_fields__["methods"].metadata["choices"]
               if not SHEET or m != "cam"]  # Grad-CAM has no spatial map on ICLabel's sheet
    methods = st.multiselect("Methods", choices, default=choices, key=f"{KEY}.methods.{SHEET}",
                             format_func={"cam": "CAM (paper)", "lrp": "LRP", "ig": "Int. Gradients"}.get,
                             help="CAM (paper): the paper's class activation map variant; LRP: layer-wise "
                                  "relevance propagation (zennit); Int. Gradients: Integrated Gradients (captum)")
    bn_mode, loso = "frozen", False
    if not SHEET:  # Cui et al.'s layout only
        bn_mode = st.radio("BatchNorm statistics", ["frozen", "batch"], horizontal=True,
                           help="frozen: population statistics, a window's map does not depend on its batch; batch: "
                                "the paper's test-time behaviour (statistics of the analysed windows)")
        loso = st.checkbox("Leave-one-subject-out protocol", help="trains one network per subject (11 on the "
                                                                   "synthetic set, about a minute or two on a CPU)")
with st.expander("Advanced settings"):
    values = config_form(analyzer.Config, KEY, skip=SHOWN + (SHEET_SKIP if SHEET else ()))

if st.button("Run EEG saliency", type="primary", disabled=not (data_id and methods)):
    clear_error(KEY)
    config = {**values, "methods": ",".join(methods), "bn_mode": bn_mode, "window": window, "loso": loso}
    launch(RunSpec(KEY, model_id, data_id, config), KEY)
    st.rerun()

result = job_status(KEY)
if result is not None:
    st.subheader(display(result.title))
    verdicts = result.localization_verdicts() if hasattr(result, "localization_verdicts") else []
    for _, ok, text in verdicts:  # each map's localization verdict in plain words, before the numbers
        (st.success if ok else st.warning)(text)  # a finding about the method, not a failed run
    if verdicts:
        with st.expander("Why LRP and Integrated Gradients localize less, and what was fixed",
                         expanded=any(not ok for _, ok, _ in verdicts)):
            st.markdown(WHY_TEXT)
            st.markdown(FIXES_TEXT)
    render_result(result, KEY)
