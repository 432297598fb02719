"""Uploads and errors in the app's words: a file keeps its name (picker, data id, result title, report), is
checked when it arrives (not at Run), loader warnings are shown on the page, and a refusal is one line that
names the user's file and says what to do in the app (never a command-line flag)."""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path

import streamlit as st

from workbench.core.errors import WorkbenchError

#: session key: data id of an upload -> the name of the file the user uploaded (for ids that are server paths)
NAMES = "wb.upload_names"

# hints written for the command line, said the app's way; any other hint naming a flag or a command is
# dropped (the message stays): the app has no flags to give, and an instruction it cannot follow is worse than none
_APP_HINTS = (
    (re.compile(r"--memory-budget-mb(?: \d+)?"), "the server's WORKBENCH_MEMORY_BUDGET_MB setting"),
    (re.compile(r"(?:give|with) --model ID[^,;)]*"), "pick a model"),
    (re.compile(r"--set ([a-z_]+)=([^\s,;)]+)"), r"set \1 to \2 in the form"),
    (re.compile(r"run `?make zoo[^`]*`?"), "ask whoever runs this server to build the model zoo"),
)
_ONE_LINE = re.compile(r"^([a-z_]+): (.*?)(?: \(hint: (.*)\))?$")
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z-]*)")


def app_words(text: str) -> str:
    """Command-line phrasing in ``text`` said the app's way (``--set k=v`` -> "set k to v in the form");
    "" when what remains is still a command-line instruction."""
    text = _said_the_apps_way(text)
    if _FLAG.search(text) or "workbench " in text or "make " in text:
        return ""
    return " ".join(text.split()).strip(" ,;")


def _said_the_apps_way(text: str) -> str:
    for pattern, repl in _APP_HINTS:
        text = pattern.sub(repl, text)
    return text


def user_line(exc: WorkbenchError | str, names: dict[str, str] | None = None) -> str:
    """One line for a person: the cause (the server's temp name of an upload replaced by the user's file
    name) and, when it can be said in the app's words, what to do. No error code, no traceback."""
    if not isinstance(exc, WorkbenchError):  # a job's error, kept as its one_line(): "code: message (hint: ...)"
        m = _ONE_LINE.match(str(exc))
        if m is None or m.group(1) == "internal_error":
            return _rename(str(exc), names)
        exc = WorkbenchError(m.group(2), m.group(3) or "")
    message = _said_the_apps_way(_rename(exc.message, names))
    message = _FLAG.sub(lambda m: m.group(1).replace("-", " "), message)  # "--device cuda was asked" -> "device"
    hint = app_words(_rename(exc.hint, names)) if exc.hint else ""
    text = message  # as written (not capitalized: it may start with the user's file name)
    if hint:
        text = text.rstrip(".") + f". What to do: {hint}"
    return " ".join(text.split())


def _rename(text: str, names: dict[str, str] | None) -> str:
    names = st.session_state.get(NAMES, {}) if names is None else names
    for data_id, name in names.items():
        text = text.replace(data_id, name).replace(Path(data_id).name, name)
    return text


def display(text: str) -> str:
    """``text`` (a title, a data id) with every upload's server path replaced by the user's file name."""
    return _rename(text, None)


def collect_warnings(fn: Callable, *args, **kwargs):
    """``(fn(*args, **kwargs), [one line per warning raised while it ran])``: loader warnings (channels
    matched loosely, trailing bytes ignored) go to the page, not only to the server's log. Collected on this
    thread by the jobs' route (workbench/runtime/jobs.py), not ``catch_warnings``: that swaps the handler for
    the whole process and would take the warnings of a job running meanwhile."""
    from workbench.runtime.jobs import collected_warnings

    with collected_warnings() as caught:
        value = fn(*args, **kwargs)
    return value, [line for line in caught if not line.startswith("DeprecationWarning")]


#: a loader warning is shown as one line of at most this many characters (the list of 30 channels matched
#: loosely would fill the page; the first few pairs tell what happened)
WARNING_CHARS = 200


