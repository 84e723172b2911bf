"""Actions: plan → confirm → execute → audit, shared by the TUI, the headless CLI and the tests.

A :class:`Plan` is data the UI shows as it is. :meth:`Ops.execute` enforces everything itself — read-only
mode, roles, the typed confirmation, the plan's blockers, that the target still exists — then calls the
owning source's capabilities step by step, reporting progress, pokes the poller, and appends one audit line
for every attempt, refused ones included. If the audit log cannot be written the action does not run.

An action of several steps (cordon several nodes, drain) reports exactly which steps were done and which
were not. Running it again continues: its plan is made anew from the current snapshot, where the pods
already evicted are gone and cordoning a cordoned node changes nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import math
import re
import socket
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from aios_tui.alloc.drain import BARE_POD, EMPTY_DIR, DrainPlan, PodMove
from aios_tui.alloc.drain import plan_drain as make_drain_plan
from aios_tui.alloc.placement import Capacity, GangRequest, Placement, Refusal, place_gang
from aios_tui.alloc.pools import PoolScale
from aios_tui.alloc.scaling import assess_scale, describe_cost, gpu_hour_price
from aios_tui.alloc.whatif import WhatIf, capacity_whatif
from aios_tui.domain import Endpoint, FleetSnapshot, Health, Node, is_na
from aios_tui.domain.errors import describe_error
from aios_tui.ops.audit import AuditEntry, AuditError, AuditLog
from aios_tui.ops.permissions import Actor, PermissionDenied, denial
from aios_tui.sources.base import (
    EvictionBlocked,
    EvictionDryRun,
    JobLauncher,
    LaunchSpec,
    NodeMaintainer,
    PermissionChecker,
    PoolScaler,
    Restartable,
    Scalable,
    Source,
    SourceError,
)

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

#: The source capability each action needs.
CAPABILITIES: Mapping[str, type] = MappingProxyType(
    {
        "scale": Scalable,
        "redeploy": Restartable,
        "cordon": NodeMaintainer,
        "uncordon": NodeMaintainer,
        "drain": NodeMaintainer,
        "launch": JobLauncher,
        "scale-pool": PoolScaler,
    }
)

#: What the target of each action is, for lookups and messages.
_TARGET_KIND: Mapping[str, str] = {
    "scale": "endpoint",
    "redeploy": "endpoint",
    "cordon": "node",
    "uncordon": "node",
    "drain": "node",
    "scale-pool": "pool",
}

#: A call to a source that does not answer within this many seconds is reported as failed (it may still
#: apply). Each step of an action has its own limit; a drain waiting on a PodDisruptionBudget is not a call.
ACTION_TIMEOUT_S = 60.0
#: Seconds between two tries of an eviction refused by a PodDisruptionBudget (``kubectl drain`` waits 5 s).
PDB_RETRY_S = 5.0
#: Evictions in flight at once during a drain.
EVICT_CONCURRENCY = 4

Progress = Callable[[str], None]
"""Called with one line for a person each time an action makes a step, waits, or gives up."""


def _describe(exc: BaseException) -> str:
    """``ApiException: 409 Conflict``: one line, credentials masked, cut to a few hundred characters."""
    return describe_error(exc, limit=300)


def _quiet(_: str) -> None:
    """The progress callback when nobody listens."""


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


DRY_RUN_LIMIT = 200
"""Pods a drain preview asks the server about (a 50-node drain can hold thousands)."""
DRY_RUN_CONCURRENCY = 8

_MAX_LISTED = 5
"""Pods named one by one in a plan's lines; the rest are counted (the console shows the full table)."""

_HOW_TO_ALLOW = {
    EMPTY_DIR: " (allow deleting emptyDir data, as kubectl drain --delete-emptydir-data)",
    BARE_POD: " (allow deleting pods with no controller, as kubectl drain --force)",
}


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
    detail: DrainPlan | LaunchPlan | PoolScale | None = field(default=None, compare=False, repr=False)
    """The structured plan behind the rows, where there is one (see :meth:`Ops.drain_plan`)."""

    @property
    def ok(self) -> bool:
        return not self.blockers


