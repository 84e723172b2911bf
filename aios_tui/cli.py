"""The ``aios-tui`` command: flags → settings → sources → the console, or a headless subcommand.

``aios-tui`` opens the console; ``aios-tui snapshot [--json]`` prints the fleet once and exits. Global
options (``--config``, ``--sim``, ``--seed``, ``--sim-nodes``, ``--read-only``, ``--ascii``,
``--no-ascii``, ``--low-bandwidth``, ``--context``, ``--version``) are accepted before or after the
subcommand. Bad flags or settings print one line naming the flag or the file and key, and exit with status 2
before anything starts.

Textual is imported only when the console starts, so headless commands start fast.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import gc
import io
import json
import logging
import logging.handlers
import os
import signal
import sys
import time
import tomllib
import typing
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from aios_tui import __version__
from aios_tui.config import ConfigError, Override, Settings, default_log_path, load_settings, sim_only
from aios_tui.domain import FleetSnapshot
from aios_tui.sources import build_sources

if typing.TYPE_CHECKING:
    from aios_tui.ops import Ops, Plan
    from aios_tui.poll import Poller

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

log = logging.getLogger("aios_tui")

EXIT_NO_DATA = 1
"""``snapshot``: every source failed; what was printed holds no data (each source's error is on stderr)."""
EXIT_PARTIAL = 5
"""``snapshot``: some of the data is missing: a source failed or is partial (each says why on stderr)."""
SNAPSHOT_WAIT_S = 300.0
"""``snapshot --wait``'s default: how long it waits for first lists that are still coming in. A real
kube-apiserver serves a page of 500 pods in 0.2–0.28 s: 150,000 pods take 60–85 s."""
EXIT_USAGE = 2
EXIT_CANNOT = 3
"""The plan cannot be carried out (blockers, unknown target, refused, not confirmed)."""
EXIT_FAILED = 4
"""The action ran but did not finish: some steps were done, others not."""
EXIT_INTERRUPTED = 130


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
        "--ascii",
        action="store_true",
        default=s,
        help="draw with ASCII only (the default for TERM=linux, vt100, vt220, dumb or a non-UTF-8 locale)",
    )
    group.add_argument("--no-ascii", action="store_false", dest="ascii", default=s, help="draw with Unicode")
    group.add_argument(
        "--low-bandwidth",
        action="store_true",
        default=s,
        help="for a slow link: repaint the panes at most every 10 s (ctrl+r: now), the clock in minutes",
    )
    group.add_argument(
        "--context",
        metavar="NAME",
        action="append",
        dest="context_after" if after else "context",
        default=s,
        help="kubeconfig context to watch (repeat it or separate with commas); turns Kubernetes on",
    )
    group.add_argument("--version", action="version", version=f"aios-tui {__version__}")
    return parent


@dataclass(frozen=True, slots=True)
class Command:
    """A headless subcommand: its help line, its own arguments, and what it runs."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Settings], int]


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The command line's parser; given the ``argv`` it will parse, it fills in only the subcommand named
    there (each action's ``plan``/``act`` arguments cost the console's start 11 ms)."""
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
        if argv is None or name in argv:
            command.add_arguments(p)
    return parser


def settings_from_args(args: argparse.Namespace, env: Mapping[str, str] | None = None) -> Settings:
    """Load the settings with the global flags on top (raises ConfigError). ``ascii`` comes from
    ``--ascii``/``--no-ascii``, else the file or ``AIOS_TUI_ASCII``, else :func:`ascii_terminal`."""
    env = os.environ if env is None else env
    overrides = []
    if hasattr(args, "ascii"):
        overrides.append(Override("ascii", args.ascii, "--ascii" if args.ascii else "--no-ascii"))
    if hasattr(args, "seed"):
        overrides.append(Override("sim.seed", args.seed, "--seed"))
    if hasattr(args, "sim_nodes"):
        overrides.append(Override("sim.nodes", args.sim_nodes, "--sim-nodes"))
    if getattr(args, "read_only", False):
        overrides.append(Override("read_only", True, "--read-only"))
    if getattr(args, "low_bandwidth", False):
        overrides.append(Override("low_bandwidth", True, "--low-bandwidth"))
    contexts = [*getattr(args, "context", ()), *getattr(args, "context_after", ())]
    if contexts:
        overrides.append(Override("kubernetes.contexts", ",".join(contexts), "--context"))
        overrides.append(Override("kubernetes.enabled", True, "--context"))
    settings = load_settings(getattr(args, "config", None), env=env, overrides=overrides)
    if not hasattr(args, "ascii") and not _ascii_is_set(settings, env):
        settings = dataclasses.replace(settings, ascii=ascii_terminal(env))
    return sim_only(settings) if getattr(args, "sim", False) else settings


