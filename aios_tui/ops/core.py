"""What every action shares: the :class:`Plan` shown before it runs, the :class:`ActionResult` it ends with,
the refusals, the time limits, and :class:`Steps`, the bookkeeping of one execution (journaled step by step,
stoppable between steps).

The actions themselves live one per module in :mod:`aios_tui.ops.actions`; :class:`~aios_tui.ops.engine.Ops`
plans and runs them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from aios_tui.domain import Endpoint
from aios_tui.domain.errors import describe_error, plain_reason, redact
from aios_tui.domain.text import clean
from aios_tui.ops.audit import AuditError
from aios_tui.sources.base import SourceError

__all__ = [
    "ACTION_TIMEOUT_S",
    "EVICT_CONCURRENCY",
    "PDB_RETRY_S",
    "ActionRefused",
    "ActionResult",
    "Alternative",
    "CancelToken",
    "ConfirmationError",
    "Plan",
    "Progress",
    "Steps",
    "TargetNotFound",
    "UnauditedAction",
    "describe",
    "is_production",
    "join",
    "looks_like_production",
    "nodes_title",
    "plural",
    "quiet",
]

log = logging.getLogger("aios_tui.ops")

#: A call to a source that does not answer within this many seconds is reported as failed (it may still
#: apply). Each step of an action has its own limit; a drain waiting on a PodDisruptionBudget is not a call.
ACTION_TIMEOUT_S = 60.0
#: Seconds between two tries of an eviction refused by a PodDisruptionBudget (``kubectl drain`` waits 5 s).
PDB_RETRY_S = 5.0
#: Evictions in flight at once during a drain.
EVICT_CONCURRENCY = 4

Progress = Callable[[str], None]
"""Called with one line for a person each time an action makes a step, waits, or gives up."""

D = TypeVar("D")


def describe(exc: BaseException) -> str:
    """What went wrong on one line, credentials masked, cut to a few hundred characters: a source's own
    sentence as it is ("forbidden: RBAC: user … may not patch nodes at cluster scope"), never with the class
    name of the exception that carried it; an exception from elsewhere in plain words where
    :func:`~aios_tui.domain.errors.plain_reason` knows it, else ``ApiException: 409 Conflict``."""
    if isinstance(exc, SourceError) and str(exc).strip() and plain_reason(exc) is None:
        return clean(redact(" ".join(str(exc).split())), 300)
    return describe_error(exc, limit=300)


def quiet(_: str) -> None:
    """The progress callback when nobody listens."""


def plural(n: int, word: str) -> str:
    """``1 node``, ``2 nodes``."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def join(names: Sequence[str]) -> str:
    return ", ".join(names)


def nodes_title(names: Sequence[str]) -> str:
    """``h100-a-0001``, or ``2 nodes (h100-a-0001, h100-a-0002)``."""
    return names[0] if len(names) == 1 else f"{len(names)} nodes ({join(names)})"


def is_production(namespace: str) -> bool:
    """True when a namespace (or cluster) name says production: ``prod``, ``ml-prod``, ``production``."""
    return "prod" in namespace.lower()


def looks_like_production(endpoint: Endpoint) -> bool:
    """True when the endpoint's namespace or cluster says production."""
    return is_production(endpoint.namespace) or is_production(endpoint.cluster)


class ActionRefused(Exception):
    """The action was not attempted: the message says why (audited with outcome ``refused``)."""


class ConfirmationError(ActionRefused, ValueError):
    """The typed confirmation is missing or does not match the plan's ``confirm_phrase``."""


class TargetNotFound(ActionRefused, LookupError):
    """The target of an action is not in the current snapshot."""


@dataclass(frozen=True, slots=True)
class Alternative:
    """Other arguments that would work where the plan cannot: "2×8 H200 in us-east-1b fits now"."""

    label: str
    args: Mapping[str, str]
    """The changed arguments, as a user would type them into the plan's fields."""


@dataclass(frozen=True)
class Plan(Generic[D]):
    """What an action will do, shown before it runs. Any ``blockers`` make it impossible to execute.

    ``detail`` is the structured plan behind the rows, typed by the action that made it (a drain's
    :class:`~aios_tui.alloc.drain.DrainPlan`, a launch's :class:`~aios_tui.ops.actions.launch.LaunchPlan`,
    a pool's :class:`~aios_tui.alloc.pools.PoolScale`; None where the rows say everything).
    """

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
    """The arguments the action passes to the source (and writes to the audit log)."""
    detail: D = field(default=None, compare=False, repr=False)  # type: ignore[assignment]
    targets: tuple[str, ...] = ()
    """Every object the action changes (the nodes of a drain); ``(target,)`` when it is one."""
    shrinks: bool = False
    """The action removes capacity (a node pool scaled down), which may need a higher role."""
    alternatives: tuple[Alternative, ...] = ()
    """For a plan that cannot run: arguments that would (the plan screen offers them)."""

    @property
    def ok(self) -> bool:
        return not self.blockers

    @property
    def digest(self) -> str:
        """A short hash of what the user was shown and what will be done, written to the audit intent."""
        doc = [
            self.action,
            self.target,
            self.source,
            self.title,
            self.lines,
            self.warnings,
            dict(self.params),
        ]
        raw = json.dumps(doc, sort_keys=True, default=str, ensure_ascii=False).encode()
        return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class ActionResult:
    """How an attempted action ended; ``done`` and ``not_done`` list the steps either way."""

    ok: bool
    message: str
    done: tuple[str, ...] = ()
    not_done: tuple[str, ...] = ()
    """Steps that failed (``step: why``) or were never attempted (the step alone)."""
    cancelled: bool = False
    """Stopped on request between two steps."""


