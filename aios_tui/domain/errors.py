"""Error messages fit to show and to log: one line, short, anything like a credential masked."""

from __future__ import annotations

import re

_SECRET = re.compile(
    r"(?i)(?P<label>\b(?:authorization|token|password|passwd|secret|api[_-]?key|access[_-]?key"
    r"|x-amz-security-token)\s*[=:]\s*)(?:(?:bearer|basic)\s+)?[^\s,;&]+"
    r"|(?P<scheme>\b(?:bearer|basic)\s+)[^\s,;&]+"
)


def _mask(match: re.Match[str]) -> str:
    return (match.group("label") or match.group("scheme")) + "***"


def redact(text: str) -> str:
    """Mask values after ``token=``, ``password:``, ``Authorization:``, ``Bearer`` and the like."""
    return _SECRET.sub(_mask, text)


def describe_error(exc: BaseException, *, limit: int = 200, timeout: float | None = None) -> str:
    """``ConnectionRefusedError: …`` on one line, credentials masked, cut to ``limit`` characters;
    ``timed out after 5s`` for a timeout when ``timeout`` is given."""
    if isinstance(exc, TimeoutError) and timeout is not None:
        return f"timed out after {timeout:g}s"
    text = " ".join(str(exc).split())
    message = redact(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)
    return message if len(message) <= limit else message[: limit - 1] + "…"
