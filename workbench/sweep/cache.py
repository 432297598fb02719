"""The on-disk cell cache: one saved Result per cell key, ``<root>/<key>/`` (result.json + arrays.npz).

A cell is written with :meth:`Result.save`, which builds the folder in a hidden temporary sibling and
renames it into place (workbench/core/result_folder.py), so a folder whose ``result.json`` exists is
complete: a sweep killed at any instant leaves either the whole cell or nothing under its key.
"""

from __future__ import annotations

from pathlib import Path

from workbench.core.result import Result


class CellCache:
    """Finished cells under ``root``; safe for several sweeps sharing one root (the first writer wins)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        return self.root / key

    def done(self, key: str) -> bool:
        return (self.root / key / "result.json").is_file()

    def load(self, key: str) -> Result | None:
        """The cell, or None when its folder does not read back (damaged by hand or disk): it is recomputed."""
        from workbench.core.errors import WorkbenchError

        try:
            return Result.load(self.root / key)
        except WorkbenchError:
            return None

    def store(self, key: str, result: Result, replace: bool = False) -> Path:
        """Save ``result`` as the cell ``key``; a cell another sweep finished first is kept as it is.
        ``replace``: overwrite a damaged cell (see :meth:`load`)."""
        from workbench.core.result_folder import OutputError

        self.root.mkdir(parents=True, exist_ok=True)
        try:
            return result.save(self.root / key, force=replace)
        except OutputError:
            if not self.done(key):
                raise
            return self.root / key
