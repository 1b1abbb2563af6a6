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
    scratch = _scratch_folder(target)
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


def _scratch_folder(target: Path) -> Path:
    """A new empty folder beside ``target``, with the mode a plain ``mkdir`` would give it (0777
    less the umask; ``mkdtemp`` would make it 0700)."""
    while True:
        scratch = target.parent / f".{target.name}.{secrets.token_hex(4)}"
        try:
            scratch.mkdir()
            return scratch
        except FileExistsError:
            continue


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


LOCK = ".twin-run.lock"


def lock_run_folder(folder: str | Path) -> int:
    """Hold the run folder against a second writer for as long as the returned descriptor is open
    (the kernel lets go when the process ends, killed or not).  A second ``twin run`` into the
    same folder gets a ``TwinError`` naming the folder and the holder's pid."""
    import fcntl

    path = Path(folder) / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise TwinError(f"{folder}: another twin run (pid {holder}) is writing to this run folder; wait for it to "
                        f"finish, or give another --out") from None
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def unlock_run_folder(fd: int) -> None:
    os.close(fd)  # closing the descriptor releases the lock


# -- crash points: the crash-safety tests kill twin at named points (TWIN_TEST_KILL_AT=LABEL:N) ------

KILL_AT = "TWIN_TEST_KILL_AT"
KILL_PID = "TWIN_TEST_KILL_PID"
if os.environ.get(KILL_AT):  # the process to kill: the first twin process, not a worker it started
    os.environ.setdefault(KILL_PID, str(os.getpid()))
_hits: dict[str, int] = {}


def crash_point(label: str) -> None:
    """Where a crash test may kill twin: at the N-th time this process passes ``label`` when
    ``TWIN_TEST_KILL_AT=LABEL:N``, SIGKILL to the twin process the test started (a worker that
    passes it goes on, and has to end by itself once its parent is gone).  Nothing happens otherwise."""
    spec = os.environ.get(KILL_AT)
    if not spec:
        return
    want, _, n = spec.rpartition(":")
    if want != label:
        return
    _hits[label] = _hits.get(label, 0) + 1
    if _hits[label] == int(n):
        import signal

        os.kill(int(os.environ.get(KILL_PID, os.getpid())), signal.SIGKILL)
