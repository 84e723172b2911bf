"""Actions: plan → confirm → execute → audit, shared by the console, the headless CLI and the tests.

:meth:`Ops.plan` reads the arguments with the action's grammar, then checks role, read-only mode and the
action's bounds *before* any plan is built (a pool size of 10⁸ is refused in microseconds, not after building
10⁸ virtual nodes); only then does the action plan. A :class:`~aios_tui.ops.core.Plan` is data the UI shows
as it is.

:meth:`Ops.execute` enforces everything itself — read-only mode, roles, the typed confirmation, the plan's
blockers, that the plan still holds — then writes the audit intent and ``fsync``-s it, and only then lets the
action call its source, step by step, each step's end journaled as it happens. If the intent cannot be
written nothing runs. A running action stops between steps when its :class:`~aios_tui.ops.core.CancelToken`
is cancelled. Every refusal is audited too.

An action of several steps (cordon several nodes, drain) reports exactly which steps were done and which
were not. Running it again continues: its plan is made anew from the current snapshot, where the pods
already evicted are gone and cordoning a cordoned node changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import secrets
import socket
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from aios_tui.domain import FleetSnapshot, Pod, clock
from aios_tui.domain.errors import describe_error
from aios_tui.ops import inspect
from aios_tui.ops.action import Action, PlanContext, RunContext, get, lookup
from aios_tui.ops.audit import END, INTENT, STEP, AuditEntry, AuditError, AuditLog, AuditRecord, process_start
from aios_tui.ops.core import (
    PDB_RETRY_S,
    ActionRefused,
    ActionResult,
    CancelToken,
    ConfirmationError,
    Plan,
    Progress,
    Steps,
    UnauditedAction,
    join,
    plural,
    quiet,
)
from aios_tui.ops.grammar import ArgError, Kind
from aios_tui.ops.permissions import ActionRate, Actor, PermissionDenied, denial
from aios_tui.sources.base import PermissionChecker, Source

__all__ = ["Ops"]

log = logging.getLogger("aios_tui.ops")

_HOST = socket.gethostname()

_STALE_INTENT_S = 24 * 3600.0
"""An intent from another host with no end after this long is taken as interrupted, not running."""


class Ops:
    """Plans and runs actions on the sources, as ``actor``, writing every attempt to ``audit``.

    ``snapshot`` returns the latest fleet (the app passes ``lambda: poller.snapshot``); ``after_action`` is
    called with the source's name once an action ran (the app passes ``poller.poke``). ``pdb_retry_s`` is
    the wait between two tries of an eviction a PodDisruptionBudget refused.

    ``rate``: at most so many actions a minute (``aios-tui serve`` shares one per key among that key's
    sessions); one more is refused, and audited as refused. ``audit_hook``: audit the changes a backend
    makes on its own as this actor (False where several Ops share the sources, as the sessions of
    ``aios-tui serve`` do: the server's own Ops audits them).
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
        rate: ActionRate | None = None,
        audit_hook: bool = True,
    ) -> None:
        if not pdb_retry_s > 0:
            raise ValueError(f"pdb_retry_s must be positive, got {pdb_retry_s!r}")
        self.sources = sources
        self.snapshot = snapshot
        self.audit = audit
        self.actor = actor
        self.read_only = read_only
        self._after_action = after_action
        self.pdb_retry_s = pdb_retry_s
        self.rate = rate
        for src in sources.values():  # a backend that changes things on its own (a queued launch released)
            if audit_hook and hasattr(src, "audit_hook"):
                src.audit_hook = self.audited

    @contextlib.contextmanager
    def audited(self, action: str, target: str, source: str, title: str) -> Iterator[None]:
        """Audit a change a backend makes on its own (Kubernetes releasing a launch it queued, once the gang
        fits): the intent on disk (fsynced) before the body runs, raising :class:`AuditError` if it cannot
        be; the end line after, ``failed`` with the reason when the body raises."""
        run_id = secrets.token_hex(8)

        def entry(phase: str, outcome: str, message: str) -> AuditEntry:
            return self._stamp(action, target, source, title, phase, outcome, message, run_id)

        self.audit.append(entry(INTENT, "started", "on its own: the gang it queued fits now"))
        try:
            yield
        except Exception as exc:
            self.audit.append(entry(END, "failed", describe_error(exc)))
            raise
        self.audit.append(entry(END, "ok", "done"))

    # --- reading (no plan, no audit: allowed in read-only mode and to every role) ----------------------

    async def read_log(
        self, pod_key: str, container: str = "", previous: bool = False, tail: int = 500
    ) -> list[str]:
        """The last ``tail`` lines of a pod's container (:func:`aios_tui.ops.inspect.read_log`)."""
        return await inspect.read_log(self.sources, self.snapshot(), pod_key, container, previous, tail)

    def follow_log(self, pod_key: str, container: str = "", tail: int = 100) -> AsyncIterator[str]:
        """A pod's log, then each new line (:func:`aios_tui.ops.inspect.follow_log`)."""
        return inspect.follow_log(self.sources, self.snapshot(), pod_key, container, tail)

    async def read_object(self, kind: str, key: str) -> str:
        """An object as YAML (:func:`aios_tui.ops.inspect.read_object`)."""
        return await inspect.read_object(self.sources, self.snapshot(), kind, key)

    def pods_of(self, kind: str, key: str) -> tuple[Pod, ...]:
        """The pods behind an endpoint, a job, a node or a GPU (:func:`aios_tui.ops.inspect.pods_of`)."""
        return inspect.pods_of(self.snapshot(), kind, key)

    # --- asking ----------------------------------------------------------------------------------------

    def context(self) -> PlanContext:
        """What an action plans with: the current snapshot, who acts, and the permission check."""
        return PlanContext(
            snapshot=self.snapshot(),
            actor=self.actor,
            read_only=self.read_only,
            now=clock.now(),
            pdb_retry_s=self.pdb_retry_s,
            check=self.check,
            sources=self.sources,
        )

    def allowed(self, action: str) -> str | None:
        """None when the session's role and mode allow ``action`` at all, else why not. The UI hides keys with
        it; a backend's own refusal (RBAC, a read-only cluster) is :meth:`check`'s."""
        rule = lookup(action)
        if rule is None:
            return f"unknown action {action!r}"
        return denial(rule, self.actor.role, read_only=self.read_only, targets=1)

    def check(self, action: str, target: str | Sequence[str] | None = None) -> str | None:
        """None when ``action`` (on ``target``, one name or several) is allowed now, else the reason. A
        permission its source is still checking (:meth:`pending`) is no refusal here: :meth:`execute` waits
        for it, and refuses what is still unknown then.

        Without a target (or for an action that makes something new, as a launch), the question is whether
        any source can carry the action out.
        """
        rule = lookup(action)
        if rule is None:
            return f"unknown action {action!r}"
        targets = (target,) if isinstance(target, str) else tuple(target or ())
        reason = denial(rule, self.actor.role, read_only=self.read_only, targets=max(1, len(targets)))
        if reason is not None:
            return reason
        if not targets or rule.target is None:
            capable = [s for s in self.sources.values() if isinstance(s, rule.capability)]
            if not capable:
                return f"no source can {action}"
            refusals = [_source_refusal(s, action, None) for s in capable]
            return None if None in refusals else refusals[0]
        for name in targets:
            owner = self._owner(rule, name)
            if owner is None:
                return f"{_NOUN[rule.target]} {name} not found"
            source = self.sources.get(owner)
            if source is None:
                return f"source {owner} is not connected"
            if not isinstance(source, rule.capability):
                return f"source {owner} ({source.kind}) cannot {action}"
            refusal = _source_refusal(source, action, name)
            if refusal is not None:
                return refusal
        return None

    def pending(self, action: str, target: str | Sequence[str] | None = None) -> list[str]:
        """The sources still checking whether they would allow ``action`` on ``target`` (their access reviews
        have not answered): :meth:`check` then says "checking permissions…", which is neither yes nor no.
        Asking starts the check. Never blocks."""
        rule = lookup(action)
        if rule is None:
            return []
        targets = (target,) if isinstance(target, str) else tuple(target or ())
        asked: list[tuple[Source, str | None]]
        if not targets or rule.target is None:  # a launch names the job it makes: its namespace counts
            capable = [s for s in self.sources.values() if isinstance(s, rule.capability)]
            asked = [(s, name) for s in capable for name in (targets or (None,))]
        else:
            owned = [(self.sources.get(self._owner(rule, name) or ""), name) for name in targets]
            asked = [(s, name) for s, name in owned if s is not None]
        return sorted(
            {
                getattr(s, "name", "")
                for s, name in asked
                if isinstance(s, _Reviewing) and not s.permission_known(action, name)
            }
        )

    async def settle(self, action: str, /, **args: Any) -> None:
        """Wait, up to the slowest source's ``timeout``, until every source that checks permissions ahead of
        time (Kubernetes' access reviews) has answered for ``action`` with ``args``: headless ``plan`` and
        ``act`` ask once, and "checking permissions…" is no answer to give them. Arguments that cannot be
        read are left to :meth:`plan` to refuse."""
        a = lookup(action)
        if a is None:
            return
        try:
            targets = a.targets_of(self.read_args(a, args))
        except (ArgError, ActionRefused):
            return
        await self._settle(a.name, targets)

    async def _settle(self, action: str, targets: Sequence[str]) -> None:
        loop = asyncio.get_running_loop()
        limit = max((float(getattr(s, "timeout", 0.0)) for s in self.sources.values()), default=0.0)
        deadline = loop.time() + limit
        while loop.time() < deadline:
            if not self.pending(action, targets):
                return
            await asyncio.sleep(_SETTLE_POLL_S)  # the sources answer from threads: nothing to await

    # --- planning --------------------------------------------------------------------------------------

    def read_args(self, action: str | Action[Any], args: Mapping[str, Any]) -> dict[str, Any]:
        """The arguments of ``action`` as its grammar reads them: text checked and typed, defaults filled
        in, names matched against the fleet. Raises :class:`~aios_tui.ops.grammar.ArgError` (a value of the
        wrong form, one missing) or :class:`~aios_tui.ops.core.TargetNotFound`."""
        a = get(action) if isinstance(action, str) else action
        known = {p.name for p in a.params}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ArgError(f"{a.name} takes no {join(unknown)} (it takes {join(sorted(known))})")
        snapshot = self.snapshot()
        defaults = self.context().defaults
        values: dict[str, Any] = {}
        for p in a.params:
            given = args.get(p.name)
            if given is None or (isinstance(given, str) and not given.strip() and p.default is not None):
                default = p.default_for(defaults)
                if default is None and p.required:
                    raise ArgError(f"{a.name} needs {p.shown_as}")
                given = default
            value = p.syntax(given) if given is not None else None
            values[p.name] = p.resolve(value, snapshot) if value is not None else None
        return values

    def plan(self, action: str, /, **args: Any) -> Plan[Any]:
        """Plan ``action`` with ``args`` (each as typed, or already typed: ``replicas=3`` or ``"+2"``).

        Role and read-only mode, then the action's bounds, are checked before any plan is built: a plan
        that may not run says why and nothing more. Raises what :meth:`read_args` raises.
        """
        a = get(action)
        values = self.read_args(a, args)
        ctx = self.context()
        targets = a.targets_of(values)
        shrinks = a.shrinks(ctx, values)
        reason = denial(
            a, self.actor.role, read_only=self.read_only, targets=max(1, len(targets)), shrinks=shrinks
        )
        if reason is not None:
            return a.refused(ctx, values, [reason], shrinks=shrinks)
        bounds = a.bounds(ctx, values)
        if bounds:
            return a.refused(ctx, values, bounds, shrinks=shrinks)
        return a.plan(ctx, values)

    async def verify(self, plan: Plan[Any]) -> tuple[str, ...]:
        """What the backend says of the plan without changing anything (a drain's server-side dry run)."""
        return await get(plan.action).verify(self.context(), plan)

    def detail_json(self, plan: Plan[Any]) -> dict[str, Any]:
        """The structured plan behind the rows, as JSON-ready data, keyed as the action names it."""
        return {} if plan.detail is None else get(plan.action).json_detail(plan)

    # --- executing -------------------------------------------------------------------------------------

    async def execute(
        self,
        plan: Plan[Any],
        *,
        confirmation: str | None = None,
        progress: Progress | None = None,
        cancel: CancelToken | None = None,
    ) -> ActionResult:
        """Run a plan, reporting each step through ``progress``; ``cancel`` stops it between two steps.

        Raises :class:`PermissionDenied` or :class:`ActionRefused` (nothing was attempted, the refusal is
        audited) or :class:`AuditError` (the intent cannot be written: nothing runs; or
        :class:`UnauditedAction` when it ran but its end line could not be written). Otherwise returns the
        outcome, failed or not, which is audited too. Cancelled as a task midway, it audits what was done and
        re-raises.
        """
        action = get(plan.action)
        await self._settle(plan.action, plan.targets or ((plan.target,) if plan.target else ()))
        try:
            source = self._admit(action, plan, confirmation)
            wait = self.rate.take() if self.rate is not None else None
            if self.rate is not None and wait is not None:  # counted only once every other check passed
                raise ActionRefused(
                    f"{self.actor.user} ran {plural(self.rate.per_minute, 'action')} in the last minute, "
                    f"the most allowed: try again in {math.ceil(wait)} s"
                )
        except (PermissionDenied, ActionRefused) as exc:
            await asyncio.to_thread(self.refuse, plan, str(exc))
            raise
        run_id = secrets.token_hex(8)
        planned = action.step_names(plan)
        intent = self._entry(plan, INTENT, "started", "", run_id=run_id, steps=planned)
        await asyncio.to_thread(self.audit.append, intent)  # AuditError: nothing has changed

        def journal(step: str, outcome: str, why: str) -> None:
            self.audit.append(self._entry(plan, STEP, outcome, why, run_id=run_id, step=step))

        say = progress or quiet
        steps = Steps(planned, journal=journal, cancel=cancel)
        run = RunContext(source, steps, say, self.pdb_retry_s, self.snapshot)
        try:
            await action.run(run, plan)
        except asyncio.CancelledError:
            result = steps.result(plan.title, interrupted=True)
            self._poke(plan)
            try:  # synchronously: the task is being cancelled, and this line must be written
                self.audit.append(self._end(plan, run_id, "interrupted", result))
            except AuditError as exc:
                log.error("%s (%s) was not audited: %s", plan.title, result.message, exc)
            say(result.message)
            raise
        result = steps.result(plan.title)
        self._poke(plan)
        outcome = "ok" if result.ok else "cancelled" if result.cancelled else "failed"
        try:
            await asyncio.to_thread(self.audit.append, self._end(plan, run_id, outcome, result))
        except AuditError as exc:
            # The action ran (or was attempted) but its end is lost: say so loudly, never silently.
            log.error("%s (%s) was not audited: %s", plan.title, result.message, exc)
            raise UnauditedAction(
                f"{result.message}; but its end could not be audited: {exc}", result
            ) from exc
        return result

    def refuse(self, plan: Plan[Any], reason: str) -> None:
        """Audit that ``plan`` was refused before anything ran (a blocker, no confirmation, Ctrl-C at the
        prompt). An audit log that cannot be written is logged: the refusal stands either way."""
        try:
            self.audit.append(self._entry(plan, END, "refused", reason, run_id=secrets.token_hex(8)))
        except AuditError as exc:
            log.error("refusal of %s was not audited: %s", plan.title, exc)

    def refuse_request(self, action: str, target: str, reason: str) -> None:
        """Audit a request refused before it became a plan (an unknown target, a key the role may not use)."""
        plan: Plan[None] = Plan(action, target, "", f"{action} {target}".strip(), (), (), (reason,), None)
        self.refuse(plan, reason)

    def unfinished(self) -> list[str]:
        """Report the actions whose intent has no end: a console killed mid-action left them. Those whose
        process is gone are closed as ``interrupted``; each gets one sentence ("Cordon 2 nodes (a, b):
        interrupted at 14:02 UTC, 1 of 2 steps done (cordon a)"). Actions still running in a live process
        on this host are left alone."""
        try:
            records = self.audit.unfinished()
        except OSError as exc:
            return [f"cannot read the audit log {self.audit.path}: {exc.strerror or exc}"]
        out: list[str] = []
        for record in records:
            intent = record.intent
            assert intent is not None
            state = _liveness(intent)
            if state == "running":
                continue
            sentence = _interrupted(record)
            if state == "elsewhere":
                out.append(
                    f"{sentence} on {intent.host}: no outcome yet (still running there, or interrupted)"
                )
                continue
            out.append(sentence)
            end = AuditEntry(
                ts=clock.now_utc().isoformat(timespec="milliseconds"),
                user=self.actor.user,
                host=_HOST,
                role=str(self.actor.role),
                action=intent.action,
                target=intent.target,
                source=intent.source,
                title=intent.title,
                outcome="interrupted",
                message=f"{sentence}; found unfinished at start",
                params=intent.params,
                id=intent.id,
                phase=END,
                pid=os.getpid(),
                fingerprint=self.actor.fingerprint,
            )
            try:
                self.audit.append(end)
            except AuditError as exc:
                log.warning("could not close the interrupted %s in the audit log: %s", intent.title, exc)
        return out

    def _admit(self, action: Action[Any], plan: Plan[Any], confirmation: str | None) -> Source:
        """Every check before running; returns the source that will run the plan."""
        reason = denial(
            action,
            self.actor.role,
            read_only=self.read_only,
            targets=max(1, len(plan.targets)),
            shrinks=plan.shrinks,
        )
        if reason is not None:
            raise PermissionDenied(reason)
        if plan.blockers:
            raise ActionRefused(f"cannot {plan.action} {plan.target}: {'; '.join(plan.blockers)}")
        source = self.sources.get(plan.source)
        if source is None:
            raise ActionRefused(f"source {plan.source or '(none)'} is not connected")
        if not isinstance(source, action.capability):
            raise ActionRefused(f"source {plan.source} ({source.kind}) cannot {plan.action}")
        refusal = _source_refusal(source, plan.action, plan.target, unknown=True)
        if refusal is not None:
            raise PermissionDenied(refusal)
        action.still_valid(self.context(), plan)
        if plan.confirm_phrase is not None:
            typed = (confirmation or "").strip()
            if not typed:
                raise ConfirmationError(f"type {plan.confirm_phrase!r} to confirm: {plan.title}")
            if typed != plan.confirm_phrase:
                raise ConfirmationError(
                    f"confirmation {typed!r} does not match {plan.confirm_phrase!r}; nothing was done"
                )
        return source

    # --- helpers ---------------------------------------------------------------------------------------

    def _poke(self, plan: Plan[Any]) -> None:
        if self._after_action is not None:
            try:
                self._after_action(plan.source)
            except Exception:
                log.exception("after_action(%s) failed", plan.source)

    def _entry(
        self,
        plan: Plan[Any],
        phase: str,
        outcome: str,
        message: str,
        *,
        run_id: str,
        steps: tuple[str, ...] = (),
        step: str = "",
    ) -> AuditEntry:
        return self._stamp(
            plan.action,
            plan.target,
            plan.source,
            plan.title,
            phase,
            outcome,
            message,
            run_id,
            params=plan.params if phase != STEP else {},
            warnings=plan.warnings if phase != STEP else (),
            digest=plan.digest if phase == INTENT else "",
            steps=steps,
            step=step,
        )

    def _stamp(
        self,
        action: str,
        target: str,
        source: str,
        title: str,
        phase: str,
        outcome: str,
        message: str,
        run_id: str,
        **plan_fields: Any,
    ) -> AuditEntry:
        """One audit line by this console's actor, now; an intent also names the process (so that a later
        console can tell whether it is still running)."""
        intent = phase == INTENT
        return AuditEntry(
            ts=clock.now_utc().isoformat(timespec="milliseconds"),
            user=self.actor.user,
            host=_HOST,
            role=str(self.actor.role),
            action=action,
            target=target,
            source=source,
            title=title,
            outcome=outcome,
            message=message,
            id=run_id,
            phase=phase,
            pid=os.getpid() if intent else 0,
            pid_start=process_start(os.getpid()) if intent else "",
            fingerprint=self.actor.fingerprint,
            **plan_fields,
        )

    def _end(self, plan: Plan[Any], run_id: str, outcome: str, result: ActionResult) -> AuditEntry:
        return self._entry(plan, END, outcome, result.message, run_id=run_id)

    def _owner(self, action: Action[Any], target: str) -> str | None:
        """Name of the source that reported ``target``, or None when it is not in the snapshot."""
        snap = self.snapshot()
        found: Any
        if action.target is Kind.ENDPOINT:
            found = snap.endpoint_by_key.get(target)
        elif action.target is Kind.POOL:
            found = snap.pools_by_name.get(target)
        else:
            found = snap.node_by_name.get(target)
        return found.source if found is not None else None