@dataclass(frozen=True, slots=True)
class LaunchPlan:
    """The structured plan behind a launch: the job, where its gang goes (or why it cannot), the what-if."""

    spec: LaunchSpec
    placement: Placement | Refusal
    whatif: WhatIf | None = None
    """For a refusal: the smallest extra capacity that would fit the job (None: no pool would)."""


@dataclass(frozen=True, slots=True)
class ActionResult:
    """How an attempted action ended; ``done`` and ``not_done`` list the steps either way."""

    ok: bool
    message: str
    done: tuple[str, ...] = ()
    not_done: tuple[str, ...] = ()
    """Steps that failed (``step: why``) or were never attempted (the step alone)."""


class UnauditedAction(AuditError):
    """The action ran (``result`` says how it ended) but its audit line could not be written."""

    def __init__(self, message: str, result: ActionResult) -> None:
        super().__init__(message)
        self.result = result


def looks_like_production(endpoint: Endpoint) -> bool:
    """True when the namespace (or cluster) name says production: ``prod``, ``ml-prod``, ``production``."""
    return "prod" in endpoint.namespace.lower() or "prod" in endpoint.cluster.lower()


def _prod(namespace: str) -> bool:
    return "prod" in namespace.lower()


_IMAGE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/:@-]*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _repository(image: str) -> str:
    """``host:5000/vllm/vllm-openai`` from ``host:5000/vllm/vllm-openai:v0.6.3`` (or ``…@sha256:…``)."""
    image = image.split("@", 1)[0]
    slash = image.rfind("/")
    colon = image.rfind(":")
    return image[:colon] if colon > slash else image


def resolve_image(current: str, given: str) -> str:
    """The image to roll out: ``given`` in full, or ``:TAG`` meaning ``current``'s repository with TAG.

    Raises ValueError with a sentence for the user.
    """
    given = given.strip()
    if given.startswith(":"):
        tag = given[1:]
        if not _TAG.fullmatch(tag):
            raise ValueError(f"{given!r} is not a valid image tag")
        if not current:
            raise ValueError(
                f"the current image is unknown, so {given!r} names no repository: give the image"
            )
        return f"{_repository(current)}:{tag}"
    if not _IMAGE.fullmatch(given):
        raise ValueError(f"{given!r} is not a valid image reference")
    return given


def _rolling(replicas: int) -> tuple[int, int]:
    """A Deployment's default RollingUpdate: maxSurge 25% rounded up, maxUnavailable 25% rounded down."""
    return math.ceil(replicas * 0.25), math.floor(replicas * 0.25)


