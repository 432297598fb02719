"""Widgets shared by pages: runtime start-up, config forms, jobs with progress/cancel,
result rendering and the report basket. No computation here."""

from __future__ import annotations

import dataclasses
import json
import typing

import streamlit as st

from pages._figures import fit
from pages._state import apply_config, settings_line, widget
from pages._uploads import display, image_upload, user_line
from workbench.core.analyzer import load_plugins
from workbench.core.errors import WorkbenchError
from workbench.runtime import Job, RunSpec, start_job

BASKET_MAX = 30


@st.cache_resource(max_entries=1)
def runtime() -> dict:
    """The runtime only (plugins loaded, unsafe loading refused): never a model."""
    from workbench.io.weights import refuse_unsafe_environment
    from workbench.runtime.zoo import load_user_cards

    refuse_unsafe_environment()
    load_plugins()
    return {"user_cards": load_user_cards()}


#: session key of the on-demand model ids (e.g. ``torchvision.resnet101``) this browser session typed
SESSION_MODELS = "wb.session_models"


def remember_model(model_id: str) -> None:
    """An on-demand id typed in this session: listed for this session only."""
    ids = st.session_state.setdefault(SESSION_MODELS, [])
    if model_id not in ids:
        ids.append(model_id)


#: card families resolved on demand from a typed name (``torchvision.resnet101``, ``timm.<name>``); cards of
#: ``user.*`` (the user's own model file) are registered at start-up and stay visible to everyone
ON_DEMAND = ("torchvision", "timm")


def visible_cards() -> list:
    """The zoo as this session sees it: the registry's cards, less the on-demand ones (resolved for whoever
    typed them first and cached process-wide) that this session did not type itself: one session's typing
    must not grow every session's zoo."""
    from workbench.core.cards import list_cards

    mine = set(st.session_state.get(SESSION_MODELS, []))
    return [c for c in list_cards() if c.id.partition(".")[0] not in ON_DEMAND or c.id in mine]


def models_for(analyzer, *, available: bool = True) -> list:
    """Zoo cards an analyzer can run on: its kinds and tasks, weights available (unless asked otherwise)."""
    tasks = getattr(analyzer, "tasks", ("classification",))
    archs = getattr(analyzer, "architectures", ())
    return [c for c in visible_cards() if analyzer.accepts(c) and c.task in tasks
            and (not archs or c.architecture in archs) and (not available or c.status(c).get("available"))]


def model_picker(analyzer, key: str, *, optional: bool = False):
    """A select box over the analyzer's available zoo models, trained ones first; returns the card.

    ``optional``: offer "(none)" first, for analyzers that build what they study (``needs_model=False``);
    returns None then, and also when no model is available (a warning says how to get one)."""
    cards = sorted(models_for(analyzer), key=lambda c: not c.trained)  # stable: zoo order within each group
    options = ([None] if optional else []) + [c.id for c in cards]
    if not options:
        st.warning(f"No model for {', '.join(analyzer.supports)} is available yet: the model zoo has not been "
                   "built on this server.")
        return None
    by_id = {c.id: c for c in cards}
    pick = widget(st.selectbox, "Model", f"{key}.model", options[0], options, valid=lambda v: v in options,
                  format_func=lambda i: "(none: the analyzer builds its own)" if i is None
                  else i + ("" if by_id[i].trained else "  (untrained)"))
    return by_id.get(pick)


def target_picker(card, key: str, help: str | None = None) -> int:
    """The class to explain: -1 = the predicted class, else an index into the card's class names."""
    names = list(card.class_names)
    options = [-1, *range(len(names))]
    return widget(st.selectbox, "Class to explain", f"{key}.target", -1, options, help=help,
                  valid=lambda v: v in options,
                  format_func=lambda i: "predicted class" if i < 0 else f"{i}: {names[i]}")


def save_artifact(result, key: str) -> None:
    """Offer to save the model a result carries (:meth:`Result.model_artifact`) as a new zoo card."""
    artifact = result.model_artifact()
    if artifact is None:
        return
    st.markdown(f"**Save the model this result carries** ({artifact.label}, based on `{artifact.base_model}`) "
                "as a new zoo card:")
    label = st.text_input("Label", value=artifact.label, key=f"{key}.artifact_label")
    if st.button("Save model", icon=":material/save:", key=f"{key}.artifact_save"):
        from workbench.runtime.zoo import add_model_artifact

        try:
            new_id = add_model_artifact(artifact, label)
            st.success(f"Saved as {new_id}: it now appears in every analyzer's model list.")
        except WorkbenchError as e:
            error_line(e)


