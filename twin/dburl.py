"""Database URLs as users give them (study storage, policy database): checked, with twin's
PostgreSQL driver filled in, and shown in messages without their password."""

from __future__ import annotations

from .spec import TwinError

SCHEMES = ("sqlite", "postgresql", "mysql")


def redact(url: str) -> str:
    """The URL without its password.

    >>> redact("postgresql://twin:secret@db:5432/x")
    'postgresql://twin:***@db:5432/x'
    """
    head, sep, rest = url.partition("://")
    if "@" in rest and ":" in rest.split("@", 1)[0]:
        user = rest.split("@", 1)[0].split(":", 1)[0]
        rest = f"{user}:***@" + rest.split("@", 1)[1]
    return head + sep + rest


def database_url(url, what: str, example: str) -> str:
    """``url`` ready for SQLAlchemy, or a ``TwinError`` naming ``what`` it is for.

    >>> database_url("postgresql://u@h:5432/d", "storage", "x.db")
    'postgresql+psycopg://u@h:5432/d'
    """
    if not isinstance(url, str) or "://" not in url:
        raise TwinError(f"{what} {redact(str(url))!r}: expected a database URL such as sqlite:///{example} or "
                        f"postgresql://user@host:5432/db")
    scheme = url.split("://", 1)[0]
    if not scheme.startswith(SCHEMES):
        raise TwinError(f"{what} {redact(url)!r}: unsupported scheme {scheme!r}; expected sqlite, postgresql or mysql")
    if scheme == "postgresql":
        url = "postgresql+psycopg" + url[len(scheme):]  # the driver twin installs
    return url


def cannot_open(what: str, url: str, error: Exception) -> TwinError:
    """The error for a URL that was well formed but could not be opened, with the reason."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return TwinError(f"{what} {redact(url)}: cannot open it ({reason})")
