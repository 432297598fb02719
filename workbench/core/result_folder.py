"""Atomic, exclusive result folders: a saved result appears whole or not at all, and never over another.

How a folder ``DEST`` is written (:class:`ResultFolder`):

1. ``DEST`` is checked before anything is computed (:func:`check_destination`): not a symbolic link,
   not a file, not under ``/proc`` or ``/sys``, its nearest existing ancestor writable, and not already
   holding a result unless ``force`` (a folder holding anything but result files is never replaced).
2. A lock: ``fcntl.flock`` on the sibling ``.DEST.wb-lock``, non-blocking, so a second writer fails at
   once with one line instead of interleaving files. The lock file is removed by its holder; a writer
   that locked a file already unlinked by the previous holder notices (inode changed) and retries.
3. Every file goes into a temporary sibling ``.DEST.wb-tmp-<pid>-<rand>``, created with ``O_EXCL |
   O_NOFOLLOW`` (a planted link is never followed), fsynced; ``result.json`` is written last and lists
   the other files with their sizes (the completeness marker ``workbench report`` checks).
4. The finished folder is renamed into place. Over an existing result (``force``) the two folders are
   swapped in one ``renameat2(RENAME_EXCHANGE)``, so the old result stays until the new one is complete
   and there is no instant without one; only then is the old one deleted. Where the kernel or file
   system lacks the exchange, the old folder is renamed aside (``.DEST.wb-old-*``) first, and the next
   writer that takes the lock puts it back if a kill came between the two renames.

A writer killed at any instant thus leaves ``DEST`` as it was or complete, plus at most a hidden
temporary sibling that the next writer of ``DEST`` removes.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import shutil
import stat
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from workbench.core.errors import (  # noqa: F401 - the folder errors, re-exported for callers
    DataError,
    FolderBusyError,
    IncompleteResultError,
    OutputError,
    WorkbenchError,
)

#: the files a result folder may hold; anything else in an existing folder means it is not ours to replace
RESULT_FILES = ("result.json", "arrays.npz", "report.html")
INDEX = "result.json"
#: key of result.json listing the other files of the folder -> their sizes in bytes
MANIFEST_KEY = "files"
_TMP, _OLD, _LOCK = ".wb-tmp-", ".wb-old-", ".wb-lock"
#: pseudo file systems where a result can never be written (checked by path, before any probe)
_PSEUDO = ("/proc", "/sys")

Writer = Callable[[BinaryIO], object]




_FORCE_HINT = "replace it with --force (force=True in Python), or give another folder"


def _lstat(p: Path) -> os.stat_result | None:
    try:
        return os.lstat(p)
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        raise OutputError(f"{p} lies under a file, not a folder", "give a folder path") from None
    except OSError as e:
        raise OutputError(f"cannot use {p} ({e.strerror})", "give a folder you can write") from None


def _existing(p: Path, force: bool) -> None:
    """``p`` is an existing folder: refuse links inside, foreign files, and a result without ``force``."""
    try:
        names = sorted(os.listdir(p))
    except OSError as e:
        raise OutputError(f"cannot read the folder {p} ({e.strerror})", "give a folder you can write") from None
    for n in names:
        if stat.S_ISLNK(os.lstat(p / n).st_mode):
            raise OutputError(f"{p / n} is a symbolic link; links are never written through",
                              "remove the link or give another folder")
    foreign = [n for n in names if n not in RESULT_FILES]
    if foreign:  # never replaced, not even with force: deleting the user's own files is not ours to do
        raise OutputError(f"{p} is not empty and holds other files ({', '.join(foreign[:3])})",
                          "give a new or empty folder")
    if names and not force:
        raise OutputError(f"{p} already holds a result", _FORCE_HINT)


def _nearest_ancestor(p: Path) -> Path:
    for a in p.parents:
        st = _lstat(a)
        if st is not None:
            if not stat.S_ISDIR(os.stat(a).st_mode):
                raise OutputError(f"{a} is a file, so {p} cannot be a folder", "give a folder path")
            return a
    return Path("/")


def check_destination(dest: str | os.PathLike, force: bool = False) -> Path:
    """The absolute folder a result may be written to, checked before any work; OutputError otherwise."""
    if not str(dest).strip():
        raise OutputError("no output folder named (the path is empty)", "give --out DIR")
    p = Path(os.path.abspath(os.path.expanduser(str(dest))))
    real = os.path.realpath(p)
    pseudo = [d for d in _PSEUDO if real == d or real.startswith(d + "/")]
    if pseudo:
        raise OutputError(f"{p} is under {pseudo[0]}, a kernel file system, not storage", "give a folder on disk")
    st = _lstat(p)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{p} is a symbolic link; results are never written through links",
                          "give the real folder")
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise OutputError(f"{p} is a file, not a folder", "give a folder path")
    if st is not None:
        _existing(p, force)
    base = p.parent if st is not None else _nearest_ancestor(p)
    try:  # os.access says yes to root everywhere: only a real try tells a read-only or kernel file system
        _probe_write(base)
    except OSError as e:
        raise OutputError(f"cannot write to {base} ({e.strerror or type(e).__name__})",
                          "give a folder you can write") from None
    return p


def _probe_write(base: Path) -> None:
    """Create something in ``base`` and take it back. An anonymous ``O_TMPFILE`` inode first: it never has
    a name, so a process killed here leaves nothing behind (a named probe did, in CI's kill test). File
    systems without ``O_TMPFILE`` get a named empty folder, removed at once."""
    flag = getattr(os, "O_TMPFILE", 0)
    if flag:
        try:
            os.close(os.open(base, flag | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            return
        except OSError as e:
            if e.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    os.rmdir(_mkdtemp(base, ".wb-probe-"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _mkdtemp(parent: Path, prefix: str) -> Path:
    t = parent / f"{prefix}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    os.mkdir(t, 0o755)
    return t


def _fsync_dir(p: Path) -> None:
    fd = os.open(p, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2(RENAME_EXCHANGE)``; Python's ``os`` has no binding,
    and ``os.replace`` cannot replace a non-empty folder). False where the kernel/file system lacks it."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(b))


class ResultFolder:
    """``with ResultFolder(dest, force) as folder: ...; folder.commit(files, index)``.

    Entering checks ``dest`` and takes its lock (held until exit: the CLI holds it while computing, so a
    second run into the same folder fails at once); :meth:`commit` writes and renames into place. Leaving
    without a commit removes the temporary folder and any parent folders this writer created.
    """

    def __init__(self, dest: str | os.PathLike, force: bool = False) -> None:
        self.dest, self.force = Path(str(dest)), force
        self._fd: int | None = None
        self._created: list[Path] = []
        self.committed = False

    # -- lock ---------------------------------------------------------------------------
    def __enter__(self) -> ResultFolder:
        self.dest = check_destination(self.dest, self.force)
        for a in reversed([self.dest.parent, *self.dest.parent.parents]):
            if _lstat(a) is None:
                try:
                    os.mkdir(a)
                except FileExistsError:
                    continue
                except OSError as e:
                    self._remove_created()
                    raise OutputError(f"cannot create {a} ({e.strerror})", "give a folder you can write") from None
                self._created.append(a)
        try:
            self._lock()
            self._recover()
            check_destination(self.dest, self.force)  # again under the lock: another run may have finished
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _sibling(self, tag: str) -> Path:
        return self.dest.parent / f".{self.dest.name}{tag}"

    def _lock(self) -> None:
        path = self._sibling(_LOCK)
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise OutputError(f"cannot lock {self.dest} ({e.strerror})",
                                  f"remove {path} if it is a link or a folder") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise FolderBusyError(f"another run is writing {self.dest}",
                                      "wait for it to finish or give another folder") from None
            st, now = os.fstat(fd), _lstat(path)
            if now is not None and (now.st_ino, now.st_dev) == (st.st_ino, st.st_dev):
                self._fd = fd
                return
            os.close(fd)  # the previous holder removed this lock file after we opened it: lock the new one

    def _recover(self) -> None:
        """Under the lock no other writer of ``dest`` lives: put back a result renamed aside by a writer
        killed between its two renames (no exchange support), then remove stale temporary siblings."""
        prefix = f".{self.dest.name}"
        stale = [self.dest.parent / n for n in os.listdir(self.dest.parent)
                 if n.startswith(prefix + _TMP) or n.startswith(prefix + _OLD)]
        olds = sorted((p for p in stale if _OLD in p.name), key=lambda p: os.lstat(p).st_mtime_ns)
        if olds and _lstat(self.dest) is None:
            os.rename(olds[-1], self.dest)
            stale.remove(olds[-1])
        for p in stale:
            shutil.rmtree(p, ignore_errors=True)
        for n in os.listdir(self.dest.parent):  # named write probes of killed processes (no O_TMPFILE there)
            pid = n[len(".wb-probe-"):].split("-")[0] if n.startswith(".wb-probe-") else ""
            if pid.isdigit() and not _alive(int(pid)):
                try:
                    os.rmdir(self.dest.parent / n)
                except OSError:
                    pass

    def __exit__(self, *exc) -> None:
        if self._fd is not None:
            try:
                os.unlink(self._sibling(_LOCK))  # while still holding it (see _lock for the waiter's side)
            except OSError:
                pass
            os.close(self._fd)
            self._fd = None
        if not self.committed:
            self._remove_created()

    def _remove_created(self) -> None:
        for a in reversed(self._created):
            try:
                os.rmdir(a)
            except OSError:
                break
        self._created = []

    # -- write ------------------------------------------------------------------------------
    def commit(self, files: dict[str, Writer], index: Callable[[dict[str, int]], bytes]) -> Path:
        """Write ``files`` (name -> ``writer(binary_file)``) and then ``result.json`` = ``index(sizes)``
        into a temporary sibling, fsync, and rename it into place; returns the folder."""
        if self._fd is None or self.committed:
            raise RuntimeError("ResultFolder.commit outside its with block or twice")
        tmp = _mkdtemp(self.dest.parent, f".{self.dest.name}{_TMP}")
        try:
            sizes = {name: _write(tmp / name, w) for name, w in files.items()}
            _write(tmp / INDEX, lambda f: f.write(index(sizes)))
            _fsync_dir(tmp)
            self._replace(tmp)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        self.committed = True
        return self.dest

    def _replace(self, tmp: Path) -> None:
        if _lstat(self.dest) is None:
            os.rename(tmp, self.dest)
        elif _exchange(tmp, self.dest):  # tmp now holds the old result
            _fsync_dir(self.dest.parent)
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            old = self._sibling(f"{_OLD}{os.getpid()}-{uuid.uuid4().hex[:8]}")
            os.rename(self.dest, old)
            os.rename(tmp, self.dest)
            _fsync_dir(self.dest.parent)
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(self.dest.parent)


def _write(path: Path, writer: Writer) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "wb") as f:
        writer(f)
        f.flush()
        os.fsync(f.fileno())
        return f.tell()


def check_file_destination(path: str | os.PathLike) -> Path:
    """The absolute path one output file (``report -o FILE.html``) may be written to; OutputError when it
    is empty, a symbolic link, a folder or special file, under a file, or under /proc or /sys."""
    if not str(path).strip():
        raise OutputError("no output file named (the path is empty)", "give -o FILE.html")
    p = Path(os.path.abspath(os.path.expanduser(str(path))))
    real = os.path.realpath(p)
    if any(real == d or real.startswith(d + "/") for d in _PSEUDO):
        raise OutputError(f"{p} is under a kernel file system, not storage", "give a path on disk")
    st = _lstat(p)
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise OutputError(f"{p} is a symbolic link; files are never written through links", "give the real path")
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{p} is a folder or special file, not a file", "give a file path, e.g. report.html")
    _nearest_ancestor(p)
    return p


def write_file_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write one file through a temporary sibling and a rename: never half-written, never written
    through a symbolic link, never over a folder (see :func:`check_file_destination`)."""
    p = check_file_destination(path)
    try:
        p.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise OutputError(f"cannot create {p.parent} ({e.strerror})", "give a folder you can write") from None
    tmp = p.parent / f".{p.name}{_TMP}{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _write(tmp, lambda f: f.write(data))
        os.replace(tmp, p)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise OutputError(f"cannot write {p} ({e.strerror or type(e).__name__})",
                          "give a path you can write") from None
    return p