def data_picker(card, key: str, sets: list[str] | None = None, label: str = "Input", *,
                extra: dict[str, list[str]] | None = None, help: str | None = None) -> str | None:
    """A built-in sample or, for image models, an uploaded PNG/JPEG (decoded with limits); returns a data id.
    ``sets``: data set names offered (default: the registry's sets for the card's kind); the samples of a
    set are followed by its whole splits (e.g. ``digits:test``), for analyzers that need many inputs.
    ``extra`` prepends ids per data set (e.g. multi-sample ids such as ``digits:test:50``)."""
    from workbench.data import datasets_for, list_items, list_sets

    sets = datasets_for(card.kind, getattr(card, "input_shape", None)) if sets is None else sets
    sets, refused = fitting_sets(card, sets)
    if refused:
        st.caption("Not offered for this model: " + "; ".join(f"**{n}** ({why})" for n, why in refused.items()))
    sources = ["built-in", "upload"] if card.kind == "image2d" else ["built-in"]
    source = widget(st.radio, label, f"{key}.source", "built-in", sources, horizontal=True,
                    valid=lambda v: v in sources)
    if source == "upload":
        # any file: the decoder says in one line why a file is refused (the picker's own refusal is a silent icon)
        up = st.file_uploader("PNG or JPEG (at most 20 MB, 4096 px a side)", key=f"{key}.upload")
        return None if up is None else image_upload(up)
    if not sets:
        return st.text_input("Data id", value=card.default_data, key=f"{key}.data")
    if not sets:
        st.warning(f"No built-in data set fits {card.id}: upload your own input.")
        return None
    default_set = card.default_data.split(":")[0]
    # the picks follow the model: each model has its own data widgets (keys carry the card id), so switching it
    # brings that model's own data back (an ImageNet model never keeps the 8x8 digits a digits model was
    # shown); popping the state is not enough, the browser sends a keyed widget's old value back
    set_key, sample_key = f"{key}.set.{card.id}", f"{key}.sample.{card.id}"
    dataset = widget(st.selectbox, "Data set", set_key, default_set if default_set in sets else sets[0],
                     sets, valid=lambda v: v in sets)
    items = (extra or {}).get(dataset, []) + list_items(dataset)
    items += [i for i in list_sets(dataset) if i not in items]
    default = card.default_data if card.default_data in items else items[0]
    return widget(st.selectbox, "Sample", sample_key, default, items, help=help, valid=lambda v: v in items)


#: how many times a model's input may be larger than a data set's pictures (per side) before upscaling them
#: stops meaning anything (an 8x8 digit blown up 28 times for a 224x224 ImageNet model)
MAX_UPSCALE = 4


@st.cache_data(max_entries=32, show_spinner=False)
def _native_side(dataset: str) -> int:
    """The larger side of a data set's first picture, in pixels (0 when it is not an image)."""
    from workbench.data import get_samples, list_items

    first = list_items(dataset, 1)
    if not first:
        return 0
    arr = get_samples(first[0])[0].array
    return int(max(arr.shape[:2])) if arr.ndim >= 2 else 0


def fitting_sets(card, sets: list[str]) -> tuple[list[str], dict[str, str]]:
    """(data sets that fit the card, {refused set: why}): image sets whose pictures would have to be
    upscaled more than MAX_UPSCALE times per side for the model's input are refused, except the card's own."""
    if card.kind != "image2d" or len(card.input_shape) < 3:
        return sets, {}
    side = max(card.input_shape[-2:])
    ok, refused = [], {}
    for name in sets:
        native = _native_side(name) if name != card.dataset.split(" ")[0] else 0
        if native and side > MAX_UPSCALE * native:
            refused[name] = (f"{native}x{native} px pictures; {card.id} takes {side}x{side}: blown up "
                             f"{side // native}x they show it nothing it was trained on")
        else:
            ok.append(name)
    return ok, refused


def error_line(exc: WorkbenchError | str) -> None:
    """One line in the user's words (pages/_uploads.py: no error code, no command-line flag, uploads by name)."""
    st.error(user_line(exc), icon=":material/error:")


