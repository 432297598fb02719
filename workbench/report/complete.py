"""Is a result folder complete? Checked before ``workbench report`` (and ``wb.report`` on a folder) reads it.

A folder written by :class:`workbench.core.result_folder.ResultFolder` appears whole, and its
``result.json`` (written last) lists the other files with their sizes. A folder from elsewhere (an older
version, a copy cut short, a hand edit) may not be whole: a listed file that is missing or of another size,
or, without that list, arrays named in ``result.json`` but no or an empty ``arrays.npz``, is refused with
one line before any decoding.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from workbench.core.errors import DataError
from workbench.core.result_folder import INDEX, MANIFEST_KEY, RESULT_FILES, IncompleteResultError
from workbench.io import limits
from workbench.io.safe import read_file

_HINT = "re-run the analysis into it with --force"


def _size(p: Path) -> int | None:
    try:
        st = os.lstat(p)
    except OSError:
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


def check_complete(directory: str | os.PathLike) -> Path:
    """``directory`` if it holds a complete result; DataError / IncompleteResultError (one line) otherwise."""
    d = Path(directory)
    if ".wb-tmp-" in d.name or ".wb-old-" in d.name:
        raise IncompleteResultError(f"{d} is the temporary folder of a result being written or interrupted",
                                    "give the result folder itself")
    if not d.is_dir():
        raise DataError(f"no result.json in {d} (no such folder)", "point at a folder written by `workbench run`")
    if not os.path.lexists(d / INDEX):
        raise DataError(f"no result.json in {d}", "point at a folder written by `workbench run`")
    raw = read_file(d / INDEX, limits.MAX_RESULT_JSON_BYTES, what="result file", nofollow=True, allow_empty=True)
    if not raw.strip():
        raise IncompleteResultError(f"{d} is incomplete: result.json is empty", _HINT)
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError) as e:
        raise IncompleteResultError(f"{d} is incomplete: result.json is not valid JSON "
                                    f"({getattr(e, 'msg', type(e).__name__)})", _HINT) from None
    if not isinstance(doc, dict):
        raise DataError(f"{d / INDEX} is not a result (a JSON object is expected)", _HINT)
    files = doc.get(MANIFEST_KEY)
    if files is None:  # written before result folders listed their files
        named = doc.get("arrays")
        if isinstance(named, list) and named and not _size(d / "arrays.npz"):
            raise IncompleteResultError(f"{d} is incomplete: arrays.npz is missing or empty", _HINT)
        return d
    if not isinstance(files, dict):
        raise DataError(f"{d / INDEX}: '{MANIFEST_KEY}' must map file names to sizes", _HINT)
    for name, size in files.items():
        if name not in RESULT_FILES or name == INDEX or not isinstance(size, int) or isinstance(size, bool):
            raise DataError(f"{d / INDEX}: '{MANIFEST_KEY}' lists {str(name)[:60]!r} = {str(size)[:20]}, "
                            "not a result file and its size", _HINT)
        have = _size(d / name)
        if have != size:
            what = "missing (or not a regular file)" if have is None else f"{have} bytes, not {size}"
            raise IncompleteResultError(f"{d} is incomplete: {name} is {what}", _HINT)
    return d
