"""Who may do what: roles, the read-only switch, and :func:`denial`, the one place that says no.

Each action declares its own least roles (:class:`RoleRule`, see :mod:`aios_tui.ops.actions`); this module
decides with them. Enforced by :class:`~aios_tui.ops.engine.Ops` when it plans and again when it executes,
not only by the UI hiding keys.
"""

from __future__ import annotations

import enum
import getpass
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["ActionRate", "Actor", "PermissionDenied", "Role", "RoleRule", "denial"]


class Role(enum.StrEnum):
    """What a user may do, each role including the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, minimum: Role) -> bool:
        return self.rank >= minimum.rank


class RoleRule(Protocol):
    """An action's roles: the least role that may run it, and the higher one it needs on several targets at
    once or when it removes capacity (None: no higher one)."""

    @property
    def name(self) -> str: ...

    @property
    def min_role(self) -> Role: ...

    @property
    def min_role_many(self) -> Role | None: ...

    @property
    def min_role_shrink(self) -> Role | None: ...


class PermissionDenied(Exception):
    """The action is not allowed for this session; the message says why."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The person acting, as written to the audit log."""

    user: str
    role: Role = Role.OPERATOR
    fingerprint: str = ""
    """The SSH key the person logged in with (``SHA256:…``, ``aios-tui serve``); "" for a local console."""

    @classmethod
    def current(cls, role: Role = Role.OPERATOR) -> Actor:
        """The logged-in user (``uid1000`` where the system has no name for them)."""
        try:
            user = getpass.getuser()
        except OSError:  # no USER/LOGNAME and no passwd entry, as in some containers
            user = f"uid{os.getuid()}"
        return cls(user=user, role=role)


def denial(rule: RoleRule, role: Role, *, read_only: bool, targets: int, shrinks: bool = False) -> str | None:
    """Why ``role`` may not run the action ``rule`` describes on ``targets`` targets in this session, or None
    when it may.

    ``shrinks``: the action removes capacity (a node pool scaled down), which may need a higher role."""
    action = rule.name
    if read_only:
        return f"read-only mode: {action} is not allowed"
    if not role.allows(rule.min_role):
        return f"role {role} may not {action} (it needs {rule.min_role})"
    many = rule.min_role_many
    if targets > 1 and many is not None and not role.allows(many):
        return f"role {role} may not {action} {targets} at once (only {many} may); {action} one at a time"
    shrink = rule.min_role_shrink
    if shrinks and shrink is not None and not role.allows(shrink):
        return f"role {role} may not {action} down (only {shrink} may: it terminates nodes)"
    return None


class ActionRate:
    """At most ``per_minute`` actions in any 60 seconds, shared by every session of one person (``aios-tui
    serve`` keeps one per key). :meth:`take` counts an action that may run, or says how long to wait."""

    WINDOW_S = 60.0

    def __init__(self, per_minute: int, *, clock: Callable[[], float] = time.monotonic) -> None:
        if per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute!r}")
        self.per_minute = per_minute
        self._clock = clock
        self._taken: deque[float] = deque()
        self._lock = threading.Lock()  # Ops.execute may be called from several event loops' threads

    def take(self) -> float | None:
        """None when one more action may run now (it is counted), else the seconds until one may."""
        with self._lock:
            now = self._clock()
            while self._taken and now - self._taken[0] >= self.WINDOW_S:
                self._taken.popleft()
            if len(self._taken) >= self.per_minute:
                return self.WINDOW_S - (now - self._taken[0])
            self._taken.append(now)
            return None