def config_form(config_cls: type, key: str, skip: tuple[str, ...] = ()) -> dict:
    """One widget per Config field (help text, bounds and choices from field metadata)."""
    values = {}
    hints = typing.get_type_hints(config_cls)
    for f in dataclasses.fields(config_cls):
        if f.name in skip:
            continue
        m, t, k = f.metadata, hints[f.name], f"{key}.{f.name}"
        label = m.get("label") or f.name.replace("_", " ")
        if m.get("choices") and m.get("multi"):
            picked = widget(st.multiselect, label, k, [c for c in f.default.split(",") if c], m["choices"],
                            help=m["help"], valid=lambda v, c=m["choices"]: all(x in c for x in v))
            values[f.name] = ",".join(picked)
        elif m.get("choices"):
            values[f.name] = widget(st.selectbox, label, k, f.default, m["choices"], help=m["help"],
                                    valid=lambda v, c=m["choices"]: v in c)
        elif t is bool:
            values[f.name] = widget(st.checkbox, label, k, f.default, help=m["help"])
        elif t in (int, float):
            # one numeric type for value and bounds: Streamlit refuses an int value with float bounds
            lo, hi = (None if m.get(b) is None else t(m[b]) for b in ("min", "max"))
            values[f.name] = widget(st.number_input, label, k, t(f.default), min_value=lo, max_value=hi,
                                    help=m["help"], valid=lambda v, t=t, lo=lo, hi=hi: isinstance(v, t)
                                    and (lo is None or v >= lo) and (hi is None or v <= hi))
        else:
            values[f.name] = widget(st.text_input, label, k, f.default, help=m["help"])
    return values


def launch(spec: RunSpec, key: str) -> None:
    """Start a job for this page (a running one is cancelled first); earlier results are kept."""
    old: Job | None = st.session_state.get(f"job.{key}")
    if old is not None and not old.done:
        old.cancel()
    st.session_state[f"job.{key}"] = start_job(spec)


@st.fragment(run_every=0.5)
def _job_panel(key: str, live_render=None) -> None:
    _panel(key, live_render)


# live figures are rebuilt and re-sent on every tick, on the server's Python threads that the run needs too
# (a transfer grid's small networks are Python-bound): pages with a live view poll less often
@st.fragment(run_every=2.0)
def _live_job_panel(key: str, live_render=None) -> None:
    _panel(key, live_render)


def _panel(key: str, live_render=None) -> None:
    job: Job | None = st.session_state.get(f"job.{key}")
    if job is None:
        return
    if job.done:
        st.rerun(scope="app")
    ahead = job.queued_behind()
    if ahead:
        st.progress(0.0, text=f"queued behind {len(ahead)} running job(s): "
                              + "; ".join(f"{j.label} ({j.fraction:.0%})" for j in ahead[:3])
                              + " — it starts when the model and the CPU are free")
    else:
        eta = job.eta_s()
        left = "" if eta is None else f" — about {eta:.0f} s left" if eta < 90 else f" — about {eta / 60:.0f} min left"
        st.progress(job.fraction, text=f"{job.message or 'starting'} — {job.fraction:.0%}{left}")
    if st.button("Cancel", key=f"cancel.{key}", icon=":material/stop_circle:"):
        job.cancel()
        st.rerun(scope="app")
    if live_render is not None:
        live_render(job.ctx.live)


def job_status(key: str, live_render=None):
    """Show progress while the page's job runs; return its result once done (kept in the session).

    ``live_render(live)``, if given, is called inside the polling fragment with the job's
    ``ctx.live`` snapshots (what the run published) while it runs."""
    job: Job | None = st.session_state.get(f"job.{key}")
    if job is not None and not job.done:
        (_job_panel if live_render is None else _live_job_panel)(key, live_render)
    elif job is not None and job.state == "done":
        st.session_state[f"result.{key}"] = job.result
        st.session_state[f"warnings.{key}"] = (job.result, list(job.warnings))  # shown under that result
        st.session_state.pop(f"job.{key}")
    elif job is not None and job.state == "cancelled":
        st.warning("The run was cancelled. Earlier results are kept below.", icon=":material/stop_circle:")
        st.session_state.pop(f"job.{key}")
    elif job is not None and job.state == "failed":
        st.session_state[f"error.{key}"] = job.error
        st.session_state[f"error_warnings.{key}"] = list(job.warnings)  # they may say why it failed
        st.session_state.pop(f"job.{key}")
    if st.session_state.get(f"error.{key}") and f"job.{key}" not in st.session_state:
        error_line(st.session_state[f"error.{key}"])
        _warning_lines(st.session_state.get(f"error_warnings.{key}", []))
    return st.session_state.get(f"result.{key}")


