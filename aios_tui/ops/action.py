"""The action registry: every action is one object, declared in one module of :mod:`aios_tui.ops.actions`.

An :class:`Action` says everything the rest of the program needs to offer it: its name (the ``:`` command and
the CLI subcommand), what it acts on, the source capability that carries it out, the least role that may run
it, its key and the panes where the key works, its argument grammar (:class:`~aios_tui.ops.grammar.Param`),
and how it plans, checks that a plan still holds, runs (step by step) and what its plan's detail looks like
as JSON. Bindings, ``:`` commands and their completion, the command palette, the help screen, the footer and
the ``plan`` / ``act`` subcommands with their ``--help`` are all made from :func:`all_actions`.

Adding an action is one module in ``aios_tui/ops/actions/`` with a subclass of :class:`Action` (registered
by defining it) plus its tests.

An action never sees :class:`~aios_tui.ops.engine.Ops`: it plans from a :class:`PlanContext` (the snapshot,
who acts, the permission check) and runs with a :class:`RunContext` (its source, its steps, progress).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from aios_tui.domain import Endpoint, FleetSnapshot, Node, NodePool
from aios_tui.ops.core import CancelToken, Plan, Progress, Steps, TargetNotFound, join
from aios_tui.ops.grammar import Defaults, Kind, Param
from aios_tui.ops.permissions import Actor, Role
from aios_tui.sources.base import Source

__all__ = ["Action", "PlanContext", "RunContext", "all_actions", "get", "lookup"]

D = TypeVar("D")


@dataclass(frozen=True)
class PlanContext:
    """What an action may know while it plans: the fleet, who acts, and what the session allows."""

    snapshot: FleetSnapshot
    actor: Actor
    read_only: bool
    now: float
    pdb_retry_s: float
    check: Callable[[str, Sequence[str]], str | None]
    """``check(action, targets)``: None when allowed, else why not (role, read-only, the source's own)."""
    sources: Mapping[str, Source]

    @property
    def defaults(self) -> Defaults:
        return Defaults(user=self.actor.user, now=self.now)

    def endpoint(self, key: str) -> Endpoint:
        endpoint = self.snapshot.endpoint_by_key.get(key)
        if endpoint is None:
            raise TargetNotFound(f"endpoint {key} not found")
        return endpoint

    def pool(self, name: str) -> NodePool:
        pool = self.snapshot.pools_by_name.get(name)
        if pool is None:
            raise TargetNotFound(f"node pool {name} not found")
        return pool

    def nodes(self, names: Sequence[str]) -> list[Node]:
        """The nodes named, each once, in the order given. Raises :class:`TargetNotFound`."""
        if isinstance(names, str):
            raise TypeError("nodes must be a sequence of names, not one string")
        wanted = list(dict.fromkeys(names))
        if not wanted:
            raise TargetNotFound("no node given")
        by_name = self.snapshot.node_by_name
        missing = [n for n in wanted if n not in by_name]
        if missing:
            raise TargetNotFound(f"node{'s' if len(missing) > 1 else ''} {join(missing)} not found")
        return [by_name[n] for n in wanted]

    def node_blockers(self, action: str, nodes: Sequence[Node]) -> list[str]:
        """Why ``action`` cannot run on these nodes together: not allowed, or owned by several sources."""
        blockers: list[str] = []
        reason = self.check(action, [n.name for n in nodes])
        if reason is not None:
            blockers.append(reason)
        owners = sorted({n.source for n in nodes})
        if len(owners) > 1:
            blockers.append(
                f"The nodes belong to several sources ({', '.join(owners)}): {action} them apart."
            )
        return blockers

    def launcher(self, capability: type, nodes: Sequence[str] = ()) -> str:
        """The source that owns ``nodes`` (or the first that has ``capability``), by name; "" when none."""
        for name in nodes:
            node = self.snapshot.node_by_name.get(name)
            if node is not None:
                return node.source
        return next((name for name, s in self.sources.items() if isinstance(s, capability)), "")


@dataclass
class RunContext:
    """What a running action has: the source that carries it out, its steps, and a line for progress."""

    source: Source
    steps: Steps
    say: Progress
    pdb_retry_s: float
    snapshot: Callable[[], FleetSnapshot]

    @property
    def cancel(self) -> CancelToken:
        return self.steps.cancel


class Action(Generic[D]):
    """One action. Subclasses set the class attributes and :meth:`plan`; the rest has sensible defaults."""

    name: ClassVar[str]
    """The ``:`` command and the CLI subcommand: ``scale``, ``drain``, ``scale-pool``."""
    summary: ClassVar[str]
    """One line for help, the palette and ``--help``: "set an endpoint's replicas"."""
    label: ClassVar[str]
    """The footer's word for the key: "Scale"."""
    order: ClassVar[int] = 100
    """Where it is listed (help, CLI), lowest first."""
    target: ClassVar[Kind | None] = None
    """What it acts on (an endpoint, nodes, a pool), or None when it makes something new (launch)."""
    capability: ClassVar[type]
    """The source capability (:mod:`aios_tui.sources.base`) that carries it out."""
    min_role: ClassVar[Role] = Role.OPERATOR
    min_role_many: ClassVar[Role | None] = None
    """The least role for several targets at once, when that takes more."""
    min_role_shrink: ClassVar[Role | None] = None
    """The least role when it removes capacity, when that takes more."""
    key: ClassVar[str | None] = None
    panes: ClassVar[tuple[str, ...]] = ()
    """Where the key works: the panes (``nodes``, ``endpoints``, ``jobs``) and views (``pools``, ``cordon``)
    whose row under the cursor (or marked rows) are the targets."""
    params: ClassVar[tuple[Param, ...]] = ()
    in_footer: ClassVar[bool] = True
    """Whether the footer shows its key (80 columns hold few; help and the palette list them all)."""
    aliases: ClassVar[tuple[str, ...]] = ()
    """Other ``:`` command names for it."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "name" in cls.__dict__:
            _register(cls())

    def __repr__(self) -> str:
        return f"<action {self.name}>"

    @property
    def usage(self) -> str:
        """``scale ENDPOINT REPLICAS``."""
        return " ".join([self.name, *(p.shown_as if p.needed else f"[{p.shown_as}]" for p in self.params)])

    @property
    def target_param(self) -> Param | None:
        return next((p for p in self.params if p.is_target), None)

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    # --- planning -------------------------------------------------------------------------------------------

    def bounds(self, ctx: PlanContext, args: Mapping[str, Any]) -> list[str]:
        """What makes the arguments impossible, found cheaply before any plan is built (limits, sane maxima);
        each a sentence. A non-empty answer means no plan is built."""
        return []

    def plan(self, ctx: PlanContext, args: Mapping[str, Any]) -> Plan[D]:
        raise NotImplementedError

    def refused(
        self, ctx: PlanContext, args: Mapping[str, Any], blockers: Sequence[str], *, shrinks: bool = False
    ) -> Plan[D]:
        """The plan shown when the action may not be planned at all: who may not, or what is out of bounds."""
        target = self._target_text(args)
        return Plan(
            action=self.name,
            target=target,
            source="",
            title=f"{self.label} {target}".strip(),
            lines=tuple(
                (_label(p), join(v) if isinstance(v, tuple | list) else str(v))
                for p in self.params
                if (v := args.get(p.name)) not in (None, "", False)
            ),
            warnings=(),
            blockers=tuple(blockers),
            confirm_phrase=None,
            targets=self.targets_of(args),
            shrinks=shrinks,
        )

    def shrinks(self, ctx: PlanContext, args: Mapping[str, Any]) -> bool:
        """Whether these arguments remove capacity (which may need :attr:`min_role_shrink`)."""
        return False

    def targets_of(self, args: Mapping[str, Any]) -> tuple[str, ...]:
        """The names the arguments act on."""
        param = self.target_param
        if param is None:
            return ()
        value = args.get(param.name)
        if value is None:
            return ()
        return tuple(value) if param.kind is Kind.NODES else (str(value),)

    def field(self, ctx: PlanContext, param: Param, args: Mapping[str, Any]) -> tuple[str, str]:
        """The label and first text of ``param``'s field in the plan screen, given the targets in ``args``
        (scale says how many replicas there are now)."""
        value = args.get(param.name)
        if value is None:
            value = param.default_for(ctx.defaults)
        if isinstance(value, bool):
            return param.label, "y" if value else "n"
        return param.label, "" if value is None else str(value)

    def _target_text(self, args: Mapping[str, Any]) -> str:
        return join(self.targets_of(args))

    def still_valid(self, ctx: PlanContext, plan: Plan[D]) -> None:
        """Raise :class:`~aios_tui.ops.core.ActionRefused` when the fleet changed so that the plan no longer
        applies. By default: every target is still there."""
        if self.target is None:
            return
        snap = ctx.snapshot
        known: Mapping[str, object] = {
            Kind.ENDPOINT: snap.endpoint_by_key,
            Kind.NODES: snap.node_by_name,
            Kind.POOL: snap.pools_by_name,
        }[self.target]
        gone = [t for t in plan.targets if t not in known]
        if gone:
            noun = {Kind.ENDPOINT: "endpoint", Kind.NODES: "node", Kind.POOL: "node pool"}[self.target]
            raise TargetNotFound(f"{noun} {join(gone)} no longer exists; nothing was done")

    # --- running --------------------------------------------------------------------------------------------

    def step_names(self, plan: Plan[D]) -> tuple[str, ...]:
        """The steps the action will take, in order, for the audit intent (one by default: the title)."""
        return (plan.title,)

    async def run(self, run: RunContext, plan: Plan[D]) -> None:
        """Carry the plan out step by step through ``run.steps``. By default one step: :meth:`call`."""
        run.say(f"{plan.title} …")
        # No "done" said here: the result's message says it (``act`` used to print it three times).
        await run.steps.attempt(plan.title, functools.partial(self.call, run.source, plan))

    async def call(self, source: Source, plan: Plan[D]) -> None:
        """The one call to the source behind a single-step action."""
        raise NotImplementedError

    async def verify(self, ctx: PlanContext, plan: Plan[D]) -> tuple[str, ...]:
        """Ask the backend about the plan without changing anything (a drain's server-side dry run)."""
        return ()

    def json_detail(self, plan: Plan[D]) -> dict[str, Any]:
        """The structured plan behind the rows, for ``plan --json``."""
        return {}


def _label(param: Param) -> str:
    """``Nodes``, ``Replicas``: a field's label up to its first parenthesis or question."""
    label = param.label.split("(")[0].split("?")[0].strip() if param.label else ""
    return label or param.name.replace("_", " ").capitalize()


_REGISTRY: dict[str, Action[Any]] = {}
_BY_NAME: dict[str, Action[Any]] = {}


def _register(action: Action[Any]) -> None:
    for name in (action.name, *action.aliases):
        other = _BY_NAME.get(name)
        if other is not None and type(other) is not type(action):
            raise RuntimeError(f"two actions are called {name!r}: {other!r} and {action!r}")
        _BY_NAME[name] = action
    _REGISTRY[action.name] = action


@functools.cache
def _discover() -> None:
    """Import every module of :mod:`aios_tui.ops.actions`: defining an action registers it."""
    package = importlib.import_module("aios_tui.ops.actions")
    for module in pkgutil.iter_modules(package.__path__):
        importlib.import_module(f"{package.__name__}.{module.name}")


def all_actions() -> tuple[Action[Any], ...]:
    """Every registered action, in the order help and the CLI list them."""
    _discover()
    return tuple(sorted(_REGISTRY.values(), key=lambda a: (a.order, a.name)))


def lookup(name: str) -> Action[Any] | None:
    """The action called ``name`` (or one of its aliases), else None."""
    _discover()
    return _BY_NAME.get(name)


def get(name: str) -> Action[Any]:
    """The action called ``name``; :class:`KeyError` naming the known ones when there is none."""
    action = lookup(name)
    if action is None:
        raise KeyError(f"unknown action {name!r}; the actions are {join([a.name for a in all_actions()])}")
    return action
