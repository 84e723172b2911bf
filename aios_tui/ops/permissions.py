"""Who may do what: roles, the action → minimum-role table, and the read-only switch.

Enforced by :class:`~aios_tui.ops.actions.Ops` on every execute, not only by the UI hiding keys.
"""

from __future__ import annotations

import enum
import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

__all__ = [
    "MIN_ROLE",
    "MIN_ROLE_MANY",
    "MIN_ROLE_SHRINK",
    "MUTATING",
    "Actor",
    "PermissionDenied",
    "Role",
    "denial",
]


class Role(enum.StrEnum):
    """What a user may do, each role including the ones before it."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return _RANKS[self]

    def allows(self, minimum: Role) -> bool:
        return self.rank >= minimum.rank


_RANKS: Mapping[Role, int] = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

#: The least role that may run each action. Every action listed here changes the fleet; an action that is
#: not listed is refused.
MIN_ROLE: Mapping[str, Role] = MappingProxyType(
    {
        "scale": Role.OPERATOR,
        "redeploy": Role.OPERATOR,
        "cordon": Role.OPERATOR,
        "uncordon": Role.OPERATOR,
        "drain": Role.OPERATOR,
        "launch": Role.OPERATOR,
        # Growing a node pool costs money but harms nothing and is undone by shrinking it again: operator.
        "scale-pool": Role.OPERATOR,
    }
)

#: The least role that may run an action on several targets at once, where that needs more than one.
MIN_ROLE_MANY: Mapping[str, Role] = MappingProxyType({"drain": Role.ADMIN})

#: The least role that may run an action that removes capacity, where that needs more. Shrinking a node
#: pool terminates machines with whatever runs on them, without evicting anything first, and on a cloud the
#: provider's termination policy (not the plan) picks which: it is a drain of several nodes at once that no
#: PodDisruptionBudget can stop, so it takes what draining several nodes takes.
MIN_ROLE_SHRINK: Mapping[str, Role] = MappingProxyType({"scale-pool": Role.ADMIN})

#: Actions that change something: all refused in read-only mode.
MUTATING = frozenset(MIN_ROLE)


class PermissionDenied(Exception):
    """The action is not allowed for this session; the message says why."""


@dataclass(frozen=True, slots=True)
class Actor:
    """The person acting, as written to the audit log."""

    user: str
    role: Role = Role.OPERATOR

    @classmethod
    def current(cls, role: Role = Role.OPERATOR) -> Actor:
        """The logged-in user (``uid1000`` where the system has no name for them)."""
        try:
            user = getpass.getuser()
        except OSError:  # no USER/LOGNAME and no passwd entry, as in some containers
            user = f"uid{os.getuid()}"
        return cls(user=user, role=role)


def denial(
    action: str, role: Role, *, read_only: bool, targets: int = 1, shrinks: bool = False
) -> str | None:
    """Why ``role`` may not run ``action`` on ``targets`` targets in this session, or None when it may.

    ``shrinks``: the action removes capacity (a node pool scaled down), which may need a higher role."""
    minimum = MIN_ROLE.get(action)
    if minimum is None:
        return f"unknown action {action!r}"
    if read_only:
        return f"read-only mode: {action} is not allowed"
    if not role.allows(minimum):
        return f"role {role} may not {action}"
    many = MIN_ROLE_MANY.get(action)
    if targets > 1 and many is not None and not role.allows(many):
        return f"role {role} may not {action} {targets} at once (only {many} may); {action} one at a time"
    shrink = MIN_ROLE_SHRINK.get(action)
    if shrinks and shrink is not None and not role.allows(shrink):
        return f"role {role} may not {action} down (only {shrink} may: it terminates nodes)"
    return None