_ASCII_TERMS = frozenset({"linux", "vt100", "vt102", "vt220", "dumb"})


def ascii_terminal(env: Mapping[str, str]) -> bool:
    """Whether the terminal these variables describe should get ASCII only: the Linux console and the old
    VT terminals have no braille, blocks or rounded corners, and a locale that is not UTF-8 (``LANG=C``,
    ``LC_ALL=en_US.ISO-8859-1``) cannot show them. With no locale variable at all the locale is unknown (a
    bare ``ssh`` or container often sets none on a UTF-8 terminal), so Unicode stays."""
    if env.get("TERM", "").lower() in _ASCII_TERMS:
        return True
    # The first of these that is set and not empty is the character set in force (POSIX's order).
    ctype = next((env[k] for k in ("LC_ALL", "LC_CTYPE", "LANG") if env.get(k)), "")
    return bool(ctype) and not ctype.lower().replace("-", "").endswith(("utf8", "utf8@euro"))


def _ascii_is_set(settings: Settings, env: Mapping[str, str]) -> bool:
    """Whether ``ascii`` was chosen in the settings file or ``AIOS_TUI_ASCII``: it then wins over the
    detection. The file has been read once already; reading its top level again is cheaper than teaching
    the loader to tell a default from a value."""
    if env.get("AIOS_TUI_ASCII"):
        return True
    if settings.config_file is None:
        return False
    try:
        with settings.config_file.open("rb") as f:
            return "ascii" in tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError):
        return False


# --- snapshot ---------------------------------------------------------------------------------------------


def make_poller(settings: Settings) -> Poller:
    """The poller over the sources the settings name, with their idle window, node prices and endpoint
    objectives."""
    from aios_tui.alloc.prices import PriceRule
    from aios_tui.alloc.slo import SloRule
    from aios_tui.poll import Poller

    rules = [PriceRule(r.price, r.node, r.label, r.instance_type) for r in settings.prices]
    slos = [SloRule(r.p99_ms, r.error_rate, r.name, r.namespace) for r in settings.slo]
    return Poller(build_sources(settings), idle_window=settings.idle_window, prices=rules, slos=slos)


async def _fetch_once(settings: Settings, wait: float = 0.0) -> FleetSnapshot:
    """One refresh of every source, then more while a source is still loading (a big cluster's first
    list, page by page), for up to ``wait`` seconds."""
    poller = make_poller(settings)
    try:
        snap = await poller.refresh()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + wait
        while loop.time() < deadline and any(getattr(s, "loading", False) for s in poller.sources.values()):
            await asyncio.sleep(0.1)  # each Kubernetes fetch waits for its lists on its own
            snap = await poller.refresh()
        return snap
    finally:
        await poller.stop()  # closes the sources


def _snapshot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    parser.add_argument(
        "--wait",
        type=float,
        default=SNAPSHOT_WAIT_S,
        metavar="SECONDS",
        help=f"wait up to this long for a cluster's first lists while pages keep coming "
        f"(default {SNAPSHOT_WAIT_S:g}); then print what came, exit {EXIT_PARTIAL}",
    )


