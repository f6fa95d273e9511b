"""Writing files so that a user's data are never lost: atomic replacement and input protection.

Every file flowad writes goes to a temporary file *in the same folder* (so the final rename never
crosses a file system), is flushed and ``fsync``-ed, and is then renamed over the target with
:func:`os.replace`, which is atomic on POSIX and Windows. A process killed at any moment leaves
either the old file or the new one, never a truncated mix; the folder entry is synced as well, so
the rename survives a power cut. Temporary files are created with mode ``0o666`` filtered by the
caller's umask, exactly like a plain ``open(path, "w")``, so a written file has the permissions
the user expects (``tempfile.mkstemp`` would give ``0o600``).

:func:`check_not_inputs` refuses an output path that names one of a command's inputs before any
work is done.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> atomic_write_bytes(folder / "a.txt", b"hello").read_bytes()
    b'hello'
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

__all__ = [
    "TEMP_MARK",
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "check_not_inputs",
    "fsync_folder",
    "remove_stale_temporaries",
    "same_file",
    "temporary_path",
    "write_new_file",
]

#: Part of the name of every temporary file flowad creates, so that leftovers of a killed write
#: can be recognised (and cleaned) without touching anything else.
TEMP_MARK = ".flowad-tmp-"


def temporary_path(path: str | os.PathLike) -> Path:
    """A new hidden name beside ``path`` for a temporary file (no file is created)."""
    path = Path(path)
    return path.with_name(f".{path.name}{TEMP_MARK}{secrets.token_hex(4)}")


def write_new_file(path: Path, data: bytes) -> None:
    """Create ``path`` (it must not exist) with ``data``, flushed to disk; the umask applies."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename inside it) to disk; a no-op where folders cannot be opened."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A temporary path beside ``path`` to write to; renamed over ``path`` when the block succeeds.

    For writers that take a path (``DataFrame.to_parquet``, ``Figure.savefig``, ONNX's ``save``).
    The temporary file is removed if the block raises; ``path`` is then untouched.

    Args:
        path: The file to create or replace. Its folder is created if needed.

    Yields:
        The temporary path (same folder, hidden name, no file created yet).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
        fsync_folder(path.parent)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def atomic_write_bytes(path: str | os.PathLike, data: bytes | Callable[[object], None]) -> Path:
    """Write ``data`` to ``path`` atomically (see the module docstring).

    Args:
        path: The file to create or replace.
        data: The bytes, or a function that writes to a binary file handle.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.
    """
    path = Path(path)
    with atomic_path(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies
        with os.fdopen(fd, "wb") as handle:
            if isinstance(data, (bytes, bytearray, memoryview)):
                handle.write(data)
            else:
                data(handle)
            handle.flush()
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """:func:`atomic_write_bytes` for text, UTF-8 encoded."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def remove_stale_temporaries(folder: str | os.PathLike, names: Iterable[str]) -> list[Path]:
    """Delete leftovers of killed writes of the files ``names`` in ``folder`` (nothing else).

    Returns:
        The files removed.
    """
    folder = Path(folder)
    removed = []
    for name in names:
        for stale in folder.glob(f".{name}{TEMP_MARK}*"):
            with contextlib.suppress(OSError):
                stale.unlink()
                removed.append(stale)
    return removed


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name the same file (hard links and symbolic links included)."""
    a, b = Path(a), Path(b)
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def check_not_inputs(output: str | os.PathLike, inputs: Iterable[str | os.PathLike], option: str = "--output") -> None:
    """Refuse an output path that names one of the inputs (a file, or a folder read as a whole).

    Args:
        output: The path a command is about to write.
        inputs: The files (and folders) it reads; give a model folder's files, not only the folder.
        option: The parameter that named ``output``, for the message.

    Raises:
        ValueError: If writing ``output`` would replace or alter an input.
    """
    out = Path(output)
    for item in inputs:
        if same_file(out, item):
            raise ValueError(f"{option} {str(out)!r} is one of the inputs; choose another file name "
                             f"(flowad never writes over its inputs)")
