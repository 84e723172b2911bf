"""The audit log: one JSON object per line for every action attempted, durable before the call returns.

Lines are appended with ``O_APPEND`` in a single ``write`` and ``fsync``-ed, so concurrent consoles do not
interleave and a crash loses at most a line being written (which :meth:`AuditLog.read` then skips). The
file is created ``0600`` in a ``0700`` directory. Only the action's own arguments are written, never a
credential.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = ["AuditEntry", "AuditError", "AuditLog", "default_audit_path"]

log = logging.getLogger("aios_tui.ops")

_READ_BLOCK = 64 * 1024


class AuditError(Exception):
    """The audit log cannot be written: the action must not run."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One attempted action. ``outcome`` is ``ok``, ``failed`` or ``refused``."""

    ts: str
    """ISO 8601, UTC."""
    user: str
    host: str
    role: str
    action: str
    target: str
    source: str
    title: str
    outcome: str
    message: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    warnings: tuple[str, ...] = ()

    def to_json(self) -> str:
        doc: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        doc["params"] = dict(self.params)
        doc["warnings"] = list(self.warnings)
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), default=str)

    @classmethod
    def from_json(cls, line: str) -> AuditEntry:
        doc = json.loads(line)
        if not isinstance(doc, dict):
            raise ValueError("not a JSON object")
        return cls(
            ts=str(doc["ts"]),
            user=str(doc["user"]),
            host=str(doc.get("host", "")),
            role=str(doc.get("role", "")),
            action=str(doc["action"]),
            target=str(doc.get("target", "")),
            source=str(doc.get("source", "")),
            title=str(doc.get("title", "")),
            outcome=str(doc["outcome"]),
            message=str(doc.get("message", "")),
            params=MappingProxyType(dict(doc.get("params") or {})),
            warnings=tuple(str(w) for w in doc.get("warnings") or ()),
        )


def default_audit_path() -> Path:
    """``$XDG_STATE_HOME/aios-tui/audit.jsonl``, by default ``~/.local/state/aios-tui/audit.jsonl``."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "aios-tui" / "audit.jsonl"


class AuditLog:
    """An append-only JSON Lines file of :class:`AuditEntry`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def ensure_writable(self) -> None:
        """Create the file (and its directory) if needed and check it can be appended to.

        Raises :class:`AuditError`. Called before an action runs, so that no change goes unaudited.
        """
        os.close(self._open())

    def append(self, entry: AuditEntry) -> None:
        """Append one line and make it durable (``fsync``). Raises :class:`AuditError`."""
        data = (entry.to_json() + "\n").encode()
        fd = self._open()
        try:
            size = os.fstat(fd).st_size
            if size and os.pread(fd, 1, size - 1) != b"\n":  # a torn line from a crash: do not extend it
                data = b"\n" + data
            view = memoryview(data)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror or exc}") from exc
        finally:
            os.close(fd)

    def read(self, limit: int | None = None) -> list[AuditEntry]:
        """The entries, oldest first; with ``limit``, only the last ``limit`` (read from the file's end).

        A missing file gives ``[]``. A torn last line (a crash mid-write) or a corrupt line is skipped.
        """
        if limit is not None and limit <= 0:
            return []
        try:
            lines = self._tail_lines(limit)
        except FileNotFoundError:
            return []
        out: list[AuditEntry] = []
        for number, raw in enumerate(lines):
            if not raw.strip():
                continue
            try:
                out.append(AuditEntry.from_json(raw.decode("utf-8")))
            except (ValueError, KeyError, TypeError, UnicodeDecodeError) as exc:
                if number != len(lines) - 1:
                    log.warning("audit log %s: skipping a corrupt line: %s", self.path, exc)
        return out[-limit:] if limit is not None else out

    def _tail_lines(self, limit: int | None) -> list[bytes]:
        with self.path.open("rb") as f:
            if limit is None:
                return f.read().split(b"\n")
            end = f.seek(0, os.SEEK_END)
            pos = end
            chunk = b""
            # One more line than asked for: the last one may be torn, the first one partial.
            while pos > 0 and chunk.count(b"\n") <= limit + 1:
                step = min(_READ_BLOCK, pos)
                pos -= step
                f.seek(pos)
                chunk = f.read(step) + chunk
            lines = chunk.split(b"\n")
            return lines if pos == 0 else lines[1:]

    def _open(self) -> int:
        try:
            directory = self.path.parent
            if not directory.is_dir():
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            created = not self.path.exists()
            fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            raise AuditError(f"cannot write the audit log {self.path}: {exc.strerror or exc}") from exc
        if created:  # make the new directory entry durable too
            try:
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
            except OSError:
                log.debug("audit log %s: could not fsync its directory", self.path)
        return fd
