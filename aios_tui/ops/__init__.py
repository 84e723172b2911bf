"""Actions on the fleet: plan → confirm → execute → audit, with read-only mode and roles enforced here."""

from aios_tui.ops.actions import (
    CAPABILITIES,
    ActionRefused,
    ActionResult,
    ConfirmationError,
    Ops,
    Plan,
    TargetNotFound,
    looks_like_production,
)
from aios_tui.ops.audit import AuditEntry, AuditError, AuditLog, default_audit_path
from aios_tui.ops.permissions import MIN_ROLE, MUTATING, Actor, PermissionDenied, Role, denial

__all__ = [
    "CAPABILITIES",
    "MIN_ROLE",
    "MUTATING",
    "ActionRefused",
    "ActionResult",
    "Actor",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "ConfirmationError",
    "Ops",
    "PermissionDenied",
    "Plan",
    "Role",
    "TargetNotFound",
    "default_audit_path",
    "denial",
    "looks_like_production",
]
