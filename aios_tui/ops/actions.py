"""Actions: plan → confirm → execute → audit, shared by the TUI, the headless CLI and the tests.

A :class:`Plan` is data the UI shows as it is. :meth:`Ops.execute` enforces everything itself — read-only
mode, roles, the typed confirmation, the plan's blockers, that the target still exists — then calls the
owning source's capability, pokes the poller, and appends one audit line for every attempt, refused ones
included. If the audit log cannot be written the action does not run.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.scaling import assess_scale, describe_cost
from aios_tui.domain import Endpoint, FleetSnapshot
from aios_tui.domain.errors import describe_error
from aios_tui.ops.audit import AuditEntry, AuditError, AuditLog
from aios_tui.ops.permissions import Actor, PermissionDenied, denial
from aios_tui.sources.base import JobLauncher, NodeMaintainer, Restartable, Scalable, Source

__all__ = [
    "CAPABILITIES",
    "ActionRefused",
    "ActionResult",
    "ConfirmationError",
    "Ops",
    "Plan",
    "TargetNotFound",
    "looks_like_production",
]

log = logging.getLogger("aios_tui.ops")

#: The source capability each action needs.
CAPABILITIES: Mapping[str, type] = MappingProxyType(
    {
        "scale": Scalable,
        "redeploy": Restartable,
        "cordon": NodeMaintainer,
        "uncordon": NodeMaintainer,
        "drain": NodeMaintainer,
        "launch": JobLauncher,
    }
)

#: What the target of each action is, for lookups and messages.
_TARGET_KIND: Mapping[str, str] = {
    "scale": "endpoint",
    "redeploy": "endpoint",
    "cordon": "node",
    "uncordon": "node",
    "drain": "node",
}

#: An action that does not answer within this many seconds is reported as failed (it may still apply).
ACTION_TIMEOUT_S = 60.0


def _describe(exc: BaseException) -> str:
    """``ApiException: 409 Conflict``: one line, credentials masked, cut to a few hundred characters."""
    return describe_error(exc, limit=300)


class ActionRefused(Exception):
    """The action was not attempted: the message says why (audited with outcome ``refused``)."""


class ConfirmationError(ActionRefused, ValueError):
    """The typed confirmation is missing or does not match the plan's ``confirm_phrase``."""


class TargetNotFound(ActionRefused, LookupError):
    """The target of an action is not in the current snapshot."""


@dataclass(frozen=True)
class Plan:
    """What an action will do, shown before it runs. Any ``blockers`` make it impossible to execute."""

    action: str
    target: str
    source: str
    title: str
    lines: tuple[tuple[str, str], ...]
    """Label → value rows for the plan screen, in display order."""
    warnings: tuple[str, ...]
    blockers: tuple[str, ...]
    confirm_phrase: str | None
    """What the user must type to confirm; None when a plain yes is enough."""
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    """The arguments ``execute`` passes to the source (and writes to the audit log)."""

    @property
    def ok(self) -> bool:
        return not self.blockers


@dataclass(frozen=True, slots=True)
class ActionResult:
    """How an attempted action ended; ``done`` and ``not_done`` list the steps either way."""

    ok: bool
    message: str
    done: tuple[str, ...] = ()
    not_done: tuple[str, ...] = ()


def looks_like_production(endpoint: Endpoint) -> bool:
    """True when the namespace (or cluster) name says production: ``prod``, ``ml-prod``, ``production``."""
    return "prod" in endpoint.namespace.lower() or "prod" in endpoint.cluster.lower()


