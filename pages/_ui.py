"""Widgets shared by pages: runtime start-up, config forms, jobs with progress/cancel,
result rendering and the report basket. No computation here."""

from __future__ import annotations

import dataclasses
import json
import typing

import streamlit as st

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


def models_for(analyzer, *, available: bool = True) -> list:
    """Zoo cards an analyzer can run on: its kinds and tasks, weights available (unless asked otherwise)."""
    from workbench.core.cards import list_cards

    tasks = getattr(analyzer, "tasks", ("classification",))
    return [c for c in list_cards() if c.kind in analyzer.supports and c.task in tasks
            and (not available or c.status(c).get("available"))]


def model_picker(analyzer, key: str, *, optional: bool = False):
    """A select box over the analyzer's available zoo models, trained ones first; returns the card.

    ``optional``: offer "(none)" first, for analyzers that build what they study (``needs_model=False``);
    returns None then, and also when no model is available (a warning says how to get one)."""
    cards = sorted(models_for(analyzer), key=lambda c: not c.trained)  # stable: zoo order within each group
    options = ([None] if optional else []) + [c.id for c in cards]
    if not options:
        st.warning(f"No model for {', '.join(analyzer.supports)} is available yet: run `make zoo`.")
        return None
    by_id = {c.id: c for c in cards}
    pick = st.selectbox("Model", options, key=f"{key}.model",
                        format_func=lambda i: "(none: the analyzer builds its own)" if i is None
                        else i + ("" if by_id[i].trained else "  (untrained)"))
    return by_id.get(pick)


def target_picker(card, key: str, help: str | None = None) -> int:
    """The class to explain: -1 = the predicted class, else an index into the card's class names."""
    names = list(card.class_names)
    return st.selectbox("Class to explain", [-1, *range(len(names))], key=f"{key}.target", help=help,
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
    from workbench.data import datasets_for, list_items, list_sets, store_upload
    from workbench.io.images import decode_image

    sets = datasets_for(card.kind) if sets is None else sets
    source = st.radio(label, ["built-in", "upload"] if card.kind == "image2d" else ["built-in"], horizontal=True,
                      key=f"{key}.source")
    if source == "upload":
        up = st.file_uploader("PNG or JPEG (at most 20 MB, 4096 px a side)", type=["png", "jpg", "jpeg"],
                              key=f"{key}.upload")
        if up is None:
            return None
        try:
            return store_upload(decode_image(up.getvalue(), up.name))
        except WorkbenchError as e:
            error_line(e)
            return None
    if not sets:
        return st.text_input("Data id", value=card.default_data, key=f"{key}.data")
    default_set = card.default_data.split(":")[0]
    dataset = st.selectbox("Data set", sets, index=sets.index(default_set) if default_set in sets else 0,
                           key=f"{key}.set")
    items = (extra or {}).get(dataset, []) + list_items(dataset)
    items += [i for i in list_sets(dataset) if i not in items]
    default = card.default_data if card.default_data in items else items[0]
    return st.selectbox("Sample", items, index=items.index(default), key=f"{key}.sample", help=help)


def error_line(exc: WorkbenchError | str) -> None:
    st.error(exc.one_line() if isinstance(exc, WorkbenchError) else str(exc), icon=":material/error:")


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
            picked = st.multiselect(label, m["choices"], default=[c for c in f.default.split(",") if c],
                                    help=m["help"], key=k)
            values[f.name] = ",".join(picked)
        elif m.get("choices"):
            values[f.name] = st.selectbox(label, m["choices"], index=m["choices"].index(f.default),
                                          help=m["help"], key=k)
        elif t is bool:
            values[f.name] = st.checkbox(label, value=f.default, help=m["help"], key=k)
        elif t in (int, float):
            # one numeric type for value and bounds: Streamlit refuses an int value with float bounds
            lo, hi = (None if m.get(b) is None else t(m[b]) for b in ("min", "max"))
            values[f.name] = st.number_input(label, value=f.default, min_value=lo, max_value=hi,
                                             help=m["help"], key=k)
        else:
            values[f.name] = st.text_input(label, value=f.default, help=m["help"], key=k)
    return values


def launch(spec: RunSpec, key: str) -> None:
    """Start a job for this page (a running one is cancelled first); earlier results are kept."""
    old: Job | None = st.session_state.get(f"job.{key}")
    if old is not None and not old.done:
        old.cancel()
    st.session_state[f"job.{key}"] = start_job(spec)


@st.fragment(run_every=0.4)
def _job_panel(key: str, live_render=None) -> None:
    job: Job | None = st.session_state.get(f"job.{key}")
    if job is None:
        return
    if job.done:
        st.rerun(scope="app")
    st.progress(job.fraction, text=f"{job.message or 'starting'} — {job.fraction:.0%}")
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
        _job_panel(key, live_render)
    elif job is not None and job.state == "done":
        st.session_state[f"result.{key}"] = job.result
        st.session_state.pop(f"job.{key}")
    elif job is not None and job.state == "cancelled":
        st.warning("The run was cancelled. Earlier results are kept below.", icon=":material/stop_circle:")
        st.session_state.pop(f"job.{key}")
    elif job is not None and job.state == "failed":
        st.session_state[f"error.{key}"] = job.error
        st.session_state.pop(f"job.{key}")
    if st.session_state.get(f"error.{key}") and f"job.{key}" not in st.session_state:
        error_line(st.session_state[f"error.{key}"])
    return st.session_state.get(f"result.{key}")


def clear_error(key: str) -> None:
    st.session_state.pop(f"error.{key}", None)


def basket() -> list:
    return st.session_state.setdefault("basket", [])


def render_result(result, key: str) -> None:
    """Checks, the result's own figures, metrics, and buttons to keep or download it."""
    summary = result.summary()
    if summary:
        st.info(summary)
    failed = [c for c in result.checks if not c.passed]
    if failed:
        st.warning("Failing checks: " + "; ".join(f"**{c.name}**: {c.message}" for c in failed),
                   icon=":material/warning:")
    st.dataframe([{"check": c.name, "result": "pass" if c.passed else "FAIL",
                   "value": c.value, "threshold": c.threshold, "meaning": c.message} for c in result.checks],
                 hide_index=True, width="stretch",
                 column_config={"meaning": st.column_config.TextColumn(width="large")})
    for i, fig in enumerate(result.figures()):
        st.plotly_chart(fig, key=f"fig.{key}.{i}", width="stretch")
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
