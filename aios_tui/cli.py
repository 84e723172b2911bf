"""The ``aios-tui`` command: flags → settings → sources → the console, or a headless subcommand.

``aios-tui`` opens the console; ``aios-tui snapshot [--json]`` prints the fleet once and exits. Global
options (``--config``, ``--sim``, ``--seed``, ``--sim-nodes``, ``--read-only``, ``--context``,
``--version``) are accepted before or after the subcommand. Bad flags or settings print one line naming
the flag or the file and key, and exit with status 2 before anything starts.

Textual is imported only when the console starts, so headless commands start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import enum
import json
import logging
import logging.handlers
import math
import os
import re
import sys
import time
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from aios_tui.config import ConfigError, Override, Settings, default_log_path, load_settings, sim_only
from aios_tui.domain import NA, FleetSnapshot, Health, JobState, NaType, Node, fmt, fmt_money, fmt_pct
from aios_tui.sources import build_sources
from aios_tui.sources.base import DEFAULT_TRAINING_IMAGE

if typing.TYPE_CHECKING:
    from aios_tui.ops import ActionResult, Ops, Plan
    from aios_tui.poll import Poller
    from aios_tui.sources.base import Source

__all__ = ["COMMANDS", "Command", "build_parser", "main", "snapshot_to_json"]

log = logging.getLogger("aios_tui")

EXIT_USAGE = 2
EXIT_CANNOT = 3
"""The plan cannot be carried out (blockers, unknown target, refused, not confirmed)."""
EXIT_FAILED = 4
"""The action ran but did not finish: some steps were done, others not."""
EXIT_INTERRUPTED = 130


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aios-tui")
    except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
        return "unknown"


# --- arguments --------------------------------------------------------------------------------------------


def _global_options(*, after: bool = False) -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand (``after``: the copy the subcommands get).

    Their default is SUPPRESS, so a value given on one side is not overwritten by the other's default.
    ``--context`` collects into its own list on each side (a subcommand's values would replace the
    others'), and the two lists are joined.
    """
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("global options")
    s = argparse.SUPPRESS
    group.add_argument(
        "--config",
        metavar="PATH",
        default=s,
        help="settings file (default: $XDG_CONFIG_HOME/aios-tui/config.toml)",
    )
    group.add_argument("--sim", action="store_true", default=s, help="run on the embedded fleet only")
    group.add_argument("--seed", metavar="N", default=s, help="seed of the embedded fleet")
    group.add_argument("--sim-nodes", metavar="N", default=s, help="number of nodes in the embedded fleet")
    group.add_argument("--read-only", action="store_true", default=s, help="allow no action")
    group.add_argument(
        "--context",
        metavar="NAME",
        action="append",
        dest="context_after" if after else "context",
        default=s,
        help="kubeconfig context to watch (repeat it or separate with commas); turns Kubernetes on",
    )
    group.add_argument("--version", action="version", version=f"aios-tui {_version()}")
    return parent