_NOUN = {Kind.ENDPOINT: "endpoint", Kind.NODES: "node", Kind.POOL: "node pool"}

_SETTLE_POLL_S = 0.05
"""How often :meth:`Ops.settle` looks whether the access reviews answered (a review takes a few ms)."""


@runtime_checkable
class _Reviewing(Protocol):
    """A source whose :meth:`permission` can be "checking permissions…" (Kubernetes' access reviews)."""

    def permission_known(self, action: str, target: str | None = None) -> bool: ...


def _source_refusal(source: Source, action: str, target: str | None, *, unknown: bool = False) -> str | None:
    """Why the source itself would refuse (RBAC, a read-only cluster), when it can tell ahead of time.

    While its access reviews have not answered the answer is None (no refusal known: the key stays offered,
    the plan is shown), unless ``unknown``: then "checking permissions…", which :meth:`Ops.execute` refuses
    after waiting for the answer, as it never acts on a permission not known."""
    if not isinstance(source, PermissionChecker):
        return None
    said = source.permission(action, target)  # waits for the answer only off the event loop
    if said is not None and not unknown and isinstance(source, _Reviewing):
        return said if source.permission_known(action, target) else None
    return said


def _liveness(intent: AuditEntry) -> str:
    """``running`` (its process lives, on this host), ``elsewhere`` (another host, recently) or ``gone``."""
    if intent.host != _HOST:
        try:
            started = datetime.fromisoformat(intent.ts).timestamp()
        except ValueError:
            return "gone"
        return "elsewhere" if clock.now() - started < _STALE_INTENT_S else "gone"
    if intent.pid == os.getpid():
        return "running"  # an action of this very process, under way
    if intent.pid <= 0:
        return "gone"
    try:
        os.kill(intent.pid, 0)
    except ProcessLookupError:
        return "gone"
    except PermissionError:
        pass  # alive, another user's
    if intent.pid_start and process_start(intent.pid) not in ("", intent.pid_start):
        return "gone"  # the pid was reused by a process started later
    return "running"


def _interrupted(record: AuditRecord) -> str:
    intent = record.intent
    assert intent is not None
    try:
        when = datetime.fromisoformat(intent.ts).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        when = intent.ts
    done = record.done
    total = len(record.planned) or len(record.steps)
    listed = f" ({join(done[:3])}{' …' if len(done) > 3 else ''})" if done else ""
    return f"{intent.title}: interrupted at {when}, {len(done)} of {plural(total, 'step')} done{listed}"
