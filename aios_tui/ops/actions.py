"""Actions: plan → confirm → execute → audit, shared by the TUI, the headless CLI and the tests.

A :class:`Plan` is data the UI shows as it is. :meth:`Ops.execute` enforces everything itself — read-only
mode, roles, the typed confirmation, the plan's blockers, that the target still exists — then calls the
owning source's capabilities step by step, reporting progress, pokes the poller, and appends one audit line
for every attempt, refused ones included. If the audit log cannot be written the action does not run.

An action of several steps (cordon several nodes, drain) reports exactly which steps were done and which
were not. Running it again continues: its plan is made anew from the current snapshot, where the pods
already evicted are gone and cordoning a cordoned node changes nothing.

The planning of each action, and its steps where they are its own, live in :mod:`~aios_tui.ops.scale`,
:mod:`~aios_tui.ops.redeploy`, :mod:`~aios_tui.ops.cordon`, :mod:`~aios_tui.ops.drain`,
:mod:`~aios_tui.ops.launch` and :mod:`~aios_tui.ops.pools`; the types they share in :mod:`~aios_tui.ops.core`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import socket
from collections.abc import Callable, Mapping, Sequence

from aios_tui.alloc.drain import DrainPlan
from aios_tui.alloc.placement import Capacity, Placement
from aios_tui.alloc.pools import PoolScale
from aios_tui.domain import Endpoint, FleetSnapshot, Node
from aios_tui.ops.audit import AuditEntry, AuditError, AuditLog
from aios_tui.ops.cordon import plan_cordon, run_cordon
from aios_tui.ops.core import (
    _TARGET_KIND,
    ACTION_TIMEOUT_S,
    CAPABILITIES,
    EVICT_CONCURRENCY,
    PDB_RETRY_S,
    ActionRefused,
    ActionResult,
    ConfirmationError,
    Plan,
    Progress,
    TargetNotFound,
    UnauditedAction,
    _join,
    _quiet,
    _source_refusal,
    _Steps,
    looks_like_production,
)
from aios_tui.ops.drain import DRY_RUN_LIMIT, dry_run_drain, plan_drain, run_drain
from aios_tui.ops.launch import LaunchPlan, execute_launch, plan_launch
from aios_tui.ops.permissions import Actor, PermissionDenied, denial
from aios_tui.ops.redeploy import execute_redeploy, plan_redeploy, resolve_image
from aios_tui.ops.scale import execute_scale, plan_scale
from aios_tui.sources.base import LaunchSpec, NodeMaintainer, PoolScaler, Source

__all__ = [
    "ACTION_TIMEOUT_S",
    "CAPABILITIES",
    "EVICT_CONCURRENCY",
    "PDB_RETRY_S",
    "ActionRefused",
    "ActionResult",
    "ConfirmationError",
    "LaunchPlan",
    "Ops",
    "Plan",
    "Progress",
    "TargetNotFound",
    "UnauditedAction",
    "looks_like_production",
    "resolve_image",
]

log = logging.getLogger("aios_tui.ops")


class Ops:
    """Plans and runs actions on the sources, as ``actor``, writing every attempt to ``audit``.

    ``snapshot`` returns the latest fleet (the app passes ``lambda: poller.snapshot``); ``after_action`` is
    called with the source's name once an action ran (the app passes ``poller.poke``). ``pdb_retry_s`` is
    the wait between two tries of an eviction a PodDisruptionBudget refused.
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
        pdb_retry_s: float = PDB_RETRY_S,
    ) -> None:
        if not pdb_retry_s > 0:
            raise ValueError(f"pdb_retry_s must be positive, got {pdb_retry_s!r}")
        self._sources = sources
        self._snapshot = snapshot
        self.audit = audit
        self.actor = actor
        self.read_only = read_only
        self._after_action = after_action
        self._pdb_retry_s = pdb_retry_s

    # --- asking ----------------------------------------------------------------------------------------

    def check(self, action: str, target: str | Sequence[str] | None = None) -> str | None:
        """None when ``action`` (on ``target``, one name or several) is allowed now, else the reason. The UI
        hides keys with it.

        Without a target (or for ``launch``, whose job does not exist yet), the question is whether any
        source can carry the action out.
        """
        targets = (target,) if isinstance(target, str) else tuple(target or ())
        reason = denial(action, self.actor.role, read_only=self.read_only, targets=max(1, len(targets)))
        if reason is not None:
            return reason
        capability = CAPABILITIES[action]
        if not targets or action not in _TARGET_KIND:
            capable = [s for s in self._sources.values() if isinstance(s, capability)]
            if not capable:
                return f"no source can {action}"
            refusals = [_source_refusal(s, action, None) for s in capable]
            return None if None in refusals else refusals[0]
        for name in targets:
            owner = self._owner(action, name)
            if owner is None:
                return f"{_TARGET_KIND[action]} {name} not found"
            source = self._sources.get(owner)
            if source is None:
                return f"source {owner} is not connected"
            if not isinstance(source, capability):
                return f"source {owner} ({source.kind}) cannot {action}"
            refusal = _source_refusal(source, action, name)
            if refusal is not None:
                return refusal
        return None

    def drain_plan(self, plan: Plan) -> DrainPlan | None:
        """The structured plan behind a drain :class:`Plan` (pods, destinations, gangs), else None."""
        return plan.detail if isinstance(plan.detail, DrainPlan) else None

    async def dry_run_drain(self, plan: Plan, *, limit: int = DRY_RUN_LIMIT) -> tuple[str, ...]:
        """Ask the owning backend to evict each pod of a drain plan in a dry run (Kubernetes ``dryRun=All``):
        what its PodDisruptionBudgets would refuse now, as the server sees them. Empty when the backend
        cannot dry-run or the plan evicts nothing; at most ``limit`` pods are asked (the rest are counted)."""
        return await dry_run_drain(self, plan, limit=limit)

    def launch_plan(self, plan: Plan) -> LaunchPlan | None:
        """The structured plan behind a launch :class:`Plan` (placement or refusal, what-if), else None."""
        return plan.detail if isinstance(plan.detail, LaunchPlan) else None

    # --- planning --------------------------------------------------------------------------------------

    def plan_scale(self, endpoint_key: str, replicas: int) -> Plan:
        """Plan setting ``endpoint_key`` (``namespace/name``) to ``replicas``.

        Raises :class:`TargetNotFound` when the endpoint is not in the snapshot.
        """
        return plan_scale(self, self._snapshot(), endpoint_key, replicas)

    def plan_scale_pool(self, pool_name: str, desired: int) -> Plan:
        """Plan setting node pool ``pool_name``'s desired capacity to ``desired`` nodes (see
        :mod:`aios_tui.ops.pools`). Raises :class:`TargetNotFound` when the pool is not in the snapshot."""
        from aios_tui.ops.pools import plan_scale_pool

        return plan_scale_pool(self, self._snapshot(), pool_name, desired)

    def pool_scale(self, plan: Plan) -> PoolScale | None:
        """The structured assessment behind a scale-pool :class:`Plan`, else None."""
        return plan.detail if isinstance(plan.detail, PoolScale) else None

    def plan_redeploy(self, endpoint_key: str, image: str | None = None) -> Plan:
        """Plan a rolling restart of ``endpoint_key``, or rolling out ``image`` (``repo:tag``, or ``:tag``
        for a new tag of the current repository).

        Raises :class:`TargetNotFound` when the endpoint is not in the snapshot.
        """
        return plan_redeploy(self, self._snapshot(), endpoint_key, image)

    def plan_cordon(self, nodes: Sequence[str], cordon: bool = True) -> Plan:
        """Plan cordoning (or uncordoning) ``nodes``: new pods stop (or resume) landing there; running pods
        stay.

        Raises :class:`TargetNotFound` naming the nodes that are not in the snapshot.
        """
        return plan_cordon(self, self._snapshot(), nodes, cordon)

    def plan_drain(
        self,
        nodes: Sequence[str],
        *,
        allow_empty_dir: bool = False,
        allow_unmanaged: bool = False,
        pdb_timeout_s: float = 300.0,
    ) -> Plan:
        """Plan draining ``nodes``: cordon them, then evict their pods to the rest of the fleet.

        Raises :class:`TargetNotFound` naming the nodes that are not in the snapshot.
        """
        if not pdb_timeout_s >= 0:
            raise ValueError(f"pdb_timeout_s must be 0 or more, got {pdb_timeout_s!r}")
        return plan_drain(
            self,
            self._snapshot(),
            nodes,
            allow_empty_dir=allow_empty_dir,
            allow_unmanaged=allow_unmanaged,
            pdb_timeout_s=pdb_timeout_s,
        )

    def plan_launch(self, spec: LaunchSpec) -> Plan:
        """Plan starting the training job ``spec``: the nodes of its gang, rank by rank, or why it cannot
        start now and what extra capacity would let it."""
        return plan_launch(self, self._snapshot(), spec)

    # --- executing -------------------------------------------------------------------------------------

    async def execute(
        self, plan: Plan, *, confirmation: str | None = None, progress: Progress | None = None
    ) -> ActionResult:
        """Run a plan, reporting each step through ``progress``.

        Raises :class:`PermissionDenied` or :class:`ActionRefused` (nothing was attempted, the refusal is
        audited) or :class:`AuditError` (the audit log cannot be written, nothing runs; or
        :class:`UnauditedAction` when it ran but its line could not be written). Otherwise returns the
        outcome, failed or not, which is audited too. Cancelled midway, it audits what was done and
        re-raises.
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

        say = progress or _quiet
        steps = _Steps(())
        try:
            await self._run(plan, source, steps, say)
        except asyncio.CancelledError:
            result = steps.result(plan.title, interrupted=True)
            self._poke(plan)
            try:  # synchronously: the task is being cancelled, and this line must be written
                self.audit.append(self._entry(plan, "failed", result.message))
            except AuditError as exc:
                log.error("%s (%s) was not audited: %s", plan.title, result.message, exc)
            say(result.message)
            raise
        result = steps.result(plan.title)
        self._poke(plan)
        try:
            await self._record(plan, "ok" if result.ok else "failed", result.message)
        except AuditError as exc:
            # The action ran (or was attempted) but its line is lost: say so loudly, never silently.
            log.error("%s (%s) was not audited: %s", plan.title, result.message, exc)
            raise UnauditedAction(f"{result.message}; but it could not be audited: {exc}", result) from exc
        return result

    def _admit(self, plan: Plan, confirmation: str | None) -> Source:
        """Every check before running; returns the source that will run the plan."""
        nodes = plan.params.get("nodes", ())
        targets = len(nodes) if isinstance(nodes, tuple | list) else 1
        shrinks = plan.action == "scale-pool" and int(plan.params["desired"]) < int(plan.params["from"])
        reason = denial(
            plan.action, self.actor.role, read_only=self.read_only, targets=max(1, targets), shrinks=shrinks
        )
        if reason is not None:
            raise PermissionDenied(reason)
        if plan.blockers:
            raise ActionRefused(f"cannot {plan.action} {plan.target}: {'; '.join(plan.blockers)}")
        source = self._sources.get(plan.source)
        if source is None:
            raise ActionRefused(f"source {plan.source} is not connected")
        capability = CAPABILITIES[plan.action]
        if not isinstance(source, capability):
            raise ActionRefused(f"source {plan.source} ({source.kind}) cannot {plan.action}")
        refusal = _source_refusal(source, plan.action, plan.target)
        if refusal is not None:
            raise PermissionDenied(refusal)
        self._still_valid(plan)
        if plan.confirm_phrase is not None:
            typed = (confirmation or "").strip()
            if not typed:
                raise ConfirmationError(f"type {plan.confirm_phrase!r} to confirm: {plan.title}")
            if typed != plan.confirm_phrase:
                raise ConfirmationError(
                    f"confirmation {typed!r} does not match {plan.confirm_phrase!r}; nothing was done"
                )
        return source

    def _still_valid(self, plan: Plan) -> None:
        """Raise :class:`ActionRefused` when the fleet changed so that the plan no longer applies."""
        snap = self._snapshot()
        kind = _TARGET_KIND.get(plan.action)
        if kind == "endpoint" and plan.target not in snap.endpoint_by_key:
            raise TargetNotFound(f"endpoint {plan.target} no longer exists; nothing was done")
        if kind == "node":
            gone = [n for n in plan.params["nodes"] if n not in snap.node_by_name]
            if gone:
                raise TargetNotFound(f"node {_join(gone)} no longer exists; nothing was done")
        if kind == "pool":
            pool = snap.pools_by_name.get(plan.target)
            if pool is None:
                raise TargetNotFound(f"node pool {plan.target} no longer exists; nothing was done")
            if pool.desired_capacity != plan.params["from"]:
                raise ActionRefused(
                    f"{plan.target}'s desired capacity changed from {plan.params['from']} to "
                    f"{pool.desired_capacity} since the plan; nothing was done: plan it again"
                )
        if plan.action == "drain" and self.drain_plan(plan) is None:
            raise ActionRefused(f"{plan.title}: the plan has no drain plan behind it; plan it again")
        if plan.action == "launch":
            launch = self.launch_plan(plan)
            if launch is None or not isinstance(launch.placement, Placement):
                raise ActionRefused(f"{plan.title}: the plan has no placement behind it; plan it again")
            if plan.target in snap.job_by_key:
                raise ActionRefused(f"a job named {plan.target} already exists; nothing was done")
            try:
                Capacity.from_snapshot(snap).commit(launch.placement)
            except ValueError as exc:
                raise ActionRefused(
                    f"the planned nodes no longer have room for {plan.target} ({exc}); plan it again"
                ) from exc

    async def _run(self, plan: Plan, source: Source, steps: _Steps, say: Progress) -> None:
        if plan.action == "drain":
            assert isinstance(source, NodeMaintainer)
            await run_drain(self, plan, source, steps, say)
        elif plan.action in ("cordon", "uncordon"):
            assert isinstance(source, NodeMaintainer)
            await run_cordon(plan, source, steps, say)
        else:
            steps.add(plan.title)
            say(f"{plan.title} …")
            if await steps.attempt(plan.title, lambda: self._call(plan, source)):
                say(f"{plan.title}: done")

    async def _call(self, plan: Plan, source: Source) -> None:
        """The one call to the source behind a single-step action."""
        p = plan.params
        if plan.action == "scale":
            await execute_scale(plan, source)
        elif plan.action == "redeploy":
            await execute_redeploy(plan, source)
        elif plan.action == "scale-pool":
            assert isinstance(source, PoolScaler)
            await source.scale_pool(str(p["pool"]), int(p["desired"]))
        elif plan.action == "launch":
            await execute_launch(self, plan, source)
        else:
            raise ActionRefused(f"no executor for action {plan.action!r}")

    # --- helpers ---------------------------------------------------------------------------------------

    def _poke(self, plan: Plan) -> None:
        if self._after_action is not None:
            try:
                self._after_action(plan.source)
            except Exception:
                log.exception("after_action(%s) failed", plan.source)

    def _entry(self, plan: Plan, outcome: str, message: str) -> AuditEntry:
        return AuditEntry(
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

    async def _record(self, plan: Plan, outcome: str, message: str) -> None:
        await asyncio.to_thread(self.audit.append, self._entry(plan, outcome, message))

    def _owner(self, action: str, target: str) -> str | None:
        """Name of the source that reported ``target``, or None when it is not in the snapshot."""
        snap = self._snapshot()
        if _TARGET_KIND.get(action) == "endpoint":
            endpoint = snap.endpoint_by_key.get(target)
            return endpoint.source if endpoint else None
        if _TARGET_KIND.get(action) == "pool":
            pool = snap.pools_by_name.get(target)
            return pool.source if pool else None
        node = snap.node_by_name.get(target)
        return node.source if node else None

    @staticmethod
    def _endpoint(snap: FleetSnapshot, key: str) -> Endpoint:
        endpoint = snap.endpoint_by_key.get(key)
        if endpoint is None:
            raise TargetNotFound(f"endpoint {key} not found")
        return endpoint

    @staticmethod
    def _nodes(snap: FleetSnapshot, names: Sequence[str]) -> list[Node]:
        """The nodes named, each once, in the order given. Raises :class:`TargetNotFound`."""
        if isinstance(names, str):
            raise TypeError("nodes must be a sequence of names, not one string")
        wanted = list(dict.fromkeys(names))
        if not wanted:
            raise TargetNotFound("no node given")
        missing = [n for n in wanted if n not in snap.node_by_name]
        if missing:
            raise TargetNotFound(f"node{'s' if len(missing) > 1 else ''} {_join(missing)} not found")
        return [snap.node_by_name[n] for n in wanted]

    def _node_blockers(self, action: str, nodes: Sequence[Node]) -> list[str]:
        blockers: list[str] = []
        sources = sorted({n.source for n in nodes})
        if len(sources) > 1:
            blockers.append(
                f"The nodes belong to several sources ({', '.join(sources)}): {action} them apart."
            )
        reason = self.check(action, [n.name for n in nodes])
        if reason is not None:
            blockers.insert(0, reason)
        return blockers