@dataclass(frozen=True, slots=True)
class Command:
    """A headless subcommand: its help line, its own arguments, and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings], int]


def build_parser() -> argparse.ArgumentParser:
    parent = _global_options()
    parser = argparse.ArgumentParser(
        prog="aios-tui",
        description="A terminal ops console for GPU fleets. With no command, opens the console.",
        parents=[parent],
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    after = _global_options(after=True)
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help, parents=[after])
        command.add_arguments(p)
    return parser


def settings_from_args(args: argparse.Namespace) -> Settings:
    """Load the settings with the global flags on top (raises ConfigError)."""
    overrides = []
    if hasattr(args, "seed"):
        overrides.append(Override("sim.seed", args.seed, "--seed"))
    if hasattr(args, "sim_nodes"):
        overrides.append(Override("sim.nodes", args.sim_nodes, "--sim-nodes"))
    if getattr(args, "read_only", False):
        overrides.append(Override("read_only", True, "--read-only"))
    contexts = [*getattr(args, "context", ()), *getattr(args, "context_after", ())]
    if contexts:
        overrides.append(Override("kubernetes.contexts", ",".join(contexts), "--context"))
        overrides.append(Override("kubernetes.enabled", True, "--context"))
    settings = load_settings(getattr(args, "config", None), overrides=overrides)
    return sim_only(settings) if getattr(args, "sim", False) else settings


# --- snapshot ---------------------------------------------------------------------------------------------


async def _fetch_once(sources: Sequence[Source], idle_window: float = 600.0) -> FleetSnapshot:
    from aios_tui.poll import Poller

    poller = Poller(sources, idle_window=idle_window)
    try:
        return await poller.refresh()
    finally:
        await poller.stop()  # closes the sources


def _snapshot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _run_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    sources = build_sources(settings)
    started = time.perf_counter()
    snap = asyncio.run(_fetch_once(sources, settings.idle_window))
    log.info("snapshot of %d nodes in %.3fs", len(snap.nodes), time.perf_counter() - started)
    if args.json:
        # dumps then one write: json.dump() writes piece by piece and is ten times slower here.
        sys.stdout.write(json.dumps(snapshot_to_json(snap), separators=(",", ":"), allow_nan=False) + "\n")
    else:
        write_summary(snap, sys.stdout)
    sys.stdout.flush()
    return 0


# JSON: dataclasses.asdict deep-copies every value through a generic path and takes seconds on 40,000 GPUs.
# Here each class gets its field list once; fields typed str/int/bool are copied as they are.

_Converter = Callable[[Any], Any]
_PLAIN = (str, int, bool)


def _same(value: Any) -> Any:
    return value


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _sequence(value: Sequence[Any]) -> list[Any]:
    return [_to_json(v) for v in value]


_CONVERTERS: dict[type, _Converter] = {
    str: _same,
    int: _same,
    bool: _same,
    type(None): _same,
    float: _float,
    NaType: lambda _: None,
    tuple: _sequence,
    list: _sequence,
}


def _to_json(value: Any) -> Any:
    kind = type(value)
    conv = _CONVERTERS.get(kind)
    if conv is None:
        conv = _CONVERTERS[kind] = _converter_for(kind)
    return conv(value)


def _converter_for(kind: type) -> _Converter:
    if issubclass(kind, enum.Enum):
        return lambda v: _to_json(v.value)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = [f.name for f in dataclasses.fields(kind)]
        plain = tuple(n for n in fields if hints.get(n) in _PLAIN)
        other = tuple(n for n in fields if n not in plain)

        def convert(obj: Any) -> dict[str, Any]:
            out = {n: getattr(obj, n) for n in plain}
            for n in other:
                out[n] = _to_json(getattr(obj, n))
            return out

        return convert
    if issubclass(kind, Mapping):
        return lambda m: {str(k): _to_json(v) for k, v in m.items()}
    raise TypeError(f"cannot write a {kind.__name__} as JSON")


def snapshot_to_json(snap: FleetSnapshot) -> dict[str, Any]:
    """The snapshot as one JSON-ready object: each element its dataclass's fields, NA as None; then the
    allocated-but-idle GPUs and the nodes the GPU telemetry says to cordon."""
    from aios_tui.ops.suggest import suggest_cordons

    return {
        "timestamp": snap.timestamp,
        "context": snap.context,
        "sources": _to_json(snap.sources),
        "totals": _to_json(snap.totals),
        "pods": len(snap.pods),
        "nodes": _to_json(snap.nodes),
        "gpus": _to_json(snap.gpus),
        "jobs": _to_json(snap.jobs),
        "endpoints": _to_json(snap.endpoints),
        "idle_window": snap.idle_window,
        "idle_gpus": [
            {
                "uuid": g.uuid,
                "node": g.node,
                "index": g.index,
                "pod": g.pod,
                "util": _to_json(g.util),
                "low_since": _to_json(snap.low_since(g)),
                "price_per_hour": _to_json(snap.gpu_price(g)),
            }
            for g in snap.idle_gpus
        ],
        "suggestions": [
            {"action": s.action, "node": s.node, "severity": s.severity.label, "reasons": list(s.reasons)}
            for s in suggest_cordons(snap)
        ],
    }


# Text: a compact summary an on-call engineer reads in a few seconds, then the things that need a look.

MAX_ROWS = 20


def _table(out: TextIO, title: str, headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    out.write(f"\n{title} ({len(rows)})\n")
    if not rows:
        out.write("  none\n")
        return
    shown = rows[:MAX_ROWS]
    widths = [max(len(h), *(len(r[i]) for r in shown)) for i, h in enumerate(headers)]
    for row in (headers, *shown):
        out.write("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    if len(rows) > MAX_ROWS:
        out.write(f"  … and {len(rows) - MAX_ROWS} more\n")


def _node_problems(node: Node, snap: FleetSnapshot) -> list[str]:
    problems = []
    if not node.ready:
        problems.append("NotReady")
    if node.cordoned:
        problems.append("cordoned")
    problems.extend(str(t) for t in node.taints if t.effect in ("NoSchedule", "NoExecute"))
    for gpu in snap.gpus_by_node.get(node.name, ()):
        problems.extend(f"gpu{gpu.index} {p}" for p in gpu.problems)
    if not problems and node.health is not Health.OK:
        problems.append(f"health {node.health.label}")
    return problems


def write_summary(snap: FleetSnapshot, out: TextIO) -> None:
    """The snapshot as plain text: header, totals, then nodes with problems, queued/failed jobs, endpoints."""
    t = snap.totals
    when = datetime.fromtimestamp(snap.timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    out.write(f"aios-tui snapshot  {when}  context: {snap.context or '-'}\n")
    health = ", ".join(
        f"{s.describe(snap.timestamp)}" + (f" ({s.error})" if s.error else "") for s in snap.sources
    )
    out.write(f"sources    {health or 'none'}\n")
    out.write(f"nodes      {t.nodes_ready}/{t.nodes} ready\n")
    idle_cost = "" if t.idle_cost_per_hour is NA else f" ({fmt_money(t.idle_cost_per_hour)})"
    out.write(
        f"GPUs       {t.gpus} total, {t.gpus_used} used, {t.gpus_free} free, "
        f"{t.gpus_idle_allocated} allocated but idle{idle_cost}, {t.unhealthy_gpus} unhealthy\n"
    )
    out.write(f"util       {fmt_pct(t.avg_util)} average\n")
    out.write(f"cost       {fmt_money(t.cost_per_hour)}\n")
    out.write(f"jobs       {t.jobs_running} running, {t.jobs_queued} queued; endpoints {t.endpoints}\n")

    node_rows = []
    for node in snap.nodes:
        problems = _node_problems(node, snap)
        if problems:
            gpus = f"{node.gpus_requested}/{node.gpus_allocatable}"
            node_rows.append([node.name, node.pool, node.zone, node.status, gpus, "; ".join(problems)])
    _table(out, "Nodes with problems", ["NAME", "POOL", "ZONE", "STATUS", "GPUS", "PROBLEMS"], node_rows)
    from aios_tui.ops.suggest import suggest_cordons

    cordon_rows = [[s.node, s.severity.label, s.reason] for s in suggest_cordons(snap)]
    _table(out, "Nodes to cordon", ["NODE", "SEVERITY", "WHY"], cordon_rows)

    job_rows = [
        [
            j.key,
            j.state.value,
            f"{j.workers}x{j.gpus_per_worker} {j.gpu_model}".rstrip(),
            str(j.queue_position or ""),
            j.pending_reason,
        ]
        for j in sorted(
            (j for j in snap.jobs if j.state in (JobState.QUEUED, JobState.FAILED)),
            key=lambda j: (j.state is not JobState.QUEUED, j.queue_position, j.key),
        )
    ]
    _table(out, "Queued and failed jobs", ["JOB", "STATE", "GPUS", "QUEUE", "REASON"], job_rows)

    ep_rows = [
        [
            e.key,
            e.model,
            f"{e.replicas_ready}/{e.replicas_desired}",
            fmt(e.qps, ".1f"),
            fmt(e.p50_ms, ".0f", "ms"),
            fmt(e.p99_ms, ".0f", "ms"),
            fmt_pct(e.error_rate * 100, ".1f"),
        ]
        for e in snap.endpoints
    ]
    _table(out, "Endpoints", ["ENDPOINT", "MODEL", "READY", "QPS", "P50", "P99", "ERRORS"], ep_rows)


# --- plan and act -----------------------------------------------------------------------------------------
# ``plan ACTION …`` prints what an action would do; ``act ACTION …`` shows the same plan, asks for
# confirmation, runs it with progress and reports what was done and what was not. Both build the actions
# exactly as the console does, over one refresh of every source.

_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def _whole(lo: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``lo``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < lo:
            raise argparse.ArgumentTypeError(f"expected {lo} or more, got {value}")
        return value

    return parse


_positive = _whole(1)
_count = _whole(0)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds, got {text!r}") from None
    if not 0 <= value <= 86_400:
        raise argparse.ArgumentTypeError(f"expected 0 to 86400 seconds, got {text}")
    return value


def _job_name(text: str) -> tuple[str, str]:
    namespace, _, name = text.partition("/")
    if not name:
        namespace, name = "default", namespace
    for part in (namespace, name):
        if len(part) > 63 or not _K8S_NAME.fullmatch(part):
            raise argparse.ArgumentTypeError(f"{part!r} is not a valid Kubernetes name (in {text!r})")
    return namespace, name


def _default_job_name() -> tuple[str, str]:
    return "default", "train-" + datetime.now(UTC).strftime("%Y%m%d-%H%M%S")


def _action_arguments(act: bool) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        parent = _global_options()
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--json", action="store_true", help="print JSON instead of text")
        if act:
            common.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            common.add_argument(
                "--confirm", metavar="PHRASE", help="the phrase a protected plan asks for (with --yes)"
            )
        parents = [parent, common]
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

        p = sub.add_parser("drain", help="cordon nodes and evict their pods", parents=parents)
        p.add_argument("nodes", nargs="+", metavar="NODE")
        p.add_argument("--allow-empty-dir", action="store_true", help="evict pods with emptyDir data")
        p.add_argument("--allow-unmanaged", action="store_true", help="delete pods without a controller")
        p.add_argument(
            "--pdb-timeout",
            type=_seconds,
            default=300.0,
            metavar="SECONDS",
            help="how long to retry evictions a PodDisruptionBudget refuses (default 300)",
        )
        for name, what in (("cordon", "stop new pods landing on"), ("uncordon", "let new pods land on")):
            p = sub.add_parser(name, help=f"{what} nodes", parents=parents)
            p.add_argument("nodes", nargs="+", metavar="NODE")
        p = sub.add_parser("scale", help="set an endpoint's replicas", parents=parents)
        p.add_argument("endpoint", metavar="ENDPOINT", help="namespace/name")
        p.add_argument("replicas", type=_count, metavar="REPLICAS")
        p = sub.add_parser("scale-pool", help="set a node pool's desired capacity (nodes)", parents=parents)
        p.add_argument("pool", metavar="POOL")
        p.add_argument("desired", type=_count, metavar="NODES")
        p = sub.add_parser("redeploy", help="rolling restart or new image of an endpoint", parents=parents)
        p.add_argument("endpoint", metavar="ENDPOINT", help="namespace/name")
        p.add_argument("--image", help="new image, or :TAG for a new tag of the same repository")
        p = sub.add_parser("launch", help="start a training job", parents=parents)
        p.add_argument("--workers", type=_positive, required=True, metavar="W")
        p.add_argument("--gpus-per-worker", type=_positive, required=True, metavar="G")
        p.add_argument("--gpu-model", default="", metavar="M", help="H100, H200, A100, L4 (default: any)")
        p.add_argument("--zone", default="", metavar="Z", help="default: any, the whole gang in one")
        p.add_argument(
            "--name",
            type=_job_name,
            default=None,
            metavar="NS/NAME",
            help="default: default/train-<UTC time>",
        )
        p.add_argument(
            "--image", default=DEFAULT_TRAINING_IMAGE, metavar="I", help=f"default: {DEFAULT_TRAINING_IMAGE}"
        )
        p.add_argument("--priority", type=int, default=0, metavar="P")

    return add


def _make_plan(ops: Ops, args: argparse.Namespace) -> Plan:
    from aios_tui.sources.base import LaunchSpec

    match args.action:
        case "drain":
            return ops.plan_drain(
                args.nodes,
                allow_empty_dir=args.allow_empty_dir,
                allow_unmanaged=args.allow_unmanaged,
                pdb_timeout_s=args.pdb_timeout,
            )
        case "cordon" | "uncordon":
            return ops.plan_cordon(args.nodes, cordon=args.action == "cordon")
        case "scale":
            return ops.plan_scale(args.endpoint, args.replicas)
        case "scale-pool":
            return ops.plan_scale_pool(args.pool, args.desired)
        case "redeploy":
            return ops.plan_redeploy(args.endpoint, args.image)
        case "launch":
            namespace, name = args.name or _default_job_name()
            spec = LaunchSpec(
                namespace=namespace,
                name=name,
                image=args.image,
                workers=args.workers,
                gpus_per_worker=args.gpus_per_worker,
                gpu_model=args.gpu_model,
                zone=args.zone,
                priority=args.priority,
            )
            return ops.plan_launch(spec)
    raise AssertionError(f"unknown action {args.action!r}")  # argparse allows no other


def plan_to_json(plan: Plan) -> dict[str, Any]:
    """The plan as one JSON-ready object, with the structured drain plan or placement behind it."""
    from aios_tui.alloc.drain import DrainPlan
    from aios_tui.alloc.placement import Placement
    from aios_tui.alloc.pools import PoolScale
    from aios_tui.ops import LaunchPlan

    doc: dict[str, Any] = {
        "action": plan.action,
        "target": plan.target,
        "source": plan.source,
        "title": plan.title,
        "ok": plan.ok,
        "lines": [{"label": label, "value": value} for label, value in plan.lines],
        "warnings": list(plan.warnings),
        "blockers": list(plan.blockers),
        "confirm_phrase": plan.confirm_phrase,
        "params": _to_json(plan.params),
    }
    if isinstance(plan.detail, DrainPlan):
        doc["drain_plan"] = _to_json(plan.detail) | {"ok": plan.detail.ok}
    elif isinstance(plan.detail, LaunchPlan):
        doc["placement"] = _to_json(plan.detail.placement)
        doc["placed"] = isinstance(plan.detail.placement, Placement)
        doc["whatif"] = None if plan.detail.whatif is None else _to_json(plan.detail.whatif)
    elif isinstance(plan.detail, PoolScale):
        scale = plan.detail
        doc["pool_scale"] = {
            "pool": scale.pool.name,
            "from": scale.current,
            "desired": scale.new,
            "nodes_now": scale.nodes_now,
            "cost_delta_per_hour": _to_json(scale.cost_delta_per_hour),
            "added_zones": list(scale.added_zones),
            "unblocked": [j.key for j in scale.unblocked],
            "still_queued": scale.still_queued,
            "removed": [n.name for n in scale.removed],
            "pods_at_risk": [p.key for p in scale.at_risk],
            "gpus_at_risk": scale.gpus_at_risk,
            "jobs_restarting": list(scale.jobs_hit),
        }
    return doc


def write_plan(plan: Plan, out: TextIO) -> None:
    """The plan as a person reads it on the plan screen."""
    out.write(f"{plan.title}\n")
    width = max((len(label) for label, _ in plan.lines), default=0)
    for label, value in plan.lines:
        out.write(f"  {label.ljust(width)}  {value}\n")
    for warning in plan.warnings:
        out.write(f"  warning: {warning}\n")
    for blocker in plan.blockers:
        out.write(f"  cannot: {blocker}\n")
    if plan.confirm_phrase is not None:
        out.write(f"  confirm by typing: {plan.confirm_phrase}\n")


def _ask(plan: Plan, args: argparse.Namespace) -> str | None:
    """The confirmation to pass to ``execute``: from the flags, or typed on the terminal.

    Raises :class:`_Refusal` when the user declines or cannot be asked.
    """
    if args.yes:
        if plan.confirm_phrase is not None and args.confirm is None:
            raise _Refusal(f"this plan needs the phrase: add --confirm {plan.confirm_phrase!r} to --yes")
        return args.confirm
    if not sys.stdin.isatty():
        raise _Refusal("no terminal to confirm on: pass --yes (and --confirm PHRASE where the plan asks)")
    if plan.confirm_phrase is not None:
        sys.stderr.write(f"Type {plan.confirm_phrase!r} to confirm: ")
    else:
        sys.stderr.write("Proceed? [y/N] ")
    sys.stderr.flush()
    line = sys.stdin.readline()
    if not line:
        raise _Refusal("no answer: nothing was done")
    typed = line.strip()
    if plan.confirm_phrase is not None:
        return typed
    if typed.lower() not in ("y", "yes"):
        raise _Refusal("not confirmed: nothing was done")
    return None


class _Refusal(Exception):
    """The command stops before anything changes; the message says why (exit status 3)."""


def _progress(line: str) -> None:
    sys.stderr.write(f"  {line}\n")
    sys.stderr.flush()


def _result_json(result: ActionResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "message": result.message,
        "done": list(result.done),
        "not_done": list(result.not_done),
    }


def _write_result(result: ActionResult, out: TextIO) -> None:
    out.write(f"{result.message}\n")
    for step in result.done:
        out.write(f"  done: {step}\n")
    for step in result.not_done:
        out.write(f"  not done: {step}\n")


async def _plan_or_act(args: argparse.Namespace, settings: Settings, *, act: bool) -> int:
    from aios_tui.ops import ActionRefused, PermissionDenied, UnauditedAction
    from aios_tui.ops.audit import AuditError
    from aios_tui.poll import Poller

    poller = Poller(build_sources(settings), idle_window=settings.idle_window)
    try:
        await poller.refresh()
        ops = build_ops(settings, poller)
        try:
            plan = _make_plan(ops, args)
        except (ActionRefused, ValueError) as exc:
            print(f"aios-tui: {exc}", file=sys.stderr)
            return EXIT_CANNOT
        out = sys.stdout
        checked = await ops.dry_run_drain(plan)  # what the server would refuse now (Kubernetes dryRun=All)
        if not act:
            if args.json:
                doc = plan_to_json(plan)
                if checked:
                    doc["dry_run"] = list(checked)
                out.write(json.dumps(doc, ensure_ascii=False, allow_nan=False) + "\n")
            else:
                write_plan(plan, out)
                out.writelines(f"  {line}\n" for line in checked)
            out.flush()
            if not plan.ok:
                print(
                    f"aios-tui: cannot {plan.action} {plan.target}: {'; '.join(plan.blockers)}",
                    file=sys.stderr,
                )
                return EXIT_CANNOT
            return 0

        shown = sys.stderr if args.json else out
        write_plan(plan, shown)
        shown.writelines(f"  {line}\n" for line in checked)
        shown.flush()
        try:
            if not plan.ok:
                raise _Refusal(f"cannot {plan.action} {plan.target}: {'; '.join(plan.blockers)}")
            confirmation = _ask(plan, args)
            result = await ops.execute(plan, confirmation=confirmation, progress=_progress)
        except UnauditedAction as exc:
            result = exc.result
            print(f"aios-tui: {exc}", file=sys.stderr)
            code = EXIT_FAILED
        except (_Refusal, PermissionDenied, ActionRefused, AuditError) as exc:
            print(f"aios-tui: {exc}", file=sys.stderr)
            return EXIT_CANNOT
        else:
            code = 0 if result.ok else EXIT_FAILED
        if args.json:
            doc = {"plan": plan_to_json(plan), "result": _result_json(result)}
            out.write(json.dumps(doc, ensure_ascii=False, allow_nan=False) + "\n")
        else:
            _write_result(result, out)
        out.flush()
        if code:
            print(f"aios-tui: {result.message}", file=sys.stderr)
        return code
    finally:
        await poller.stop()  # closes the sources


def _run_plan(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_plan_or_act(args, settings, act=False))


def _run_act(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_plan_or_act(args, settings, act=True))


# --- the console ------------------------------------------------------------------------------------------


def build_ops(settings: Settings, poller: Poller) -> Ops:
    """The actions over ``poller``'s sources, as the settings say: role, user, read-only, audit file."""
    from aios_tui.ops import Actor, AuditLog, Ops, Role, default_audit_path

    role = Role(settings.role)
    return Ops(
        poller.sources,
        lambda: poller.snapshot,
        AuditLog(settings.audit_path or default_audit_path()),
        actor=Actor(settings.user, role) if settings.user else Actor.current(role),
        read_only=settings.read_only,
        after_action=poller.poke,
    )