def _run_snapshot(args: argparse.Namespace, settings: Settings) -> int:
    from aios_tui.render.jsonout import snapshot_to_json
    from aios_tui.render.text import write_summary

    started = time.perf_counter()
    snap = asyncio.run(_fetch_once(settings, max(0.0, args.wait)))
    log.info("snapshot of %d nodes in %.3fs", len(snap.nodes), time.perf_counter() - started)
    if args.json:
        # dumps then one write: json.dump() writes piece by piece and is ten times slower here.
        sys.stdout.write(json.dumps(snapshot_to_json(snap), separators=(",", ":"), allow_nan=False) + "\n")
    else:
        write_summary(snap, sys.stdout)
    sys.stdout.flush()
    from aios_tui.domain import SourceState

    failed = [s for s in snap.sources if s.state in (SourceState.ERROR, SourceState.STALE)]
    partial = [s for s in snap.sources if s.state is SourceState.PARTIAL]
    for s in failed:
        print(f"aios-tui: source {s.name} failed: {s.error}", file=sys.stderr)
    for s in partial:
        print(f"aios-tui: source {s.name} is partial: {s.error}", file=sys.stderr)
    if snap.sources and all(s.state is SourceState.ERROR for s in snap.sources):
        return EXIT_NO_DATA
    return EXIT_PARTIAL if failed or partial else 0


# --- plan and act -----------------------------------------------------------------------------------------
# ``plan ACTION …`` prints what an action would do; ``act ACTION …`` shows the same plan, asks for
# confirmation, runs it with progress and reports what was done and what was not. Both are made from the
# action registry (aios_tui.ops): the same arguments, grammar and defaults as the console's ``:`` commands
# and plan screens, over one refresh of every source.


def _action_arguments(act: bool) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        from aios_tui.ops import all_actions
        from aios_tui.ops.argv import add_arguments

        parent = _global_options(after=True)
        common = argparse.ArgumentParser(add_help=False)
        common.add_argument("--json", action="store_true", help="print JSON instead of text")
        if act:
            common.add_argument("--yes", action="store_true", help="do not ask for confirmation")
            common.add_argument(
                "--confirm", metavar="PHRASE", help="the phrase a protected plan asks for (with --yes)"
            )
        sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
        for action in all_actions():
            roles = f"Needs role {action.min_role}"
            if action.min_role_many:
                roles += f" ({action.min_role_many} for several at once)"
            if action.min_role_shrink:
                roles += f" ({action.min_role_shrink} to shrink)"
            p = sub.add_parser(
                action.name,
                aliases=list(action.aliases),
                help=action.summary,
                description=f"{action.summary[0].upper()}{action.summary[1:]}. {roles}.",
                parents=[parent, common],
            )
            add_arguments(p, action)

    return add


async def _read_line(stream: TextIO) -> str:
    """One line from ``stream`` without blocking the event loop, so that Ctrl-C (which cancels the main
    task) stops the prompt at once instead of after Enter. A stream with no file descriptor is read as is."""
    try:
        fd = stream.fileno()
    except (OSError, ValueError, io.UnsupportedOperation):
        return stream.readline()
    loop = asyncio.get_running_loop()
    done: asyncio.Future[str] = loop.create_future()
    buffer = bytearray()

    def readable() -> None:
        data = os.read(fd, 4096)
        buffer.extend(data)
        if (not data or b"\n" in buffer) and not done.done():
            done.set_result(buffer.decode(errors="replace"))

    loop.add_reader(fd, readable)
    try:
        return await done
    finally:
        loop.remove_reader(fd)


async def _ask(plan: Plan[Any], args: argparse.Namespace) -> str | None:
    """The confirmation to pass to ``execute``: from the flags, or typed on the terminal.

    Raises :class:`_Refusal` when the user declines or cannot be asked.
    """
    if args.yes:
        if plan.confirm_phrase is not None and args.confirm is None:
            raise _Refusal(f"this plan needs the phrase: add --confirm {plan.confirm_phrase!r} to --yes")
        return str(args.confirm) if args.confirm is not None else None
    if not sys.stdin.isatty():
        raise _Refusal("no terminal to confirm on: pass --yes (and --confirm PHRASE where the plan asks)")
    if plan.confirm_phrase is not None:
        sys.stderr.write(f"Type {plan.confirm_phrase!r} to confirm (Ctrl-C cancels): ")
    else:
        sys.stderr.write("Proceed? [y/N] ")
    sys.stderr.flush()
    line = await _read_line(sys.stdin)
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