def job_warnings(result, key: str) -> None:
    """Under a result: the warnings its run raised (a loader's, a library's; workbench/runtime/jobs.py), one
    box each. Only for the result the job made: a result put there otherwise shows none of them."""
    made, lines = st.session_state.get(f"warnings.{key}", (None, []))
    if made is result:
        _warning_lines(lines)


def _warning_lines(lines: list[str]) -> None:
    for line in lines:
        st.warning(f"Warning from the run: {display(line)}", icon=":material/warning:")


def clear_error(key: str) -> None:
    st.session_state.pop(f"error.{key}", None)
    st.session_state.pop(f"error_warnings.{key}", None)


def basket() -> list:
    return st.session_state.setdefault("basket", [])


def failing_checks(result, key: str) -> None:
    """The checks table; every failing check with its next step and, where the analyzer says how
    (``Check.fix``), a button that reruns the same model and data with the fix applied."""
    failed = [c for c in result.checks if not c.passed]
    if failed:
        st.markdown(f"**Failing checks ({len(failed)})**, each with what to do next:")
    for i, c in enumerate(failed):
        text = f"**{c.name}** failed: {c.message}" + (f"  \n**Next step:** {c.next_step}" if c.next_step else "")
        box, button = st.columns([5, 1], vertical_alignment="center")
        box.warning(text, icon=":material/warning:")
        if c.fix:
            button.button("Rerun with the fix", key=f"fix.{key}.{i}", icon=":material/build:",
                          help=", ".join(f"{k}={v}" for k, v in c.fix.items()), on_click=rerun_with,
                          args=(result, key, c.fix))
    # a static table: its cells wrap, so every check's meaning reads whole (a data frame cuts it at the column)
    st.table([{"check": c.name, "result": "pass" if c.passed else "FAIL", "value": _num(c.value),
               "threshold": _num(c.threshold), "meaning": c.message} for c in result.checks],
             hide_index=True, border="horizontal")


def _num(v) -> str:
    return "" if v is None else f"{v:.4g}" if isinstance(v, float) else str(v)


def rerun_with(result, key: str, fix: dict) -> None:
    """Run the result's own settings again with ``fix`` applied (the form shows the fix too). A button
    callback: it runs before the widgets are drawn, so it may set their values."""
    from workbench.core.analyzer import get_analyzer

    config = {**(result.config or {}), **fix}
    apply_config(get_analyzer(result.analyzer).Config, key, fix)
    clear_error(key)
    launch(RunSpec(result.analyzer, result.model, result.data or None, config), key)


def settings_caption(result) -> None:
    """Under a result's title: the settings it came from (the form may have changed since)."""
    from workbench.core.analyzer import get_analyzer

    try:
        analyzer = get_analyzer(result.analyzer)
    except WorkbenchError:
        analyzer = None
    st.caption(display(settings_line(result, analyzer)))


def render_result(result, key: str) -> None:
    """The settings it came from, checks, the result's own figures, metrics, and buttons to keep or download it."""
    settings_caption(result)
    summary = result.summary()
    if summary:
        st.info(summary)
    failing_checks(result, key)
    for i, fig in enumerate(result.figures()):
        st.plotly_chart(fit(fig), key=f"fig.{key}.{i}", width="stretch")
    job_warnings(result, key)
    with st.expander("Metrics, configuration and provenance"):
        st.json({"metrics": result.metrics, "config": result.config,
                 "provenance": result.to_json()["provenance"]}, expanded=False)
    a, b = st.columns(2)
    items = basket()
    if any(r is result for r in items):  # a lasting sign that the click was taken (a toast fades)
        a.button(f"In the report basket ({len(items)} item(s))", key=f"add.{key}", icon=":material/check:",
                 disabled=True)
    elif a.button("Add to report", key=f"add.{key}", icon=":material/add:", type="primary"):
        items.append(result)
        del items[:-BASKET_MAX]
        st.toast(f"Added to the report basket ({len(items)} item(s))")
        st.rerun()
    b.download_button("Download result.json", json.dumps(result.to_json(), indent=2),
                      file_name=f"{result.analyzer}-{result.model}.json", mime="application/json",
                      key=f"dl.{key}")
