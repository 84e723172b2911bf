"""Actions on the fleet: plan → confirm → execute → audit, with read-only mode and roles enforced here."""

from aios_tui.ops.actions import (
    CAPABILITIES,
    ActionRefused,
    ActionResult,
    ConfirmationError,
    LaunchPlan,
    Ops,
    Plan,
    Progress,
    TargetNotFound,
    UnauditedAction,
    looks_like_production,
    resolve_image,
)
from aios_tui.ops.audit import AuditEntry, AuditError, AuditLog, default_audit_path
from aios_tui.ops.permissions import (
    MIN_ROLE,
    MIN_ROLE_MANY,
    MUTATING,
    Actor,
    PermissionDenied,
    Role,
    denial,
)
from aios_tui.ops.suggest import Suggestion, suggest_cordons

__all__ = [
    "CAPABILITIES",
    "MIN_ROLE",
    "MIN_ROLE_MANY",
    "MUTATING",
    "ActionRefused",
    "ActionResult",
    "Actor",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "ConfirmationError",
    "LaunchPlan",
    "Ops",
    "PermissionDenied",
    "Plan",
    "Progress",
    "Role",
    "Suggestion",
    "TargetNotFound",
    "UnauditedAction",
    "default_audit_path",
    "denial",
    "looks_like_production",
    "resolve_image",
    "suggest_cordons",
]