def _note_unfinished(ops: Ops) -> None:
    """Actions a killed console left half done, said once on stderr (and closed in the audit log)."""
    for sentence in ops.unfinished():
        print(f"aios-tui: note: {sentence}", file=sys.stderr)


async def _plan_or_act(args: argparse.Namespace, settings: Settings, *, act: bool) -> int:
    from aios_tui.ops import ActionRefused, ArgError, AuditError, PermissionDenied, UnauditedAction, get
    from aios_tui.render.jsonout import plan_to_json, result_to_json
    from aios_tui.render.text import write_plan, write_result

    action = get(args.action)
    raw = {p.name: getattr(args, p.name, None) for p in action.params}
    poller = make_poller(settings)
    try:
        await poller.refresh()
        ops = build_ops(settings, poller)
        if act:
            await asyncio.to_thread(_note_unfinished, ops)
        await ops.settle(action.name, **raw)  # the access reviews' answer, not "checking permissions…"
        try:
            plan = ops.plan(action.name, **raw)
        except ArgError as exc:
            print(f"aios-tui {'act' if act else 'plan'} {action.name}: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except ActionRefused as exc:
            if act:
                given = [raw.get(p.name) for p in action.params if p.is_target]
                target = " ".join(" ".join(v) if isinstance(v, list) else str(v) for v in given if v)
                await asyncio.to_thread(ops.refuse_request, action.name, target, str(exc))
            print(f"aios-tui: {exc}", file=sys.stderr)
            return EXIT_CANNOT
        out = sys.stdout
        checked = await ops.verify(plan) if plan.ok else ()
        if not act:
            if args.json:
                doc = plan_to_json(plan, ops.detail_json(plan))
                if checked:
                    doc["dry_run"] = list(checked)
                out.write(json.dumps(doc, ensure_ascii=False, allow_nan=False) + "\n")
            else:
                write_plan(plan, out, checked=checked)
            out.flush()
            if not plan.ok:
                print(
                    f"aios-tui: cannot {plan.action} {plan.target}: {'; '.join(plan.blockers)}",
                    file=sys.stderr,
                )
                return EXIT_CANNOT
            return 0

        shown = sys.stderr if args.json else out
        write_plan(plan, shown, checked=checked)
        shown.flush()
        try:
            if not plan.ok:
                raise _Refusal(f"cannot {plan.action} {plan.target}: {'; '.join(plan.blockers)}")
            try:
                confirmation = await _ask(plan, args)
            except asyncio.CancelledError:
                sys.stderr.write("\n")
                await asyncio.to_thread(ops.refuse, plan, "interrupted at the confirmation prompt")
                raise
            result = await ops.execute(plan, confirmation=confirmation, progress=_progress)
        except UnauditedAction as exc:
            result = exc.result
            print(f"aios-tui: {exc}", file=sys.stderr)
            code = EXIT_FAILED
        except _Refusal as exc:
            await asyncio.to_thread(ops.refuse, plan, str(exc))
            print(f"aios-tui: {exc}", file=sys.stderr)
            return EXIT_CANNOT
        except (PermissionDenied, ActionRefused, AuditError) as exc:  # execute audited the refusal
            print(f"aios-tui: {exc}", file=sys.stderr)
            return EXIT_CANNOT
        else:
            code = 0 if result.ok else EXIT_FAILED
        if args.json:
            doc = {"plan": plan_to_json(plan, ops.detail_json(plan)), "result": result_to_json(result)}
            out.write(json.dumps(doc, ensure_ascii=False, allow_nan=False) + "\n")
        else:
            write_result(result, out)
        out.flush()
        if code:
            print(f"aios-tui: {result.message}", file=sys.stderr)
        return code
    finally:
        await poller.stop()  # closes the sources


async def _until_signalled(work: Awaitable[int]) -> int:
    """Run ``work``; SIGTERM or SIGHUP (a closed SSH session) cancel it as Ctrl-C does, so that a running
    action stops after auditing what it did. Returns 128 + the signal's number then."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    caught: list[int] = []

    def stop(signum: int) -> None:
        caught.append(signum)
        task.cancel()

    for signum in (signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stop, signum)
    try:
        return await work
    except asyncio.CancelledError:
        if caught:
            task.uncancel()
            return 128 + caught[0]
        raise
    finally:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.remove_signal_handler(signum)


def _run_plan(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_plan_or_act(args, settings, act=False))


def _run_act(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_until_signalled(_plan_or_act(args, settings, act=True)))


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
    """Build the sources, poller and actions, and run the Textual app until it quits.

    Python's cyclic collector is off until the first snapshot is on screen (the app freezes what exists
    then and turns it back on): what startup builds lives for the whole run, and the full collections it
    triggered while a 5,000-node fleet was laid out cost ~200 ms of the first fetch. The same pattern as
    ``gc.freeze``'s documentation recommends before a fork; the price is that a reference cycle dropped
    during startup is never collected. From then on its youngest generation is collected less often
    (:data:`aios_tui.ui.app.YOUNG_COLLECTION`)."""
    gc.disable()
    poller = make_poller(settings)
    ops = build_ops(settings, poller)
    from aios_tui.ui.app import AiosApp  # textual loads here, and only here

    app = AiosApp(poller, ops, settings)
    app.run()
    return app.return_code or 0


# --- serve ------------------------------------------------------------------------------------------------


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--listen", metavar="HOST", help="address to listen on (default: [serve] listen)")
    parser.add_argument("--port", metavar="N", help="TCP port, 0 for any free one (default: [serve] port)")
    parser.add_argument(
        "--authorized-keys", metavar="PATH", help="who may log in (default: [serve] authorized_keys)"
    )
    parser.add_argument(
        "--host-key", metavar="PATH", help="the server's host key (default: [serve] host_key)"
    )


def _serve_settings(args: argparse.Namespace, settings: Settings) -> Settings:
    """``[serve]`` with the subcommand's flags on top."""
    serve = settings.serve
    changes: dict[str, Any] = {}
    if args.listen is not None:
        if not args.listen.strip():
            raise ConfigError(None, "--listen", "an address", args.listen)
        changes["listen"] = args.listen.strip()
    if args.port is not None:
        try:
            port = int(args.port)
        except ValueError:
            port = -1
        if not 0 <= port <= 65535:
            raise ConfigError(None, "--port", "an integer from 0 to 65535", args.port)
        changes["port"] = port
    for flag, key in (("authorized_keys", "authorized_keys"), ("host_key", "host_key")):
        value = getattr(args, flag)
        if value is not None:
            changes[key] = Path(value).expanduser()
    return dataclasses.replace(settings, serve=dataclasses.replace(serve, **changes)) if changes else settings


