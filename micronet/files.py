"""Every file micronet writes goes through here, and the checks on files it reads.

A file is replaced, never edited in place: the new bytes go to a fresh
temporary file beside the target (created exclusively, so never through a
link), are flushed to disk, and are renamed over the target. A reader sees
the old file or the new one, never half of either; a crash leaves the old
file and no temporary; and a target that is a symlink is replaced by the
file rather than followed, so a run directory received from someone else
cannot make micronet overwrite a file outside it. The one file that grows
instead, metrics.csv, is appended through `append_text`, which refuses a
link too.

Reading: `read_regular_bytes` refuses anything that is not a regular file
(a FIFO would block forever, /dev/zero would fill memory) before reading a
byte, and can cap the size.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import re
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "append_text",
    "csv_text",
    "finite_or_null",
    "json_text",
    "open_regular",
    "read_regular_bytes",
    "regular_file_size",
    "remove_stale_temporaries",
    "replacing",
    "write_bytes_atomic",
    "write_figure",
    "write_json_atomic",
    "write_text_atomic",
    "writing_text",
]

# .<name>.<pid>.<8 hex digits>.tmp: what `_temporary` creates, and all that
# `remove_stale_temporaries` may delete.
_TEMPORARY = re.compile(r"\..+\.\d+\.[0-9a-f]{8}\.tmp")
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _temporary(path: Path) -> tuple[Path, int]:
    """A new, empty, exclusively created file beside `path`: (its path, an open descriptor)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    return tmp, os.open(tmp, _NEW_FILE, 0o666)  # 0o666 less the umask: the usual permissions


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data`: a fresh temporary file beside it, synced, then renamed over it."""
    path = Path(path)
    tmp, fd = _temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # including Ctrl-C: never leave the temporary behind
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Replace `path` with `text` in UTF-8 (see `write_bytes_atomic`)."""
    write_bytes_atomic(path, text.encode("utf-8"))


def finite_or_null(obj: Any) -> Any:
    """`obj` with every non-finite float as None (JSON has no NaN), tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_null(v) for v in obj]
    return obj


def csv_text(columns: list[str], rows: list[dict[str, Any]], header: bool = True) -> str:
    """Metrics rows as CSV lines in `columns` order: ints as written, floats exactly (by repr)."""
    text = io.StringIO(newline="")
    writer = csv.writer(text)
    if header:
        writer.writerow(columns)
    writer.writerows([v if isinstance(v, int) else repr(float(v)) for v in (row[c] for c in columns)] for row in rows)
    return text.getvalue()


def json_text(data: Any) -> str:
    """Strict JSON text as micronet writes it: non-finite numbers as null, one item per line."""
    return json.dumps(finite_or_null(data), indent=1, allow_nan=False) + "\n"


def write_json_atomic(path: str | os.PathLike[str], data: Any) -> None:
    """Replace `path` with `data` as strict JSON (non-finite floats written as null)."""
    write_text_atomic(path, json_text(data))


def write_figure(fig: Figure, path: str | os.PathLike[str], **savefig_options: Any) -> None:
    """Save a matplotlib figure to `path` atomically; the format follows the suffix (png by default)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=Path(path).suffix[1:].lower() or "png", **savefig_options)
    write_bytes_atomic(path, buffer.getvalue())


@contextlib.contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """For writers that need a file name (an animation writer, an external program).

    Yields the path of a fresh empty temporary file beside `path`; when the
    block ends without an error, that file is synced and renamed over
    `path`, else it is removed.
    """
    path = Path(path)
    tmp, fd = _temporary(path)
    os.close(fd)
    try:
        yield tmp
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def writing_text(path: str | os.PathLike[str]) -> Iterator[TextIO]:
    """For text written piece by piece (predictions of a big file): a UTF-8 stream to a fresh temporary
    file beside `path`, synced and renamed over `path` when the block ends without an error, else removed."""
    path = Path(path)
    tmp, fd = _temporary(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def append_text(path: str | os.PathLike[str], text: str, sync: bool = True) -> None:
    """Append `text` to the existing regular file `path` (and sync it, unless told not to); a symlink is refused.

    For metrics.csv, which is too long-lived to rewrite each epoch. The
    trainer appends without syncing: rows past the last checkpoint are
    derived again on resume anyway.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(f"{path} is not a regular file")
        data = text.encode("utf-8")
        while data:
            data = data[os.write(fd, data):]
        if sync:
            os.fsync(fd)
    finally:
        os.close(fd)


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _not_regular(path: str | os.PathLike[str], mode: int) -> ValueError:
    kind = _KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return ValueError(f"{os.fspath(path)!r} is {kind}, not a regular file")


def regular_file_size(path: str | os.PathLike[str]) -> int:
    """The size of the regular file `path` (links followed); ValueError for anything else, without opening it."""
    info = os.stat(path)
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(path, info.st_mode)
    return info.st_size


def open_regular(path: str | os.PathLike[str], limit: int | None = None) -> BinaryIO:
    """The regular file `path`, open for reading in binary, checked before anything is read.

    For readers that stream a file rather than hold it. Raises ValueError
    when `path` is not a regular file (a directory, a FIFO, a device such
    as /dev/zero) or holds more than `limit` bytes; OSError
    (FileNotFoundError, PermissionError) as open() does.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer to appear.
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _not_regular(path, info.st_mode)
        if limit is not None and info.st_size > limit:
            raise ValueError(f"{os.fspath(path)!r} is {info.st_size:,} bytes, over the limit of {limit:,}")
        return os.fdopen(os.dup(fd), "rb")
    finally:
        os.close(fd)


def read_regular_bytes(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The bytes of the regular file `path`, checked before anything is read (see `open_regular`)."""
    with open_regular(path, limit) as f:
        data = f.read() if limit is None else f.read(limit + 1)
    if limit is not None and len(data) > limit:  # it grew after the check
        raise ValueError(f"{os.fspath(path)!r} is over the limit of {limit:,} bytes")
    return data


def remove_stale_temporaries(directory: str | os.PathLike[str]) -> list[str]:
    """Delete the temporary files that writers killed mid-write (SIGKILL, power loss) left in `directory`.

    Only names this module creates are touched. Call it only while no
    other process writes the directory (the trainer holds its lock).
    Returns the names removed.
    """
    removed = []
    for entry in os.scandir(os.fspath(directory)):
        if _TEMPORARY.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)
            removed.append(entry.name)
    return sorted(removed)
