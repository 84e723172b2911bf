"""Actions on the fleet: plan → confirm → execute → audit, with read-only mode and roles enforced here.

Every action is one object in the registry (:func:`all_actions`), one module each in
:mod:`aios_tui.ops.actions`; :class:`Ops` plans and runs them for the console, the CLI and the tests alike.
"""

from aios_tui.ops.action import Action, PlanContext, RunContext, all_actions, get, lookup
from aios_tui.ops.actions.launch import LaunchPlan
from aios_tui.ops.actions.redeploy import resolve_image
from aios_tui.ops.audit import AuditEntry, AuditError, AuditLog, AuditRecord, default_audit_path
from aios_tui.ops.core import (
    ActionRefused,
    ActionResult,
    Alternative,
    CancelToken,
    ConfirmationError,
    Plan,
    Progress,
    TargetNotFound,
    UnauditedAction,
    looks_like_production,
)
from aios_tui.ops.engine import Ops
from aios_tui.ops.grammar import Amount, ArgError, Kind, Param
from aios_tui.ops.inspect import follow_log, pods_of, read_log, read_object
from aios_tui.ops.permissions import ActionRate, Actor, PermissionDenied, Role, denial
from aios_tui.ops.suggest import Suggestion, suggest_cordons

__all__ = [
    "Action",
    "ActionRate",
    "ActionRefused",
    "ActionResult",
    "Actor",
    "Alternative",
    "Amount",
    "ArgError",
    "AuditEntry",
    "AuditError",
    "AuditLog",
    "AuditRecord",
    "CancelToken",
    "ConfirmationError",
    "Kind",
    "LaunchPlan",
    "Ops",
    "Param",
    "PermissionDenied",
    "Plan",
    "PlanContext",
    "Progress",
    "Role",
    "RunContext",
    "Suggestion",
    "TargetNotFound",
    "UnauditedAction",
    "all_actions",
    "default_audit_path",
    "denial",
    "follow_log",
    "get",
    "looks_like_production",
    "lookup",
    "pods_of",
    "read_log",
    "read_object",
    "resolve_image",
    "suggest_cordons",
]
