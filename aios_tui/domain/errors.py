"""Error messages fit to show and to log: one line, short, in words an operator acts on, anything like a
credential masked, and clean of terminal escapes (a remote error message is remote text).

:func:`describe_error` looks through an exception and the ones it wraps (``__cause__``, ``__context__``, the
``reason`` urllib3 keeps) for what actually went wrong — a refused connection, a name that does not resolve,
a certificate the machine does not trust, an HTML page where JSON was expected — and says that ("DNS: no
such host prom.internal"), rather than the outermost wrapper's ``MaxRetryError: HTTPConnectionPool(…)``.
Library-specific errors (an SSH host key that changed, an HTTP 403) are named by their sources, which know
them; this module knows the standard library only.
"""

from __future__ import annotations

import errno
import json
import re
import socket
import ssl
from collections.abc import Iterator

from aios_tui.domain.text import clean

__all__ = ["PlainError", "describe_error", "plain_reason", "redact"]

_SECRET = re.compile(
    r"(?i)(?P<label>\b(?:authorization|token|password|passwd|secret|api[_-]?key|access[_-]?key"
    r"|x-amz-security-token)\s*[=:]\s*)(?:(?:bearer|basic)\s+)?[^\s,;&)\]\"']+"
    r"|(?P<scheme>\b(?:bearer|basic)\s+)[^\s,;&)\]\"']+"
    r"|(?P<url>\b[a-z][a-z0-9+.-]*://)[^/\s:@]+:[^/\s@]+@"
)


def _mask(match: re.Match[str]) -> str:
    if match.group("url"):
        return match.group("url") + "***@"
    return (match.group("label") or match.group("scheme")) + "***"


def redact(text: str) -> str:
    """Mask values after ``token=``, ``password:``, ``Authorization:``, ``Bearer`` and the like, and the
    ``user:password@`` of a URL."""
    return _SECRET.sub(_mask, text)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and every exception it wraps, outermost first, each once."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        e = todo.pop(0)
        if id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        for inner in (e.__cause__, e.__context__, getattr(e, "reason", None)):
            if isinstance(inner, BaseException):
                todo.append(inner)
        todo.extend(a for a in e.args if isinstance(a, BaseException))


_ERRNO_WORDS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "connection timed out",
    errno.ECONNABORTED: "connection aborted",
    errno.EPIPE: "connection closed",
}


def plain_reason(exc: BaseException, *, timeout: float | None = None) -> str | None:
    """What went wrong in plain words, when it is one of the failures every network source shares; None
    when nothing in the chain is recognised (the caller then shows the exception as it is)."""
    for e in _chain(exc):
        if isinstance(e, TimeoutError):
            return f"timed out after {timeout:g}s" if timeout is not None else "timed out"
        if isinstance(e, socket.gaierror):
            return f"DNS: cannot resolve the host name ({clean(e.strerror or e, 80)})"
        if isinstance(e, ssl.SSLCertVerificationError):
            why = e.verify_message or e.reason or "verification failed"
            return f"TLS: the server's certificate is not trusted ({clean(why, 80)})"
        if isinstance(e, ssl.SSLError):
            return f"TLS: {clean(e.reason or e.strerror or e, 80)}"
        if isinstance(e, json.JSONDecodeError):
            if e.doc.lstrip()[:1] == "<":
                return "an HTML page came back, not JSON: is the URL the API's (not a login page or a proxy)?"
            return f"the answer is not valid JSON ({e.msg} at character {e.pos})"
        if isinstance(e, OSError) and e.errno in _ERRNO_WORDS:
            return _ERRNO_WORDS[e.errno] + _detail(e)
        if isinstance(e, ConnectionRefusedError):
            return "connection refused" + _detail(e)
        if isinstance(e, ConnectionResetError):
            return "connection reset" + _detail(e)
    return None


def _detail(exc: BaseException) -> str:
    """`` (connect to 10.0.0.1:6443 refused)``: what the exception itself says, unless that is only the
    system's wording of its errno (``[Errno 111] Connection refused``)."""
    text = " ".join(str(exc).split())
    if not text or text.startswith("[Errno") or text.lower() in {w for w in _ERRNO_WORDS.values()}:
        return ""
    return f" ({clean(text, 120)})"


class PlainError(Exception):
    """An error whose message is already words for people (a source's own sentence): shown as it is,
    without its class name."""


def describe_error(exc: BaseException, *, limit: int = 200, timeout: float | None = None) -> str:
    """What went wrong on one line: plain words where :func:`plain_reason` knows the failure, else a
    :class:`PlainError`'s own words, else ``ConnectionError: …`` as raised; credentials masked, escapes
    removed, cut to ``limit`` characters."""
    said = plain_reason(exc, timeout=timeout)
    if said is None and isinstance(exc, PlainError) and str(exc).strip():
        said = " ".join(str(exc).split())
    if said is None:
        text = " ".join(str(exc).split())
        said = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return clean(redact(said), limit)