class UnauditedAction(AuditError):
    """The action ran (``result`` says how it ended) but its outcome line could not be written."""

    def __init__(self, message: str, result: ActionResult) -> None:
        super().__init__(message)
        self.result = result


class CancelToken:
    """Asks a running action to stop after its current step. Waits (a PodDisruptionBudget's) end at once."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self.by = ""

    def cancel(self, by: str = "") -> None:
        self.by = by
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    async def sleep(self, seconds: float) -> bool:
        """Sleep ``seconds`` unless cancelled first; True when cancelled."""
        try:
            async with asyncio.timeout(seconds):
                await self._event.wait()
        except TimeoutError:
            return False
        return True


StepJournal = Callable[[str, str, str], None]
"""Called with (step, ``ok`` or ``failed``, why) as each step ends, before the next starts."""


class Steps:
    """The steps of one execution, in plan order, and how each ended.

    Each step's end goes to ``journal`` at once (the write-ahead audit log); a step whose end cannot be
    journaled stops the action, as no change may go unaudited. Between steps it honours ``cancel``.
    """

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        journal: StepJournal | None = None,
        cancel: CancelToken | None = None,
    ) -> None:
        self._why: dict[str, str | None] = dict.fromkeys(names)  # None: not attempted, "": done
        self._journal = journal
        self.cancel = cancel or CancelToken()
        self.stopped = ""
        """The first hard failure (or the cancellation); once set, no new step starts."""

    def __len__(self) -> int:
        return len(self._why)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self._why)

    def add(self, name: str) -> None:
        self._why.setdefault(name, None)

    def may_start(self) -> bool:
        """False once a step failed hard or the action was cancelled: start nothing new."""
        if self.cancel.cancelled and not self.stopped:
            self.stopped = "cancelled" + (f" by {self.cancel.by}" if self.cancel.by else "")
        return not self.stopped

    def done(self, name: str) -> None:
        self._why[name] = ""
        self._write(name, "ok", "")

    def fail(self, name: str, why: str, *, hard: bool = True) -> None:
        self._why[name] = why or "failed"
        if hard and not self.stopped:
            self.stopped = f"{name}: {why}"
        self._write(name, "failed", why or "failed")

    def _write(self, name: str, outcome: str, why: str) -> None:
        if self._journal is None:
            return
        try:
            self._journal(name, outcome, why)
        except Exception as exc:  # the audit log is gone: change nothing more
            log.error("step %s (%s) was not journaled: %s", name, outcome, exc)
            if not self.stopped or self.stopped.startswith("cancelled"):
                self.stopped = f"the audit log cannot be written ({exc}): stopped"

    async def attempt(self, name: str, call: Callable[[], Awaitable[None]]) -> bool:
        """Run one call to a source with its time limit; True when it succeeded. Never raises (but for
        task cancellation): a failure is recorded and stops the steps not yet started. A step is not
        started once the action was cancelled or stopped."""
        self.add(name)
        if not self.may_start():
            return False
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
            self.fail(name, describe(exc))
            return False
        self.done(name)
        return True

    def result(self, title: str, *, interrupted: bool = False) -> ActionResult:
        self.may_start()  # a cancel that came while every step left was already under way counts too
        done = tuple(n for n, why in self._why.items() if why == "")
        failed = [(n, why) for n, why in self._why.items() if why]
        cancelled = self.stopped.startswith("cancelled")
        total = plural(len(self._why), "step")
        if len(self._why) == 1:  # one step: the title is the step, the message carries the reason
            not_done = tuple(n for n, why in self._why.items() if why != "")
            if failed:
                return ActionResult(False, f"{title} failed: {failed[0][1]}", done, not_done)
        else:
            not_done = tuple(f"{n}: {why}" if why else n for n, why in self._why.items() if why != "")
        if interrupted:
            head = f"{title}: interrupted after {len(done)} of {total}"
            return ActionResult(False, head + "; run it again to continue", done, not_done)
        if cancelled and not_done:
            head = f"{title}: {self.stopped} after {len(done)} of {total}"
            return ActionResult(False, head + "; run it again to continue", done, not_done, cancelled=True)
        if not not_done:
            return ActionResult(True, f"{title}: done", done, not_done)
        why = f" ({failed[0][0]}: {failed[0][1]}{' …' if len(failed) > 1 else ''})" if failed else ""
        if not failed and self.stopped:
            why = f" ({self.stopped})"
        message = (
            f"{title}: {len(done)} of {total} done, {len(not_done)} not done{why}; run it again to continue"
        )
        return ActionResult(False, message, done, not_done)
