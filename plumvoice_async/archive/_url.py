"""The archive's database URL: checked at ``Archive.open``, and shown only without a password."""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from .._errors import InvalidParameterError

__all__ = ["check_url", "checked_url", "redact_url"]

_SCHEMES = ("sqlite", "postgresql", "postgres")
_EXPECTED = "expected sqlite:///PATH or postgresql://[user[:password]@]host[:port]/database"
_QUERY_PASSWORD = re.compile(r"(password\s*=\s*)('[^']*'|[^&\s]*)", re.IGNORECASE)


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***``: in the user part, or a ``password=``.

    Judged on the text, not a URL parser's reading, so a password that breaks the URL's
    syntax (an unescaped ``@``, ``/``, ``#`` or ``?``) is hidden whole too: the user part runs
    to the *last* ``@``, whatever it holds.
    """
    scheme, separator, rest = url.partition("://")
    userinfo, at, host = rest.rpartition("@")
    if at and ":" in userinfo:
        rest = f"{userinfo.partition(':')[0]}:***@{host}"
    return _QUERY_PASSWORD.sub(r"\1***", scheme + separator + rest)


def checked_url(url: object) -> str:
    """``url`` with its scheme in lower case (RFC 3986: schemes ignore case; libpq does not),
    or ``InvalidParameterError`` naming ``url``: never a password."""
    if not isinstance(url, str):
        raise InvalidParameterError("url", type(url).__name__, f"{_EXPECTED}, as a str")
    if "\x00" in url:
        raise InvalidParameterError("url", redact_url(url), "a NUL character")
    scheme, separator, rest = url.partition("://")
    scheme = scheme.lower()
    if not separator or scheme not in _SCHEMES:
        raise InvalidParameterError("url", redact_url(url), _EXPECTED)
    url = f"{scheme}://{rest}"
    if scheme == "sqlite":
        path = rest.removeprefix("/")
        if not rest.startswith("/") or not path:
            raise InvalidParameterError("url", url, "expected sqlite:///PATH: a file's path")
        if "?" in path or "#" in path:
            raise InvalidParameterError(
                "url", url, "sqlite:///PATH takes no ?options or #fragment (the file's name)"
            )
        return url
    check_url(url)
    return url


def check_url(url: str) -> None:
    """Refuse a URL whose password libpq would read otherwise than ``redact_url`` hides it.

    libpq ends the user part at the *first* ``@`` (before any ``/``), a URL parser at the
    last: with an unescaped ``@`` or ``/`` in the password, part of it becomes the host, port
    or database name, which libpq's error messages quote. Its parse errors quote the
    offending token (a broken ``%`` escape in the password, the whole URL for an unknown
    prefix). So the URL is read here first, and refused, quoting nothing of libpq's, unless
    libpq's password is the one ``redact_url`` hides. Without psycopg nothing is checked:
    entering says the extra is missing.

    Raises:
        InvalidParameterError: ``url``, shown without its password.
    """
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:
        return
    reason = None
    try:
        read = conninfo_to_dict(url).get("password")
    except psycopg.Error:
        reason = "not a PostgreSQL URL libpq can read"
    else:
        # The user part: to the last "@" before the query (whose values may hold an "@").
        userinfo, at, _ = url.partition("://")[2].partition("?")[0].rpartition("@")
        hidden = {unquote(userinfo.partition(":")[2])} if at and ":" in userinfo else set()
        query = url.rpartition("?")[2] if "?" in url else ""
        hidden |= {value for name, value in parse_qsl(query) if name == "password"}
        if read not in hidden | ({None} if not hidden else set()):
            reason = "percent-encode the password (%40 for @, %2F for /, %3F for ?)"
    # Raised here, outside the handler: libpq's own message never rides along as context.
    if reason is not None:
        raise InvalidParameterError("url", redact_url(url), reason)