class Ops:
    """Plans and runs actions on the sources, as ``actor``, writing every attempt to ``audit``.

    ``snapshot`` returns the latest fleet (the app passes ``lambda: poller.snapshot``); ``after_action`` is
    called with the source's name once an action ran (the app passes ``poller.poke``).
    """

    def __init__(
        self,
        sources: Mapping[str, Source],
        snapshot: Callable[[], FleetSnapshot],
        audit: AuditLog,
        *,
        actor: Actor,
        read_only: bool = False,
        after_action: Callable[[str], None] | None = None,
    ) -> None:
        self._sources = sources
        self._snapshot = snapshot
        self.audit = audit
        self.actor = actor
        self.read_only = read_only
        self._after_action = after_action

    # --- asking ----------------------------------------------------------------------------------------

    def check(self, action: str, target: str | None = None) -> str | None:
        """None when ``action`` (on ``target``) is allowed now, else the reason. The UI hides keys with it.

        Without a target (or for ``launch``, whose job does not exist yet), the question is whether any
        source can carry the action out.
        """
        reason = denial(action, self.actor.role, read_only=self.read_only)
        if reason is not None:
            return reason
        capability = CAPABILITIES[action]
        if target is None:
            if not any(isinstance(s, capability) for s in self._sources.values()):
                return f"no source can {action}"
            return None
        if action not in _TARGET_KIND:
            return self.check(action)
        owner = self._owner(action, target)
        if owner is None:
            return f"{_TARGET_KIND.get(action, 'target')} {target} not found"
        source = self._sources.get(owner)
        if source is None:
            return f"source {owner} is not connected"
        if not isinstance(source, capability):
            return f"source {owner} ({source.kind}) cannot {action}"
        return None

    # --- planning --------------------------------------------------------------------------------------

    def plan_scale(self, endpoint_key: str, replicas: int) -> Plan:
        """Plan setting ``endpoint_key`` (``namespace/name``) to ``replicas``.

        Raises :class:`TargetNotFound` when the endpoint is not in the snapshot.
        """
        snap = self._snapshot()
        endpoint = snap.endpoint_by_key.get(endpoint_key)
        if endpoint is None:
            raise TargetNotFound(f"endpoint {endpoint_key} not found")
        a = assess_scale(snap, endpoint, replicas)
        reason = self.check("scale", endpoint_key)
        blockers = a.blockers if reason is None else (reason, *a.blockers)

        shape = a.gpu_model or "GPU"
        lines: list[tuple[str, str]] = [
            ("Endpoint", f"{endpoint.key} (source {endpoint.source})"),
            ("Replicas", f"{a.current} → {a.new}"),
        ]
        if a.gpus_per_replica > 0 and a.gpus_delta > 0:
            slots = f"{a.free_slots} free slot{'' if a.free_slots == 1 else 's'}"
            placed = f"fits: {slots}" if a.fits else f"{a.shortfall} of {a.added} stay Pending: {slots}"
            lines.append(("GPUs", f"+{a.gpus_delta} × {shape} ({placed})"))
        elif a.gpus_delta < 0:
            lines.append(("GPUs", f"−{-a.gpus_delta} × {shape} freed"))
        if a.gpus_delta:
            lines.append(("Capacity cost", f"{describe_cost(a.cost_delta_per_hour)} (GPU-hours committed)"))
        if endpoint.hpa is not None:
            hpa = endpoint.hpa
            wants = "" if a.hpa_recommendation is None else f", wants {a.hpa_recommendation}"
            lines.append(
                ("HPA", f"{hpa.name}: {hpa.min_replicas}–{hpa.max_replicas} replicas, {hpa.metric}{wants}")
            )

        needs_phrase = replicas == 0 or looks_like_production(endpoint)
        return Plan(
            action="scale",
            target=endpoint.key,
            source=endpoint.source,
            title=f"Scale {endpoint.key} from {a.current} to {a.new} replicas",
            lines=tuple(lines),
            warnings=a.warnings,
            blockers=blockers,
            confirm_phrase=endpoint.name if needs_phrase else None,
            params=MappingProxyType(
                {"namespace": endpoint.namespace, "name": endpoint.name, "replicas": replicas}
            ),
        )

    # --- executing -------------------------------------------------------------------------------------

    async def execute(self, plan: Plan, *, confirmation: str | None = None) -> ActionResult:
        """Run a plan. Raises :class:`PermissionDenied` or :class:`ActionRefused` (nothing was attempted,
        the refusal is audited) or :class:`AuditError` (the audit log cannot be written, nothing runs);
        otherwise returns the outcome, failed or not, which is audited too.
        """
        try:
            source = self._admit(plan, confirmation)
        except (PermissionDenied, ActionRefused) as exc:
            try:
                await self._record(plan, "refused", str(exc))
            except AuditError as audit_exc:  # nothing ran: the refusal is still the answer to give
                log.error("refusal of %s was not audited: %s", plan.title, audit_exc)
            raise
        await asyncio.to_thread(self.audit.ensure_writable)

        try:
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                await self._run(plan, source)
        except TimeoutError:
            result = ActionResult(
                ok=False,
                message=f"{plan.title}: no answer after {ACTION_TIMEOUT_S:g}s; "
                "it may still apply, check before retrying",
                not_done=(plan.title,),
            )
        except Exception as exc:
            log.warning("%s failed", plan.title, exc_info=True)
            result = ActionResult(
                ok=False, message=f"{plan.title} failed: {_describe(exc)}", not_done=(plan.title,)
            )
        else:
            result = ActionResult(ok=True, message=f"{plan.title}: done", done=(plan.title,))

        if self._after_action is not None:
            try:
                self._after_action(plan.source)
            except Exception:
                log.exception("after_action(%s) failed", plan.source)
        try:
            await self._record(plan, "ok" if result.ok else "failed", result.message)
        except AuditError as exc:
            # The action ran (or was attempted) but its line is lost: say so loudly, never silently.
            log.error("%s (%s) was not audited: %s", plan.title, result.message, exc)
            raise AuditError(f"{result.message}; but it could not be audited: {exc}") from exc
        return result

    def _admit(self, plan: Plan, confirmation: str | None) -> Scalable:
        """Every check before running; returns the source that will run the plan."""
        reason = denial(plan.action, self.actor.role, read_only=self.read_only)
        if reason is not None:
            raise PermissionDenied(reason)
        if plan.blockers:
            raise ActionRefused(f"cannot {plan.action} {plan.target}: {'; '.join(plan.blockers)}")
        if plan.action != "scale":
            raise ActionRefused(f"no executor for action {plan.action!r}")
        source = self._sources.get(plan.source)
        if source is None:
            raise ActionRefused(f"source {plan.source} is not connected")
        if not isinstance(source, Scalable):
            raise ActionRefused(f"source {plan.source} ({source.kind}) cannot scale endpoints")
        if plan.target not in self._snapshot().endpoint_by_key:
            raise TargetNotFound(f"endpoint {plan.target} no longer exists; nothing was done")
        if plan.confirm_phrase is not None:
            typed = (confirmation or "").strip()
            if not typed:
                raise ConfirmationError(f"type {plan.confirm_phrase!r} to confirm: {plan.title}")
            if typed != plan.confirm_phrase:
                raise ConfirmationError(
                    f"confirmation {typed!r} does not match {plan.confirm_phrase!r}; nothing was done"
                )
        return source

    async def _run(self, plan: Plan, source: Scalable) -> None:
        p = plan.params
        await source.scale_endpoint(str(p["namespace"]), str(p["name"]), int(p["replicas"]))

    async def _record(self, plan: Plan, outcome: str, message: str) -> None:
        entry = AuditEntry(
            ts=dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
            user=self.actor.user,
            host=socket.gethostname(),
            role=str(self.actor.role),
            action=plan.action,
            target=plan.target,
            source=plan.source,
            title=plan.title,
            outcome=outcome,
            message=message,
            params=plan.params,
            warnings=plan.warnings,
        )
        await asyncio.to_thread(self.audit.append, entry)

    def _owner(self, action: str, target: str) -> str | None:
        """Name of the source that reported ``target``, or None when it is not in the snapshot."""
        snap = self._snapshot()
        if _TARGET_KIND.get(action) == "endpoint":
            endpoint = snap.endpoint_by_key.get(target)
            return endpoint.source if endpoint else None
        node = snap.node_by_name.get(target)
        return node.source if node else None