async def _serve(settings: Settings, ascii_fixed: bool, out: TextIO) -> int:
    from aios_tui.ui.serve import (
        ConsoleServer,
        default_authorized_keys_path,
        default_host_key_path,
        load_host_key,
        read_authorized_keys,
    )

    keys_path = settings.serve.authorized_keys or default_authorized_keys_path()
    members = read_authorized_keys(keys_path)
    host_key = load_host_key(settings.serve.host_key or default_host_key_path())
    poller = make_poller(settings)
    # The server's own actor audits what a backend does on its own; each session acts as its key's member.
    server_ops = build_ops(settings, poller)
    server = ConsoleServer(
        settings,
        poller,
        members,
        host_key,
        audit=server_ops.audit,
        ascii_for=None if ascii_fixed else (lambda term: ascii_terminal({"TERM": term})),
        authorized_keys_path=keys_path,
    )
    try:
        await server.start()
    except OSError as exc:
        await poller.stop()
        print(
            f"aios-tui serve: cannot listen on {settings.serve.listen}:{settings.serve.port}: {exc}",
            file=sys.stderr,
        )
        return EXIT_CANNOT
    names = sorted({m.name for m in members.values()})
    keys = f"{len(members)} key{'s' if len(members) != 1 else ''}"
    out.write(
        f"aios-tui serve: listening on {settings.serve.listen} port {server.port}, host key "
        f"{host_key.get_fingerprint('sha256')}; {keys} ({', '.join(names)}) from {keys_path}\n"
    )
    out.flush()
    log.info("serve: listening on %s:%d for %s", settings.serve.listen, server.port, ", ".join(names))
    try:
        await asyncio.Event().wait()  # until cancelled: Ctrl-C, SIGTERM, SIGHUP
    finally:
        await server.close()
    return 0  # pragma: no cover - only a cancellation ends the wait