def show_warnings(lines: list[str], what: str) -> None:
    for line in lines:
        text = display(line)
        text = text[len(what) + 2:] if text.startswith(f"{what}: ") else text  # the loader names the file too
        if len(text) > WARNING_CHARS:
            text = text[: WARNING_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;") + " …"
        st.warning(f"While loading {what}: {text}", icon=":material/info:")


def _clean(name: str) -> str:
    """A file name as it may appear inside a data id: letters, digits, ``_.-``, 40 at most."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", Path(name).name)[:40].strip("._") or "upload"


def image_upload(up) -> str | None:
    """A PNG/JPEG upload decoded with limits and kept under a data id that carries its name
    (``upload:cat.png-<sha12>``); None (and one line) when refused."""
    from workbench.data import store_upload
    from workbench.io.images import decode_image

    try:
        sample, lines = collect_warnings(decode_image, up.getvalue(), up.name)
    except WorkbenchError as e:
        st.error(user_line(e), icon=":material/error:")
        return None
    sha = sample.id.split(":", 1)[1]
    data_id = store_upload(dataclasses.replace(sample, id=f"upload:{_clean(up.name)}-{sha}"))
    show_warnings(lines, up.name)
    h, w = sample.array.shape[:2]
    st.caption(f"Uploaded **{up.name}**: {w}x{h} px, kept as `{data_id}`.")
    return data_id


def eeg_upload(up, card) -> str | None:
    """An EEG upload stored (size and extension checked), then read at once and checked against ``card``
    (channels, sampling rate, window length): one line saying what it holds, or one line saying why it does
    not fit; loader warnings on the page. Returns the data id (a server path, shown by its file name)."""
    from workbench.io.eeg import save_upload

    names = st.session_state.setdefault(NAMES, {})
    try:
        data_id = save_upload(up.getvalue(), up.name)
    except WorkbenchError as e:
        st.error(user_line(e), icon=":material/error:")
        return None
    names[data_id] = up.name
    return _shown(data_id, card, up.name)


def eeg_path(path: str, card) -> str | None:
    """A recording named by its path on the server, read and checked against ``card`` as an upload is."""
    return _shown(path, card, Path(path).name) if path else None


def _shown(data_id: str, card, name: str) -> str | None:
    try:  # a file on the server may change under the same path: its size and time are part of the cache key
        st_ = os.stat(data_id)
        stamp = (st_.st_size, st_.st_mtime_ns)
    except OSError:
        stamp = None  # the loader says what is wrong with the path
    ok, line, lines = _check_eeg(data_id, card.id, name, stamp)
    show_warnings(lines, name)
    if not ok:
        st.error(line, icon=":material/error:")
        return None
    st.caption(line)
    return data_id


# kept for the process, not the session: the loader caches a decoded file, so its warnings come on its first
# read only, and a second session (or a rerun) uploading the same bytes (same content-hashed path) must see them too
@st.cache_data(max_entries=32, show_spinner=False)
def _check_eeg(data_id: str, card_id: str, name: str, stamp) -> tuple[bool, str, list[str]]:
    from workbench.core.cards import get_card
    from workbench.data import get_samples

    card = get_card(card_id)
    try:
        samples, lines = collect_warnings(get_samples, data_id, "signal")
    except WorkbenchError as e:
        return False, user_line(e, {data_id: name}), []
    s = samples[0]
    shape, want = tuple(s.array.shape), tuple(card.input_shape)
    sfreq, want_sfreq = s.meta.get("sfreq"), card.sampling_rate
    if len(shape) != 2 or shape[0] != want[0] or (want_sfreq and sfreq and abs(sfreq - want_sfreq) > 1e-6):
        return False, (f"{name} does not fit {card.id}: it holds {shape[0]} channels at {sfreq:g} Hz, the model "
                       f"takes {want[0]} channels at {want_sfreq or '?'} Hz."), lines
    secs = shape[1] / sfreq if sfreq else 0
    return True, (f"**{name}**: {len(samples)} windows of {shape[0]} channels x {shape[1]} samples "
                  f"({secs:g} s at {sfreq:g} Hz), fits {card.id}."), lines


#: extensions of pickle checkpoints: refused by name first, in words a PyTorch user knows
_PICKLES = (".pt", ".pth", ".ckpt", ".bin", ".pkl", ".pickle", ".tar")


def weights_upload(base_id: str, up) -> str | None:
    """Validate an uploaded weights file against ``base_id`` and register it; the new card id, or None
    (and one line) when refused. Any file is accepted by the picker so that a refusal is a sentence, not
    the picker's silent red icon."""
    from workbench.runtime.zoo import add_user_weights

    suffix = Path(up.name).suffix.lower()
    if suffix in _PICKLES:
        st.error(f"{up.name} is a PyTorch pickle checkpoint, not a safetensors file: the workbench never unpickles "
                 "an upload. What to do: save it as safetensors in Python, "
                 "safetensors.torch.save_file(model.state_dict(), 'weights.safetensors'), and upload that.",
                 icon=":material/error:")
        return None
    try:
        new_id, lines = collect_warnings(add_user_weights, base_id, up.getvalue(), Path(up.name).stem)
    except WorkbenchError as e:
        line = user_line(e)
        st.error(line.replace("not a safetensors file", f"{up.name} is not a safetensors file", 1)
                 if line.startswith("not a") else f"{up.name}: {line}",
                 icon=":material/error:")
        return None
    show_warnings(lines, up.name)
    return new_id
