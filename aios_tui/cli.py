"""The ``aios-tui`` command: flags → settings → sources → the console, or a headless subcommand.

``aios-tui`` opens the console; ``aios-tui snapshot [--json]`` prints the fleet once and exits. Global
options (``--config``, ``--sim``, ``--seed``, ``--sim-nodes``, ``--read-only``, ``--version``) are accepted
before or after the subcommand. Bad flags or settings print one line naming the flag or the file and key,
and exit with status 2 before anything starts.

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

if typing.TYPE_CHECKING:
    from aios_tui.sources.base import Source

__all__ = ["COMMANDS", "Command", "build_parser", "main", "snapshot_to_json"]

log = logging.getLogger("aios_tui")

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("aios-tui")
    except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
        return "unknown"


# --- arguments --------------------------------------------------------------------------------------------


def _global_options() -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand.

    Their default is SUPPRESS, so a value given on one side is not overwritten by the other's default.
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
    for name, command in COMMANDS.items():
        p = sub.add_parser(name, help=command.help, description=command.help, parents=[parent])
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
    settings = load_settings(getattr(args, "config", None), overrides=overrides)
    return sim_only(settings) if getattr(args, "sim", False) else settings


# --- snapshot ---------------------------------------------------------------------------------------------


async def _fetch_once(sources: Sequence[Source]) -> FleetSnapshot:
    from aios_tui.poll import Poller

    poller = Poller(sources)
    try:
        return await poller.refresh()
    finally:
        await poller.stop()  # closes the sources


def _snapshot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")


def _run_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    sources = build_sources(settings)
    started = time.perf_counter()
    snap = asyncio.run(_fetch_once(sources))
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
    """The snapshot as one JSON-ready object: each element its dataclass's fields, NA as None."""
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


# --- the console ------------------------------------------------------------------------------------------


def run_console(settings: Settings) -> int:
    """Build the sources, poller and actions, and run the Textual app until it quits."""
    from aios_tui.ops import Actor, AuditLog, Ops, Role, default_audit_path
    from aios_tui.poll import Poller

    sources = build_sources(settings)
    poller = Poller(sources)
    role = Role(settings.role)
    ops = Ops(
        {s.name: s for s in sources},
        lambda: poller.snapshot,
        AuditLog(settings.audit_path or default_audit_path()),
        actor=Actor(settings.user, role) if settings.user else Actor.current(role),
        read_only=settings.read_only,
        after_action=poller.poke,
    )
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
