"""Database URLs as users give them (study storage, policy database): checked, with twin's
PostgreSQL driver filled in, and shown in messages without their password."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .spec import TwinError

SCHEMES = ("sqlite", "postgresql", "mysql")
DRIVER = "postgresql+psycopg"


MASK = "***"
#: query parameters (libpq's and others') whose value is a secret
SECRET_PARAMS = ("password", "sslpassword", "passfile_password")


def redact(url) -> str:
    """The URL without its passwords: the ``user:password@`` part and ``password=`` query
    parameters, as a URL parser reads them (a password may hold ``@``, ``:`` or ``%`` escapes).

    >>> redact("postgresql://twin:s%40cr@t@db:5432/x?password=p&sslmode=require")
    'postgresql://twin:***@db:5432/x?password=***&sslmode=require'
    """
    text = str(url)
    userinfo = _userinfo(text)
    if userinfo is not None and ":" in userinfo:
        head = text.index("://") + 3
        text = f"{text[:head]}{userinfo.split(':', 1)[0]}:{MASK}{text[head + len(userinfo):]}"
    before, _, rest = text.partition("?")
    query, h, fragment = rest.partition("#")
    pairs = parse_qsl(query, keep_blank_values=True)
    if any(k.lower() in SECRET_PARAMS for k, _ in pairs):
        query = "&".join(f"{quote(k, safe='')}={MASK if k.lower() in SECRET_PARAMS else quote(v, safe='/:')}"
                         for k, v in pairs)
        text = f"{before}?{query}{h}{fragment}"
    return text


def secrets_in(url) -> set[str]:
    """The passwords a URL holds, as written and decoded (to scrub them from a driver's message)."""
    text = str(url)
    found = set()
    userinfo = _userinfo(text)
    if userinfo is not None and ":" in userinfo:
        found.add(userinfo.split(":", 1)[1])
    query = text.partition("?")[2].partition("#")[0]
    found.update(v for k, v in parse_qsl(query, keep_blank_values=True) if k.lower() in SECRET_PARAMS)
    found |= {unquote(s) for s in found}
    return {s for s in found if s}


def _userinfo(text: str) -> str | None:
    """The ``user[:password]`` before the host, as written, or None.  A raw ``/``, ``?``, ``#`` or
    ``[`` in a password cuts a parser's host part short; then it runs to the URL's last ``@``."""
    scheme, sep, rest = text.partition("://")
    if not sep or rest.startswith("/"):  # sqlite:///path: no user, no host
        return None
    try:
        netloc = urlsplit(text).netloc
    except ValueError:
        netloc = None
    if netloc is not None and "@" not in rest[len(netloc):]:
        userinfo, at, _ = netloc.rpartition("@")
    else:
        userinfo, at, _ = rest.rpartition("@")
    return userinfo if at else None


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
        url = DRIVER + url[len(scheme):]  # the driver twin installs
    return url


def cannot_open(what: str, url: str, error: Exception) -> TwinError:
    """The error for a URL that was well formed but could not be opened, with the reason."""
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    for secret in sorted(secrets_in(url), key=len, reverse=True):  # a driver may quote its URL
        reason = reason.replace(secret, MASK)
    if url.startswith(DRIVER + "://"):  # as the user wrote it, without the driver database_url filled in
        url = "postgresql" + url[len(DRIVER):]
    return TwinError(f"{what} {redact(url)}: cannot open it ({reason})")


def existing_database(url: str, flag: str) -> str:
    """``url`` as given, for commands that only read: a SQLite file that does not exist is a
    ``TwinError`` naming ``flag`` (opening it would create an empty database)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if not isinstance(url, str) or not url.startswith("sqlite"):
        return url
    try:
        path = make_url(url).database
    except ArgumentError:
        return url  # malformed: the store's own check says how
    if path and path != ":memory:" and not path.startswith("file:") and not Path(path).exists():
        raise TwinError(f"{flag} {redact(url)}: no such database ({path} does not exist); twin run creates it")
    return url
