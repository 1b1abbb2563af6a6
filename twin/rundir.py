"""Run directories written all at once: a run's files appear together or not at all."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

from .spec import TwinError


@contextmanager
def atomic_directory(target: str | Path):
    """Yield a scratch folder next to ``target``; on success it replaces ``target`` in one rename.

    On any error the scratch folder is removed and ``target`` keeps its previous content.
    """
    target = Path(target)
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TwinError(f"{parent}: cannot create the output folder ({e.strerror})") from None
    if target.exists() and not target.is_dir():
        raise TwinError(f"{target}: exists and is not a folder")
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=parent))
    try:
        yield scratch
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    old = None
    if target.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=parent))
        target.rename(old / "previous")
    scratch.rename(target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
