"""Errors a user can cause. The CLI prints them, one line each, and exits with status 2.

Everything else that escapes is a bug in twin and keeps its traceback.
"""

from __future__ import annotations

from dataclasses import dataclass


class TwinError(Exception):
    """A mistake in the user's input: a file, a flag or an argument."""

    exit_status = 2


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a model: where (file, line, dotted path) and what was expected."""

    path: str
    message: str
    file: str | None = None
    line: int | None = None

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class SpecError(TwinError):
    """One or more problems in a model, or in an override of it; ``str()`` gives a line each."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(str(p) for p in self.problems))

    def __reduce__(self):  # rebuilt from its problems when it crosses a process boundary
        return type(self), (self.problems,)

    def located(self, file: str | None, lines: dict[str, int] | None = None) -> "SpecError":
        """The same problems, pinned to ``file`` and the nearest line known for each path."""
        out = []
        for p in self.problems:
            line = p.line
            if line is None and lines:
                parts = p.path.split(".") if p.path else []
                while parts and ".".join(parts) not in lines:
                    parts.pop()
                line = lines.get(".".join(parts))
            out.append(Problem(p.path, p.message, p.file or file, line))
        return SpecError(out)
