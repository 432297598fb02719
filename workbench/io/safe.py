"""The one way a user-named file is opened: regular files only, size checked on the open descriptor,
read bounded.

Why by hand rather than ``Path.read_bytes()``: ``stat()`` before ``open()`` trusts a size that is 0 for
``/dev/zero`` and can change between the two calls, ``open()`` on a FIFO blocks until a writer comes, and
``read_bytes()`` reads whatever the file yields. Here the file is opened first (``O_NONBLOCK`` so a FIFO
cannot block the open, ``O_NOFOLLOW`` where a planted symbolic link must not be followed), ``fstat`` is
taken on that very descriptor, anything but a regular file is refused, and at most ``limit + 1`` bytes
are ever read, so a file that grows or lies about its size is still refused without exhausting memory.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
from collections.abc import Callable
from pathlib import Path

from workbench.core.errors import DataError, InputTooLargeError, WorkbenchError

#: builds the error raised for a refused file from (message, hint)
ErrorFactory = Callable[[str, str], WorkbenchError]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB" if n < 10**7 else f"{n / 1e6:.0f} MB"


def kind_of(mode: int) -> str:
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str | Path, limit: int, *, what: str = "file", nofollow: bool = False,
                 error: ErrorFactory = DataError, hint: str = "") -> tuple[int, int]:
    """Open ``path`` read-only as a regular file of at most ``limit`` bytes -> (fd, size). The caller
    closes the descriptor. Every refusal is one typed line (``error``, or InputTooLargeError for size)."""
    name = str(path)
    if not name.strip():
        raise error(f"no {what} named (the path is empty)", hint or "give a file path")
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | (os.O_NOFOLLOW if nofollow else 0)
    if "\0" in name:
        raise error(f"the {what} path {name[:80]!r} holds a NUL character", hint or "check the path")
    try:
        fd = os.open(os.path.expanduser(name), flags)
    except OSError as e:
        if e.errno == errno.ELOOP and nofollow:
            raise error(f"{what} {name} is a symbolic link, which is not followed here",
                        hint or "give the real file, not a link") from None
        if e.errno == errno.ENOENT:
            raise error(f"no {what} {name}", hint or "check the path") from None
        if e.errno == errno.ENXIO:  # a socket (or a FIFO on some systems) cannot be opened for reading
            raise error(f"{what} {name} is a socket or FIFO, not a regular file",
                        hint or "give a regular file") from None
        raise error(f"cannot open {what} {name} ({e.strerror or type(e).__name__})",
                    hint or "check the path and its permissions") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise error(f"{what} {name} is {kind_of(st.st_mode)}, not a regular file", hint or "give a regular file")
        if st.st_size > limit:
            raise InputTooLargeError(f"{what} {Path(name).name} is {_mb(st.st_size)}, over the {_mb(limit)} limit",
                                     hint or "give a smaller file")
        fcntl.fcntl(fd, fcntl.F_SETFL, fcntl.fcntl(fd, fcntl.F_GETFL) & ~os.O_NONBLOCK)
    except BaseException:
        os.close(fd)
        raise
    return fd, st.st_size


def read_fd(fd: int, limit: int, name: str, what: str = "file") -> bytes:
    """Read at most ``limit`` bytes from ``fd``; InputTooLargeError when there are more (the file grew
    or its size lied), without ever holding more than ``limit + 1`` bytes."""
    chunks, total = [], 0
    while True:
        try:
            chunk = os.read(fd, min(1 << 22, limit + 1 - total))
        except OSError as e:
            raise DataError(f"reading {what} {name} failed ({e.strerror or type(e).__name__})") from None
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
        if total > limit:
            raise InputTooLargeError(f"{what} {Path(name).name} holds more than {_mb(limit)}, over the limit",
                                     "give a smaller file")
    return b"".join(chunks)


def read_file(path: str | Path, limit: int, *, what: str = "file", nofollow: bool = False,
              error: ErrorFactory = DataError, hint: str = "", allow_empty: bool = False) -> bytes:
    """The bytes of a regular file of at most ``limit`` bytes (see :func:`open_regular`)."""
    fd, _ = open_regular(path, limit, what=what, nofollow=nofollow, error=error, hint=hint)
    try:
        data = read_fd(fd, limit, str(path), what)
    finally:
        os.close(fd)
    if not data and not allow_empty:
        raise error(f"{what} {Path(str(path)).name} is empty", hint or "give a non-empty file")
    return data


def check_file(path: str | Path, limit: int, *, what: str = "file", nofollow: bool = False,
               error: ErrorFactory = DataError, hint: str = "") -> os.stat_result:
    """For libraries that take a path (MNE, scipy.io): the same checks as :func:`open_regular` on an
    opened descriptor, returning its stat. What the library opens next is the file checked here unless
    it is replaced in between; sizes the library then decodes are bounded by the callers' own limits."""
    fd, _ = open_regular(path, limit, what=what, nofollow=nofollow, error=error, hint=hint)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def open_binary(path: str | Path, limit: int, **kw):
    """A checked regular file as a binary file object (seekable), for zipfile and numpy's header reader."""
    fd, _ = open_regular(path, limit, **kw)
    return os.fdopen(fd, "rb")
