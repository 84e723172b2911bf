"""The audit log, written ahead: one JSON object per line, durable before the change it describes.

An action writes an ``intent`` line (who, what, the targets, the plan's digest and its steps) and ``fsync``-s
it before its first change; each step's end after the step (``step``); and one ``end`` line with the outcome
(``ok``, ``failed``, ``cancelled``). A refusal is one ``end`` line with outcome ``refused``. If the intent
cannot be written the action does not run. So a console killed mid-action (``kill -9``, a dropped SSH session)
leaves an intent and the steps it finished: the next start finds the intent without an end, reports it
(:meth:`AuditLog.unfinished`) and closes it as ``interrupted``.

Lines are appended with ``O_APPEND`` in a single ``write`` and ``fsync``-ed, so concurrent consoles do not
interleave and a crash loses at most a line being written (which :meth:`AuditLog.read` then skips). The
file is created ``0600`` in a ``0700`` directory. Only the action's own arguments are written, never a
credential.
"""

from __future__ import annotations

import json
import logging
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from types import MappingProxyType
from typing import Any

__all__ = [
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "default_audit_path",
    "process_start",
]

log = logging.getLogger("aios_tui.ops")

_READ_BLOCK = 64 * 1024

INTENT, STEP, END = "intent", "step", "end"
"""The phases of an action's lines."""

_OMITTED_EMPTY = frozenset({"id", "phase", "pid", "pid_start", "digest", "steps", "step", "fingerprint"})
"""Keys left out of a line when empty: the lines of a plain outcome stay as they always were."""


class AuditError(Exception):
    """The audit log cannot be written: the action must not run."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line. ``phase`` is ``intent``, ``step`` or ``end``; ``outcome`` is, for an end, ``ok``,
    ``failed``, ``cancelled``, ``refused`` or ``interrupted``; for a step, ``ok`` or ``failed``; for an
    intent, ``started``. Lines of one action share ``id``."""

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
    id: str = ""
    phase: str = END
    pid: int = 0
    pid_start: str = ""
    """When the process started (from /proc): a pid alone may have been reused since."""
    digest: str = ""
    """A hash of the plan the user confirmed (:attr:`~aios_tui.ops.core.Plan.digest`)."""
    steps: tuple[str, ...] = ()
    """The intent's planned steps, in order."""
    step: str = ""
    """A step line's step."""
    fingerprint: str = ""
    """The SSH key of the user (``SHA256:…``) when the action came through ``aios-tui serve``."""

    def to_json(self) -> str:
        doc: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in _OMITTED_EMPTY and not value:
                continue  # keep the lines of a plain outcome as they always were
            doc[f.name] = value
        doc["params"] = dict(self.params)
        doc["warnings"] = list(self.warnings)
        if self.steps:
            doc["steps"] = list(self.steps)
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
            id=str(doc.get("id", "")),
            phase=str(doc.get("phase", END)),
            pid=int(doc.get("pid") or 0),
            pid_start=str(doc.get("pid_start", "")),
            digest=str(doc.get("digest", "")),
            steps=tuple(str(s) for s in doc.get("steps") or ()),
            step=str(doc.get("step", "")),
            fingerprint=str(doc.get("fingerprint", "")),
        )


@dataclass
class AuditRecord:
    """The lines of one action: its intent, the steps it finished and its end (when it has one)."""

    id: str
    intent: AuditEntry | None = None
    steps: list[AuditEntry] = field(default_factory=list)
    end: AuditEntry | None = None

    @property
    def first(self) -> AuditEntry:
        entry = self.intent or self.end or (self.steps[0] if self.steps else None)
        assert entry is not None
        return entry

    @property
    def outcome(self) -> str:
        return self.end.outcome if self.end is not None else "unfinished"

    @property
    def done(self) -> list[str]:
        return [s.step for s in self.steps if s.outcome == "ok"]

    @property
    def planned(self) -> tuple[str, ...]:
        return self.intent.steps if self.intent is not None else ()


def default_audit_path() -> Path:
    """``$XDG_STATE_HOME/aios-tui/audit.jsonl``, by default ``~/.local/state/aios-tui/audit.jsonl``."""
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and Path(state).is_absolute() else Path.home() / ".local" / "state"
    return base / "aios-tui" / "audit.jsonl"


def process_start(pid: int) -> str:
    """When process ``pid`` started, in clock ticks since boot (Linux' /proc), or "" where unknown."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: count fields after its last ')'.
    rest = raw[raw.rfind(b")") + 2 :].split()
    return rest[19].decode() if len(rest) > 19 else ""


def private_dir(directory: Path) -> None:
    """Create ``directory`` (and its parents) for files only this user reads: ``0700``. An existing one
    of ours that others could read is tightened (it may have been made by an older version)."""
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        st = directory.stat()
        if st.st_uid == os.getuid() and stat.S_IMODE(st.st_mode) & 0o077:
            directory.chmod(stat.S_IMODE(st.st_mode) & 0o700)
    except OSError:
        log.debug("could not tighten the permissions of %s", directory)


class AuditLog:
    """An append-only JSON Lines file of :class:`AuditEntry`."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

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
        """The lines, oldest first; with ``limit``, only the last ``limit`` (read from the file's end).

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

    def records(self, limit: int | None = None) -> list[AuditRecord]:
        """The actions of the last ``limit`` lines, one record each (intent, steps, end), oldest first."""
        records: dict[str, AuditRecord] = {}
        for n, entry in enumerate(self.read(limit)):
            key = entry.id or f"#{n}"  # a line from before intents: an action of its own
            record = records.setdefault(key, AuditRecord(key))
            if entry.phase == INTENT:
                record.intent = entry
            elif entry.phase == STEP:
                record.steps.append(entry)
            else:
                record.end = entry
        return list(records.values())

    def unfinished(self, limit: int = 20_000) -> list[AuditRecord]:
        """Actions whose intent has no end among the last ``limit`` lines: running, or interrupted."""
        return [r for r in self.records(limit) if r.intent is not None and r.end is None]

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
                private_dir(directory)
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