def run_console(settings: Settings) -> int:
    """Build the sources, poller and actions, and run the Textual app until it quits."""
    from aios_tui.poll import Poller

    poller = Poller(build_sources(settings), idle_window=settings.idle_window)
    ops = build_ops(settings, poller)
    from aios_tui.ui.app import AiosApp  # textual loads here, and only here

    app = AiosApp(poller, ops, settings)
    app.run()
    return app.return_code or 0


# --- main -------------------------------------------------------------------------------------------------

COMMANDS: dict[str, Command] = {
    "snapshot": Command(
        help="print the fleet once and exit",
        add_arguments=_snapshot_arguments,
        run=_run_snapshot,
    ),
    "plan": Command(
        help="show what an action would do (drain, cordon, uncordon, scale, redeploy, launch)",
        add_arguments=_action_arguments(act=False),
        run=_run_plan,
    ),
    "act": Command(
        help="show an action's plan, confirm it, and carry it out",
        add_arguments=_action_arguments(act=True),
        run=_run_act,
    ),
}


class _OurLogHandler(logging.handlers.RotatingFileHandler):
    """Marks the handler this module installed, so that a second ``main()`` replaces it."""


def setup_logging(env: Mapping[str, str] | None = None) -> None:
    """Log to ``$XDG_STATE_HOME/aios-tui/aios-tui.log``, never to the terminal (the console owns it)."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OurLogHandler)]:
        root.removeHandler(handler)
        handler.close()
    path = default_log_path(env)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _OurLogHandler(path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        return  # a read-only home must not stop the console; logging is a help, not a duty
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(os.environ.get("AIOS_TUI_LOG_LEVEL", "INFO").upper())


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2: bad usage or settings, 130: interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error, or --help, or --version
        return e.code if isinstance(e.code, int) else EXIT_USAGE if e.code else 0
    try:
        settings = settings_from_args(args)
        command = COMMANDS.get(args.command) if args.command else None
        setup_logging()
        log.info("aios-tui %s: %s", _version(), args.command or "console")
        return command.run(args, settings) if command is not None else run_console(settings)
    except ConfigError as e:
        print(f"aios-tui: {e}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (``aios-tui snapshot | head``): not an error worth a traceback.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
