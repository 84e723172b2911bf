"""What every action shares: the :class:`Plan` shown before it runs, the :class:`ActionResult` it ends with,
the refusals, the capability each action needs, the time limits, and the step bookkeeping of an execution.

:class:`~aios_tui.ops.actions.Ops` plans and runs the actions; the planning (and execution step) of each
lives in its own module (:mod:`~aios_tui.ops.scale`, :mod:`~aios_tui.ops.redeploy`,
:mod:`~aios_tui.ops.cordon`, :mod:`~aios_tui.ops.drain`, :mod:`~aios_tui.ops.launch`,
:mod:`~aios_tui.ops.pools`), all built on these.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from aios_tui.alloc.drain import DrainPlan
from aios_tui.alloc.pools import PoolScale
from aios_tui.domain import Endpoint
from aios_tui.domain.errors import describe_error
from aios_tui.ops.audit import AuditError
from aios_tui.sources.base import (
    JobLauncher,
    NodeMaintainer,
    PermissionChecker,
    PoolScaler,
    Restartable,
    Scalable,
    Source,
)

if TYPE_CHECKING:
    from aios_tui.ops.launch import LaunchPlan

__all__ = [
    "ACTION_TIMEOUT_S",
    "CAPABILITIES",
    "EVICT_CONCURRENCY",
    "PDB_RETRY_S",
    "ActionRefused",
    "ActionResult",
    "ConfirmationError",
    "Plan",
    "Progress",
    "TargetNotFound",
    "UnauditedAction",
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


def _source_refusal(source: Source, action: str, target: str | None) -> str | None:
    """Why the source itself would refuse (RBAC, a read-only cluster), when it can tell ahead of time."""
    return source.permission(action, target) if isinstance(source, PermissionChecker) else None


def _join(names: Sequence[str]) -> str:
    return ", ".join(names)


def _nodes_title(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{len(names)} nodes ({_join(names)})"