class _Steps:
    """The steps of one execution, in plan order, and how each ended."""

    def __init__(self, names: Iterable[str]) -> None:
        self._why: dict[str, str | None] = dict.fromkeys(names)  # None: not attempted, "": done
        self.stopped = ""
        """The first hard failure; once set, no new step starts."""

    def __len__(self) -> int:
        return len(self._why)

    def add(self, name: str) -> None:
        self._why.setdefault(name, None)

    def done(self, name: str) -> None:
        self._why[name] = ""

    def fail(self, name: str, why: str, *, hard: bool = True) -> None:
        self._why[name] = why or "failed"
        if hard and not self.stopped:
            self.stopped = f"{name}: {why}"

    async def attempt(self, name: str, call: Callable[[], Awaitable[None]]) -> bool:
        """Run one call to a source with its time limit; True when it succeeded. Never raises (but for
        cancellation): a failure is recorded and stops the steps not yet started."""
        try:
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                await call()
        except TimeoutError:
            self.fail(
                name, f"no answer after {ACTION_TIMEOUT_S:g}s; it may still apply, check before retrying"
            )
            return False
        except Exception as exc:
            log.warning("%s failed", name, exc_info=True)
            self.fail(name, _describe(exc))
            return False
        self.done(name)
        return True

    def result(self, title: str, *, interrupted: bool = False) -> ActionResult:
        done = tuple(n for n, why in self._why.items() if why == "")
        failed = [(n, why) for n, why in self._why.items() if why]
        if len(self._why) == 1:  # one step: the title is the step, the message carries the reason
            not_done = tuple(n for n, why in self._why.items() if why != "")
            if failed:
                return ActionResult(False, f"{title} failed: {failed[0][1]}", done, not_done)
        else:
            not_done = tuple(f"{n}: {why}" if why else n for n, why in self._why.items() if why != "")
        if interrupted:
            head = f"{title}: interrupted after {len(done)} of {_plural(len(self._why), 'step')}"
            return ActionResult(False, head + "; run it again to continue", done, not_done)
        if not not_done:
            return ActionResult(True, f"{title}: done", done, not_done)
        why = f" ({failed[0][0]}: {failed[0][1]}{' …' if len(failed) > 1 else ''})" if failed else ""
        message = (
            f"{title}: {len(done)} of {_plural(len(self._why), 'step')} done, {len(not_done)} not done{why}; "
            "run it again to continue"
        )
        return ActionResult(False, message, done, not_done)


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
        drain = self.drain_plan(plan)
        source = self._sources.get(plan.source)
        if drain is None or not isinstance(source, EvictionDryRun):
            return ()
        moves = [*drain.evict, *(m for m in drain.blocked if m.retry)]
        if not moves:
            return ()
        asked = moves[:limit]
        gate = asyncio.Semaphore(DRY_RUN_CONCURRENCY)

        async def ask(move: PodMove) -> str | None:
            namespace, _, name = move.pod.rpartition("/")
            async with gate:
                try:
                    await asyncio.wait_for(source.evict_pod_dry_run(namespace, name), ACTION_TIMEOUT_S)
                except EvictionBlocked as exc:
                    return f"{move.pod}: refused now ({exc.pdb or 'PodDisruptionBudget'}: {exc})"
                except (SourceError, TimeoutError) as exc:
                    return f"{move.pod}: dry run failed: {_describe(exc)}"
            return None

        answers = [a for a in await asyncio.gather(*(ask(m) for m in asked)) if a]
        more = f" ({len(moves) - len(asked)} more not asked)" if len(moves) > len(asked) else ""
        if not answers:
            return (f"server dry run: all {len(asked)} evictions would be accepted now{more}",)
        head = f"server dry run: {len(answers)} of {len(asked)} evictions would be refused now{more}"
        return (
            head,
            *answers[:_MAX_LISTED],
            *([f"… and {len(answers) - _MAX_LISTED} more"] if len(answers) > _MAX_LISTED else []),
        )

    def launch_plan(self, plan: Plan) -> LaunchPlan | None:
        """The structured plan behind a launch :class:`Plan` (placement or refusal, what-if), else None."""
        return plan.detail if isinstance(plan.detail, LaunchPlan) else None

    # --- planning --------------------------------------------------------------------------------------

    def plan_scale(self, endpoint_key: str, replicas: int) -> Plan:
        """Plan setting ``endpoint_key`` (``namespace/name``) to ``replicas``.

        Raises :class:`TargetNotFound` when the endpoint is not in the snapshot.
        """
        snap = self._snapshot()
        endpoint = self._endpoint(snap, endpoint_key)
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
        snap = self._snapshot()
        endpoint = self._endpoint(snap, endpoint_key)
        blockers: list[str] = []
        warnings: list[str] = []
        reason = self.check("redeploy", endpoint_key)
        if reason is not None:
            blockers.append(reason)

        current = endpoint.image
        new: str | None = None
        if image is not None:
            try:
                new = resolve_image(current, image)
            except ValueError as exc:
                blockers.append(f"{exc}.")
        if new is not None and new == current:
            warnings.append(f"{new} is already the image: this is a rolling restart.")
            new = None
        lines: list[tuple[str, str]] = [("Endpoint", f"{endpoint.key} (source {endpoint.source})")]
        if new is None:
            lines.append(("Image", f"{current or 'unknown'} (unchanged: rolling restart)"))
        else:
            lines.append(("Image", f"{current or 'unknown'} → {new}"))

        replicas = endpoint.replicas_desired
        lines.append(("Replicas", f"{replicas} ({endpoint.replicas_ready} ready)"))
        if replicas == 0:
            warnings.append(f"{endpoint.key} has no replicas: only its template changes, nothing restarts.")
        else:
            surge, unavailable = _rolling(replicas)
            gpus = surge * endpoint.gpus_per_replica
            extra = f", +{gpus} × {endpoint.gpu_model or 'GPU'} while it rolls" if gpus else ""
            lines.append(("Rollout", f"maxSurge {surge}{extra}; maxUnavailable {unavailable}"))
            if endpoint.gpus_per_replica > 0:
                fit = assess_scale(snap, endpoint, replicas + surge)
                if fit.free_slots < surge:
                    stall = (
                        "the rollout waits until one frees"
                        if unavailable == 0
                        else f"the rollout replaces {unavailable} at a time in place instead"
                    )
                    warnings.append(
                        f"No free {endpoint.gpu_model or 'GPU'} slot for the surge "
                        f"({fit.free_slots} of {surge}): {stall}."
                    )
            if endpoint.replicas_ready < replicas:
                warnings.append(
                    f"Only {endpoint.replicas_ready} of {replicas} replicas are ready: "
                    "the rollout may lower capacity further."
                )
        pdb = snap.pdb_by_owner.get(endpoint.key)
        if pdb is None:
            lines.append(("PDB", "none"))
        else:
            rule = (
                f"minAvailable {pdb.min_available}"
                if pdb.min_available is not None
                else f"maxUnavailable {pdb.max_unavailable}"
            )
            allowed = _plural(pdb.disruptions_allowed, "disruption")
            lines.append(("PDB", f"{pdb.key}: {rule}, {allowed} allowed now"))

        what = f"to {new}" if new is not None else "(rolling restart)"
        return Plan(
            action="redeploy",
            target=endpoint.key,
            source=endpoint.source,
            title=f"Redeploy {endpoint.key} {what}",
            lines=tuple(lines),
            warnings=tuple(warnings),
            blockers=tuple(blockers),
            confirm_phrase=endpoint.name if looks_like_production(endpoint) else None,
            params=MappingProxyType({"namespace": endpoint.namespace, "name": endpoint.name, "image": new}),
        )

    def plan_cordon(self, nodes: Sequence[str], cordon: bool = True) -> Plan:
        """Plan cordoning (or uncordoning) ``nodes``: new pods stop (or resume) landing there; running pods
        stay.

        Raises :class:`TargetNotFound` naming the nodes that are not in the snapshot.
        """
        action = "cordon" if cordon else "uncordon"
        snap = self._snapshot()
        found = self._nodes(snap, nodes)
        names = tuple(n.name for n in found)
        blockers = self._node_blockers(action, found)
        warnings: list[str] = []
        already = [n.name for n in found if n.cordoned == cordon]
        if already and len(already) == len(found):
            blockers.append(f"{_join(already)} {'is' if len(already) == 1 else 'are'} already {action}ed.")
        elif already:
            warnings.append(
                f"{_join(already)} already {action}ed: left as {'it is' if len(already) == 1 else 'they are'}"
                "."
            )
        if cordon:
            busy = sum(n.gpus_requested for n in found)
            effect = f"no new pods; {busy} GPUs in use keep running (drain to move them)"
        else:
            unhealthy = [n.name for n in found if not n.ready or n.health is Health.FAIL]
            if unhealthy:
                warnings.append(
                    f"{_join(unhealthy)} {'is' if len(unhealthy) == 1 else 'are'} not healthy: "
                    "pods may land on a bad node."
                )
            free = sum(n.gpus_free for n in found)
            effect = f"new pods may land again: {free} GPUs free"
        lines = (("Nodes", _join(names)), ("Effect", effect))
        return Plan(
            action=action,
            target=_join(names),
            source=found[0].source,
            title=f"{action.capitalize()} {_nodes_title(names)}",
            lines=lines,
            warnings=tuple(warnings),
            blockers=tuple(blockers),
            confirm_phrase=None,
            params=MappingProxyType({"nodes": names, "cordoned": cordon}),
        )

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
        snap = self._snapshot()
        found = self._nodes(snap, nodes)
        names = tuple(n.name for n in found)
        dp = make_drain_plan(snap, names, allow_empty_dir=allow_empty_dir, allow_unmanaged=allow_unmanaged)
        blockers = self._node_blockers("drain", found)
        warnings: list[str] = []

        gpus = sum(m.gpus for m in dp.evict)
        lines: list[tuple[str, str]] = [
            ("Nodes", _join(names)),
            ("Cordon", "first, so nothing new lands there"),
            ("Evict", f"{_plural(len(dp.evict), 'pod')} ({gpus} GPUs)" if dp.evict else "nothing"),
        ]
        moved = [m for m in dp.evict if m.gpus and m.to]
        if moved:
            shown = "; ".join(f"{m.pod} → {m.to}" for m in moved[:_MAX_LISTED])
            more = f"; … and {len(moved) - _MAX_LISTED} more" if len(moved) > _MAX_LISTED else ""
            lines.append(("Moves", shown + more))
        for gang in dp.gangs:
            if isinstance(gang.replacement, Placement):
                where = f"restarts in {gang.replacement.domain}"
            else:
                where = "cannot restart now"
                warnings.append(f"{gang.job} restarts but does not fit anywhere: {gang.replacement.reason}")
            lines.append(
                (
                    f"Gang {gang.job}",
                    f"{gang.ranks_on_drained} of {gang.workers} ranks on these nodes; whole gang of "
                    f"{gang.gpus} GPUs {where}; {gang.gpu_hours_at_risk:.1f} GPU-hours at risk",
                )
            )
        if dp.gangs:
            lines.append(("GPU-hours at risk", f"{dp.gpu_hours_at_risk:.1f} (since the last checkpoints)"))
        if dp.skipped:
            lines.append(("Stay", f"{_plural(len(dp.skipped), 'DaemonSet pod')} (as --ignore-daemonsets)"))
        # One sentence per reason, not per pod: a drain of a busy node blocks hundreds of pods alike.
        by_reason: dict[tuple[bool, str], list[PodMove]] = {}
        for move in dp.blocked:
            by_reason.setdefault((move.retry, move.blocked), []).append(move)
        for (retry, reason), moves in by_reason.items():
            who = (
                f"{moves[0].pod} on {moves[0].node}"
                if len(moves) == 1
                else f"{len(moves)} pods (e.g. {moves[0].pod})"
            )
            if retry:
                warnings.append(
                    f"{who}: {reason} (every {self._pdb_retry_s:g} s for up to {pdb_timeout_s:g} s)."
                )
            else:
                blockers.append(f"{who}: {reason}{_HOW_TO_ALLOW.get(reason, '')}")
        if any(m.retry for m in dp.blocked):
            lines.append(("PDB wait", f"up to {pdb_timeout_s:g} s, retrying every {self._pdb_retry_s:g} s"))

        pods = [*dp.evict, *dp.blocked]
        if len(names) > 1:
            phrase: str | None = f"{len(names)} nodes"
        elif any(_prod(m.pod.split("/", 1)[0]) for m in pods):
            phrase = names[0]
        else:
            phrase = None
        return Plan(
            action="drain",
            target=_join(names),
            source=found[0].source,
            title=f"Drain {_nodes_title(names)}",
            lines=tuple(lines),
            warnings=tuple(warnings),
            blockers=tuple(blockers),
            confirm_phrase=phrase,
            params=MappingProxyType(
                {
                    "nodes": names,
                    "allow_empty_dir": allow_empty_dir,
                    "allow_unmanaged": allow_unmanaged,
                    "pdb_timeout_s": pdb_timeout_s,
                }
            ),
            detail=dp,
        )

    def plan_launch(self, spec: LaunchSpec) -> Plan:
        """Plan starting the training job ``spec``: the nodes of its gang, rank by rank, or why it cannot
        start now and what extra capacity would let it."""
        snap = self._snapshot()
        key = f"{spec.namespace}/{spec.name}"
        blockers: list[str] = []
        reason = self.check("launch")
        if reason is not None:
            blockers.append(reason)
        if key in snap.job_by_key:
            blockers.append(f"A job named {key} already exists.")
        if not spec.image.strip():
            blockers.append("The job needs an image.")
        if spec.workers < 1 or spec.gpus_per_worker < 1:
            blockers.append(
                f"A job needs at least 1 worker of at least 1 GPU, not {spec.workers}×{spec.gpus_per_worker}."
            )
            return self._launch_plan(spec, key, blockers, None, None, self._launcher(()))

        request = GangRequest(
            workers=spec.workers,
            gpus_per_worker=spec.gpus_per_worker,
            gpu_model=spec.gpu_model,
            zone=spec.zone,
            priority=spec.priority,
            name=key,
        )
        placement = place_gang(snap, request)
        whatif = capacity_whatif(snap, request) if isinstance(placement, Refusal) else None
        if isinstance(placement, Refusal):
            blockers.append(placement.reason)
            if whatif is not None:
                blockers.append(f"{whatif.describe()} would fit it.")
            else:
                blockers.append("No node pool could fit it, even grown.")
            source = self._launcher(())
        else:
            source = self._launcher(placement.nodes)
        return self._launch_plan(spec, key, blockers, placement, whatif, source)

    def _launch_plan(
        self,
        spec: LaunchSpec,
        key: str,
        blockers: list[str],
        placement: Placement | Refusal | None,
        whatif: WhatIf | None,
        source: str,
    ) -> Plan:
        snap = self._snapshot()
        shape = f"{spec.workers}×{spec.gpus_per_worker} {spec.gpu_model or 'GPUs'}"
        lines: list[tuple[str, str]] = [
            ("Job", key),
            ("Image", spec.image or "none"),
            ("Gang", f"{shape} ({spec.workers * spec.gpus_per_worker} GPUs), all or nothing"),
            ("Zone", spec.zone or "any (the whole gang in one)"),
            ("Priority", str(spec.priority)),
        ]
        nodes: tuple[str, ...] = ()
        if isinstance(placement, Placement):
            nodes = placement.nodes
            lines.append(("Placement", _ranks(nodes)))
            lines.append(("Domain", placement.domain))
            fragmented = f"{placement.fragmented_after:.1f} free GPUs (weighted by request size)"
            lines.append(("Fragmented after", fragmented))
            model = spec.gpu_model or next(
                (n.gpu_model for n in (snap.node_by_name.get(x) for x in nodes) if n is not None), ""
            )
            price = gpu_hour_price(snap, model)
            if not is_na(price):
                cost = float(price) * spec.workers * spec.gpus_per_worker
                lines.append(("Capacity cost", f"{describe_cost(cost)} (GPU-hours committed)"))
        elif isinstance(placement, Refusal):
            lines.append(("Placement", "none now"))
            if whatif is not None:
                lines.append(("What would fit", whatif.describe()))
        detail = None if placement is None else LaunchPlan(spec, placement, whatif)
        return Plan(
            action="launch",
            target=key,
            source=source,
            title=f"Launch {key} ({shape})",
            lines=tuple(lines),
            warnings=(),
            blockers=tuple(blockers),
            confirm_phrase=spec.name if _prod(spec.namespace) else None,
            params=MappingProxyType(
                {
                    "namespace": spec.namespace,
                    "name": spec.name,
                    "image": spec.image,
                    "workers": spec.workers,
                    "gpus_per_worker": spec.gpus_per_worker,
                    "gpu_model": spec.gpu_model,
                    "zone": spec.zone,
                    "priority": spec.priority,
                    "placement": nodes,
                }
            ),
            detail=detail,
        )

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
        p = plan.params
        if plan.action == "drain":
            assert isinstance(source, NodeMaintainer)
            await self._drain(plan, source, steps, say)
        elif plan.action in ("cordon", "uncordon"):
            assert isinstance(source, NodeMaintainer)
            cordoned = bool(p["cordoned"])
            for node in p["nodes"]:
                steps.add(f"{plan.action} {node}")
            for node in p["nodes"]:
                name = f"{plan.action} {node}"
                if steps.stopped:
                    break
                if await steps.attempt(name, functools.partial(source.set_cordon, node, cordoned)):
                    say(f"{plan.action}ed {node}")
        else:
            steps.add(plan.title)
            say(f"{plan.title} …")
            if await steps.attempt(plan.title, lambda: self._call(plan, source)):
                say(f"{plan.title}: done")

    async def _call(self, plan: Plan, source: Source) -> None:
        """The one call to the source behind a single-step action."""
        p = plan.params
        if plan.action == "scale":
            assert isinstance(source, Scalable)
            await source.scale_endpoint(str(p["namespace"]), str(p["name"]), int(p["replicas"]))
        elif plan.action == "redeploy":
            assert isinstance(source, Restartable)
            image = p["image"]
            await source.redeploy_endpoint(
                str(p["namespace"]), str(p["name"]), None if image is None else str(image)
            )
        elif plan.action == "scale-pool":
            assert isinstance(source, PoolScaler)
            await source.scale_pool(str(p["pool"]), int(p["desired"]))
        elif plan.action == "launch":
            assert isinstance(source, JobLauncher)
            launch = self.launch_plan(plan)
            assert launch is not None and isinstance(launch.placement, Placement)
            spec = launch.spec
            await source.launch_job(
                LaunchSpec(
                    namespace=spec.namespace,
                    name=spec.name,
                    image=spec.image,
                    workers=spec.workers,
                    gpus_per_worker=spec.gpus_per_worker,
                    gpu_model=spec.gpu_model,
                    zone=spec.zone,
                    priority=spec.priority,
                    placement=launch.placement.nodes,
                )
            )
        else:
            raise ActionRefused(f"no executor for action {plan.action!r}")

    async def _drain(self, plan: Plan, source: NodeMaintainer, steps: _Steps, say: Progress) -> None:
        """Cordon every node, then evict in the plan's order, a few at a time.

        A training gang restarts whole when one of its ranks is evicted, so one eviction per gang is made;
        its other ranks on these nodes leave with the restart. An eviction a PodDisruptionBudget refuses is
        retried every ``pdb_retry_s`` up to the plan's ``pdb_timeout_s``, each wait reported.
        """
        dp = self.drain_plan(plan)
        assert dp is not None
        timeout_s = float(plan.params["pdb_timeout_s"])
        cordons = [f"cordon {n}" for n in dp.nodes]
        moves = [*dp.evict, *(m for m in dp.blocked if m.retry)]
        leaders: dict[str, PodMove] = {}
        followers: dict[str, list[PodMove]] = {}
        evictions: list[PodMove] = []
        gangs = {g.job for g in dp.gangs}
        for move in moves:
            if move.owner in gangs and move.gpus:
                if move.owner in leaders:
                    followers.setdefault(move.owner, []).append(move)
                    continue
                leaders[move.owner] = move
            evictions.append(move)
        for name in cordons:
            steps.add(name)
        for move in moves:
            steps.add(_evict_step(move))
        say(f"{plan.title}: cordoning {_plural(len(cordons), 'node')}, evicting {_plural(len(moves), 'pod')}")

        for node, name in zip(dp.nodes, cordons, strict=True):
            if await steps.attempt(name, functools.partial(source.set_cordon, node, True)):
                say(f"cordoned {node}")
            else:
                return  # evicting from a node that still takes new pods would move nothing

        gate = asyncio.Semaphore(EVICT_CONCURRENCY)
        evicted = 0

        async def evict(move: PodMove) -> None:
            nonlocal evicted
            async with gate:
                if steps.stopped:
                    return
                name = _evict_step(move)
                try:
                    await self._evict_waiting(source, move, timeout_s, say)
                except _PdbTimeout as exc:
                    steps.fail(name, str(exc), hard=False)
                    say(f"{name}: {exc}")
                    return
                except TimeoutError:
                    steps.fail(
                        name,
                        f"no answer after {ACTION_TIMEOUT_S:g}s; it may still apply, check before retrying",
                    )
                    return
                except Exception as exc:
                    log.warning("%s failed", name, exc_info=True)
                    steps.fail(name, _describe(exc))
                    say(f"{name} failed: {_describe(exc)}")
                    return
                steps.done(name)
                mates = followers.get(move.owner, ()) if leaders.get(move.owner) is move else ()
                for mate in mates:
                    steps.done(_evict_step(mate))
                evicted += 1 + len(mates)
                gang = f", {_plural(len(mates), 'more rank')} leave with its gang" if mates else ""
                say(f"{name}{gang} ({evicted}/{len(moves)})")

        await asyncio.gather(*(evict(m) for m in evictions))

    async def _evict_waiting(
        self, source: NodeMaintainer, move: PodMove, timeout_s: float, say: Progress
    ) -> None:
        namespace, name = move.pod.split("/", 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while True:
            try:
                async with asyncio.timeout(ACTION_TIMEOUT_S):
                    await source.evict_pod(namespace, name)
                return
            except EvictionBlocked as exc:
                pdb = exc.pdb or "of its owner"
                left = deadline - loop.time()
                if left <= 0:
                    raise _PdbTimeout(
                        f"PodDisruptionBudget {pdb} still allows no disruption after {timeout_s:g} s"
                    ) from exc
                wait = min(self._pdb_retry_s, left)
                say(f"evict {move.pod}: waiting for PodDisruptionBudget {pdb} (429), retrying in {wait:g} s")
                await asyncio.sleep(wait)

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

    def _launcher(self, nodes: Sequence[str]) -> str:
        """The source that would launch a job on ``nodes`` (or the first that can launch at all)."""
        snap = self._snapshot()
        for name in nodes:
            node = snap.node_by_name.get(name)
            if node is not None:
                return node.source
        for name, source in self._sources.items():
            if isinstance(source, JobLauncher):
                return name
        return ""


def _source_refusal(source: Source, action: str, target: str | None) -> str | None:
    """Why the source itself would refuse (RBAC, a read-only cluster), when it can tell ahead of time."""
    return source.permission(action, target) if isinstance(source, PermissionChecker) else None


class _PdbTimeout(Exception):
    """An eviction still refused by a PodDisruptionBudget when the drain's wait ran out."""


def _evict_step(move: PodMove) -> str:
    return f"evict {move.pod} from {move.node}"


def _join(names: Sequence[str]) -> str:
    return ", ".join(names)


def _nodes_title(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{len(names)} nodes ({_join(names)})"


def _ranks(nodes: Sequence[str]) -> str:
    """``rank 0–1 → a; rank 2 → b``: each run of ranks on the same node, in rank order."""
    runs: list[tuple[int, int, str]] = []
    for rank, node in enumerate(nodes):
        if runs and runs[-1][2] == node and runs[-1][1] == rank - 1:
            runs[-1] = (runs[-1][0], rank, node)
        else:
            runs.append((rank, rank, node))
    return "; ".join(f"rank {a} → {node}" if a == b else f"ranks {a}–{b} → {node}" for a, b, node in runs)