def _run_serve(args: argparse.Namespace, settings: Settings) -> int:
    settings = _serve_settings(args, settings)
    ascii_fixed = hasattr(args, "ascii") or _ascii_is_set(settings, os.environ)
    handler = logging.StreamHandler(sys.stderr)  # kept: Textual swaps sys.stderr while a console runs
    handler.setFormatter(_CleanFormatter("%(asctime)s %(levelname)s %(message)s"))
    handler.setLevel(logging.INFO)
    logging.getLogger("aios_tui.serve").addHandler(handler)
    if logging.getLogger().level > logging.INFO:
        logging.getLogger("aios_tui.serve").setLevel(logging.INFO)
    stdout = sys.stdout
    return asyncio.run(_until_signalled(_serve(settings, ascii_fixed, stdout)))


# --- main -------------------------------------------------------------------------------------------------

COMMANDS: dict[str, Command] = {
    "snapshot": Command(
        help="print the fleet once and exit",
        add_arguments=_snapshot_arguments,
        run=_run_snapshot,
    ),
    "plan": Command(
        help="show what an action would do, changing nothing (plan ACTION --help for each)",
        add_arguments=_action_arguments(act=False),
        run=_run_plan,
    ),
    "act": Command(
        help="show an action's plan, confirm it, carry it out and audit it",
        add_arguments=_action_arguments(act=True),
        run=_run_act,
    ),
    "serve": Command(
        help="serve the console over SSH: roles from the authorized keys, one poller for every session",
        add_arguments=_serve_arguments,
        run=_run_serve,
    ),
}


class _CleanFormatter(logging.Formatter):
    """Every record as written, its traceback included, with credentials masked (a failing AWS
    ``credential_process`` puts its token in the exception's text) and terminal escapes removed (remote
    text reaches the log too, and the log is read in a terminal)."""

    def format(self, record: logging.LogRecord) -> str:
        from aios_tui.domain.errors import redact
        from aios_tui.domain.text import clean_lines

        return clean_lines(redact(super().format(record)), limit=65_536)


class _OurLogHandler(logging.handlers.RotatingFileHandler):
    """Marks the handler this module installed, so that a second ``main()`` replaces it; opens its files
    ``0600``: a log may name hosts, nodes and errors nobody else on the machine should read."""

    def _open(self) -> Any:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        os.fchmod(fd, 0o600)  # a file an older version created 0644
        return os.fdopen(fd, self.mode, encoding=self.encoding, errors=self.errors)


def setup_logging(env: Mapping[str, str] | None = None) -> None:
    """Log to ``$XDG_STATE_HOME/aios-tui/aios-tui.log`` (``0600`` in a ``0700`` directory), never to the
    terminal (the console owns it). ``AIOS_TUI_LOG_LEVEL`` sets the level; a bad one is a ConfigError."""
    from aios_tui.ops.audit import private_dir

    environ = os.environ if env is None else env
    level = environ.get("AIOS_TUI_LOG_LEVEL", "INFO").strip().upper()
    if level not in logging.getLevelNamesMapping() or level == "NOTSET":
        raise ConfigError(
            "environment",
            "AIOS_TUI_LOG_LEVEL",
            "DEBUG, INFO, WARNING, ERROR or CRITICAL",
            environ.get("AIOS_TUI_LOG_LEVEL", ""),
        )
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _OurLogHandler)]:
        root.removeHandler(handler)
        handler.close()
    path = default_log_path(env)
    try:
        private_dir(path.parent)
        handler = _OurLogHandler(path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        return  # a read-only home must not stop the console; logging is a help, not a duty
    handler.setFormatter(_CleanFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2: bad usage or settings, 130: interrupted)."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(argv)
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse has printed the usage error, or --help, or --version
        return e.code if isinstance(e.code, int) else EXIT_USAGE if e.code else 0
    try:
        settings = settings_from_args(args)
        command = COMMANDS.get(args.command) if args.command else None
        setup_logging()
        log.info("aios-tui %s: %s", __version__, args.command or "console")
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
