"""Run directories written all at once: a run's files appear together or not at all.

A run folder carries a ``.twin-run`` marker.  Writing to a path that already holds a run
replaces it; a path holding anything else is refused, so ``--out`` never deletes a user's files.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .spec import TwinError

MARKER = ".twin-run"


def check_output_folder(target: str | Path) -> Path:
    """Refuse, before any work, a target that is not a twin run folder, or that holds the cwd."""
    target = Path(target)
    resolved = target.resolve()
    if resolved == Path(resolved.anchor) or Path.cwd().resolve().is_relative_to(resolved):
        raise TwinError(f"{target}: refusing to replace the current folder or one above it; "
                        f"name a new folder for the results")
    if target.exists():
        if not target.is_dir():
            raise TwinError(f"{target}: exists and is not a folder")
        if any(target.iterdir()) and not (target / MARKER).is_file():
            raise TwinError(f"{target}: exists, is not empty and is not a twin run folder (no {MARKER}); "
                            f"choose another folder or remove it")
    return target


@contextmanager
def atomic_directory(target: str | Path):
    """Yield a scratch folder next to ``target``; on success it replaces ``target`` in one rename.

    On any error the scratch folder is removed and ``target`` keeps its previous content.
    """
    target = check_output_folder(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TwinError(f"{parent}: cannot create the output folder ({e.strerror})") from None
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        (scratch / MARKER).write_text("written by twin; replaced whole by the next run into this folder\n")
        yield scratch
        old = None
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
            target.rename(old / "previous")
        scratch.rename(target)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _scratch_file(path: Path) -> tuple[int, Path]:
    """A new empty file beside ``path`` and its descriptor, with the mode a plain ``open()`` would
    give it (0666 less the umask; ``mkstemp`` would make it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}"
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666), tmp
        except FileExistsError:
            continue


def write_atomically(path: str | Path, data: str | bytes) -> None:
    """Write a file whole or not at all: into a scratch file beside it, then one rename."""
    path = Path(path)
    fd, tmp = _scratch_file(path)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_frame_atomically(path: str | Path, frame, **kwargs) -> None:
    """``frame.to_parquet`` whole or not at all."""
    path = Path(path)
    fd, tmp = _scratch_file(path)
    os.close(fd)
    try:
        frame.to_parquet(tmp, **kwargs)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
