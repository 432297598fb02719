"""Receptive fields: theoretical RF per layer, gradient-probe check, effective RF and area ratio,
and Luo et al.'s sqrt(n) growth law. Widgets -> RunSpec -> job -> render; nothing is computed here."""

import streamlit as st

from pages._state import preset_bar, widget
from pages._ui import (
    clear_error,
    config_form,
    data_picker,
    error_line,
    job_status,
    launch,
    models_for,
    remember_model,
    render_result,
    runtime,
)
from workbench.core.analyzer import get_analyzer
from workbench.core.cards import get_card
from workbench.core.errors import WorkbenchError
from workbench.runtime import RunSpec

KEY, KEY_GROWTH = "receptive_field", "receptive_field.growth"
TORCHVISION = ("torchvision.resnet50", "torchvision.resnet18", "torchvision.vgg16", "torchvision.alexnet",
               "torchvision.inception_v3", "torchvision.densenet121", "torchvision.convnext_tiny",
               "torchvision.efficientnet_b0")
OTHER = "another torchvision architecture..."
GROWTH = ("depths", "growth_channels", "growth_draws", "growth_activation", "growth_weights")
WHY_483 = """
**Why do tables quote 483 px for ResNet-50 when this page says 427?** Both are right, for different
networks. The 483 comes from the TF-slim ResNet-50 (used by the Distill article and Google's
`receptive_field` library). TF-slim puts each stage's stride 2 on the 3x3 convolution of the **last**
unit of the previous stage; torchvision (ResNet "v1.5") puts it on the 3x3 convolution of the **first**
unit of the next stage. In TF-slim the stride therefore happens one unit earlier, so every later 3x3
convolution already works at the doubled jump and adds twice as many input pixels. Add it up with
`r += (k - 1) * jump`: torchvision gives 427 px at `layer4` (jump 32), TF-slim 483 px (also jump 32).
A tool that reports 483 for `torchvision.models.resnet50` has the wrong network; one that walks the
modules in registration order instead of the graph gets residual networks wrong altogether (the
`downsample` branch runs beside the main path, not after it).
"""


def _model_picker(analyzer) -> tuple[str | None, object]:
    # the options and the pick are this session's: a name typed here (or in another session) never changes
    # the list under the select box, which made it jump back to its first entry
    cards = [c for c in models_for(analyzer, available=False) if not c.id.startswith("toy_")]
    ready = [c.id for c in cards if c.status(c).get("available")]
    options = list(TORCHVISION) + [i for i in ready if i not in TORCHVISION] + [OTHER]
    choice = widget(st.selectbox, "Model", f"{KEY}.model", options[0], options, valid=lambda v: v in options,
                    help="torchvision.* ids build the architecture with seeded random weights (nothing is "
                         "downloaded); zoo models carry their weights")
    if choice == OTHER:
        name = widget(st.text_input, "torchvision architecture name", f"{KEY}.tv_name", "resnet101",
                      help="any name of torchvision.models.list_models(), e.g. wide_resnet50_2, swin_t")
        choice = f"torchvision.{name.strip()}"
    try:
        card = get_card(choice)
    except WorkbenchError as e:
        error_line(e)
        return None, None
    if choice not in options:
        remember_model(choice)  # listed for this session only, not in every session's zoo
    return choice, card


def _layer_picker(card) -> str:
    options = ["(automatic)"] + list(card.layers_of_interest) + ["custom..."]
    pick = widget(st.selectbox, "Layer", f"{KEY}.layer.{card.id}", options[0], options, valid=lambda v: v in options,
                  help="the layer whose centre unit is studied; automatic = the card's first layer of interest, "
                       "else the last spatial layer")
    if pick == "custom...":
        return widget(st.text_input, "Module path", f"{KEY}.module_path", "",
                      help="a dotted module path, e.g. layer3.5 or features.16").strip()
    return "" if pick == "(automatic)" else pick


def model_tab(analyzer) -> None:
    preset_bar(analyzer, KEY)  # quick defaults (ERF over 16 inputs) or RepLKNet's 50
    left, right = st.columns(2)
    with left:
        model_id, card = _model_picker(analyzer)
        layer = _layer_picker(card) if card is not None else ""
    with right:
        data_id = data_picker(
            card, KEY, ["skimage", "digits"] if card.kind == "image2d" else None, "Image for the ERF overlay",
            extra={"digits": [f"digits:test:{n}" for n in (50, 16, 4)]},
            help="fewer inputs than 'n images' are filled as set in the settings (crops/flips, noise or "
                 "repeats); digits:test:50 gives 50 real digits") if card is not None else None
    with st.expander("Settings (ERF, probe, input size)"):
        values = config_form(analyzer.Config, KEY, skip=("experiment", "layer") + GROWTH)
    with st.expander("Why is ResNet-50's receptive field 427 px here and 483 px elsewhere?"):
        st.markdown(WHY_483)
    if st.button("Run receptive field", type="primary", disabled=card is None or (values.get("erf") and not data_id)):
        clear_error(KEY)
        launch(RunSpec(KEY, model_id, data_id, {**values, "experiment": "model", "layer": layer}), KEY)
        st.rerun()
    result = job_status(KEY)
    if result is not None:
        st.subheader(result.title)
        render_result(result, KEY)


def growth_tab(analyzer) -> None:
    st.markdown("Luo et al. (2016): on n stacked 3x3 convolutions with random weights the ERF's spread grows "
                "like **sqrt(n)** while the theoretical RF grows like n. Pick the depths; the fitted exponent "
                "must come out at 0.5 +- 0.1.")
    skip = tuple(f for f in analyzer.Config.__dataclass_fields__ if f not in GROWTH)
    values = config_form(analyzer.Config, KEY_GROWTH, skip=skip)
    if st.button("Run the growth experiment", type="primary"):
        clear_error(KEY_GROWTH)
        launch(RunSpec(KEY, "", None, {**values, "experiment": "erf_growth"}), KEY_GROWTH)
        st.rerun()
    result = job_status(KEY_GROWTH)
    if result is not None:
        render_result(result, KEY_GROWTH)


runtime()
_analyzer = get_analyzer(KEY)
st.title("Receptive fields")
st.caption(f"{_analyzer.description} — {_analyzer.paper}")
_model, _growth = st.tabs(["Model: theoretical and effective RF", "ERF growth law"])
with _model:
    model_tab(_analyzer)
with _growth:
    growth_tab(_analyzer)
