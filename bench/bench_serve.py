"""``aios-tui serve``: memory and CPU per session, and the poller's source load, with 1, 10 and 20 sessions,
against 20 separate consoles measured in the same run (issue 17).

    .venv/bin/python bench/bench_serve.py [--sessions 1 10 20] [--consoles 20] [--nodes 200]
                                          [--window 15] [--windows 3] [--key-every 2]
                                          [--gc-time] [--server-young N]

The server is the real command, ``aios-tui serve --sim --sim-nodes N --port 0``, in a child process (so its
RSS and CPU are its own), with a throwaway host key, authorized-keys file and XDG directories. The clients
are asyncssh connections in this process, each with a PTY of 120×40 (xterm-256color), each reading its
stream all along and pressing a pane key (``2``, ``3``, ``4``, ``1`` in turn) every ``--key-every`` seconds,
the sessions' presses spread evenly over that period, so that every console keeps rendering.

Levels: the server alone (no session: its idle RSS and CPU, the poller on its own), then sessions added to
reach each of ``--sessions``. At each level, once every new session shows the fleet (the header's
``Nodes <ready>/<total>``) and after ``--settle`` seconds, ``--windows`` windows of ``--window`` seconds:

- server RSS (VmRSS at each window's end) and its rise above the idle level; per session = rise ÷ N;
- server CPU (utime + stime from /proc/PID/stat, all threads) over the window, % of one core;
- bytes the sessions' streams carried (SSH channel data, before encryption), per session per second;
- fetches of the embedded fleet, summed over the windows: the poller's load on its source;
- with ``--gc-time``, the seconds the process spent in Python's cyclic collector (``gc.callbacks``).

Baseline, after the server has been stopped: ``--consoles`` separate ``aios-tui --sim --sim-nodes N`` under
their own pseudo-terminals of 120×40, each on its own poller, read and sent the same keys on the same
schedule: total RSS, total PSS (``/proc/PID/smaps_rollup``: the shared interpreter and library pages
counted once), total CPU, fetches. With fewer than 20 consoles the totals are scaled to 20 (said so).

Fetches are counted, not inferred: every child process (server and consoles) runs the real command line
(``aios_tui.cli.main``) under a small wrapper (``python -c``) that counts each call of ``SimSource.fetch`` by
appending a byte to a file of its own; the bench reads the files' sizes. No application code is changed.
``--server-young N`` has the wrapper set the server's youngest-generation GC threshold (a probe: the server
leaves Python's default, a console of its own uses 10,000 once it shows data).

Figures are medians over the windows; the bench's own CPU (the SSH clients: decryption, reading) is printed
beside the server's, since on a small machine the two share the cores. The load average is printed before
and after: compare within a run, not across runs.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import re
import resource
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
from _util import _ESCAPES, _HEADER_WITH_DATA, _cpu_seconds, _rss_mb, compile_app, machine

from aios_tui.ui.serve import load_host_key

SIZE = (120, 40)
KEYS = (b"2", b"3", b"4", b"1")
ROLES = ("viewer", "operator")

# Runs the real command line with each SimSource.fetch counted: one byte appended to $AIOS_BENCH_FETCHES.
# With $AIOS_BENCH_GC, the seconds spent in the cyclic collector are written to that file every 0.5 s; with
# $AIOS_BENCH_YOUNG, the youngest generation's threshold is set to it (the server only: the console sets its
# own once it shows data).
WRAPPER = """
import gc, os, sys, threading, time
from aios_tui.sources.sim import SimSource
fd = os.open(os.environ["AIOS_BENCH_FETCHES"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
fetch = SimSource.fetch
async def counted(self):
    os.write(fd, b".")
    return await fetch(self)
SimSource.fetch = counted
if os.environ.get("AIOS_BENCH_GC"):
    spent = [0.0, 0.0]
    def on_gc(phase, info):
        if phase == "start":
            spent[1] = time.perf_counter()
        else:
            spent[0] += time.perf_counter() - spent[1]
    gc.callbacks.append(on_gc)
    def dump(path=os.environ["AIOS_BENCH_GC"]):
        while True:
            time.sleep(0.5)
            with open(path + ".new", "w") as f:
                f.write(repr(spent[0]))
            os.replace(path + ".new", path)
    threading.Thread(target=dump, daemon=True).start()
if os.environ.get("AIOS_BENCH_YOUNG"):
    gc.set_threshold(int(os.environ["AIOS_BENCH_YOUNG"]), *gc.get_threshold()[1:])
from aios_tui.cli import main
sys.exit(main())
"""


def _pss_mb(pid: int) -> float:
    with Path(f"/proc/{pid}/smaps_rollup").open(encoding="ascii") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no Pss for pid {pid}")


def _own_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text(encoding="ascii").split()[:3])


def _env(home: Path, args: argparse.Namespace, young: int = 0) -> dict[str, str]:
    env = dict(
        os.environ,
        TERM="xterm-256color",
        COLUMNS=str(SIZE[0]),
        LINES=str(SIZE[1]),
        XDG_CONFIG_HOME=str(home / "config"),  # no config file: the defaults, i.e. the embedded fleet
        XDG_STATE_HOME=str(home / "state"),  # host key, log and audit stay out of the user's directories
        AIOS_TUI_AUDIT_PATH=str(home / "audit.jsonl"),
        AIOS_BENCH_FETCHES=str(home / "fetches"),
    )
    env.pop("NO_COLOR", None)
    if args.gc_time:
        env["AIOS_BENCH_GC"] = str(home / "gc")
    if young:
        env["AIOS_BENCH_YOUNG"] = str(young)
    return env


def _gc_seconds(path: Path) -> float:
    try:
        return float(path.read_text(encoding="ascii") or 0)
    except FileNotFoundError:
        return 0.0


def _fetches(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


# --- what a terminal receives -----------------------------------------------------------------------------


class Stream:
    """One terminal's output, counted; ``ready`` once it shows the fleet (``Nodes <ready>/<total>``)."""

    def __init__(self) -> None:
        self.nbytes = 0
        self.ready = asyncio.Event()
        self._tail = bytearray()

    def got(self, chunk: bytes) -> None:
        self.nbytes += len(chunk)
        if self.ready.is_set():
            return
        self._tail += chunk
        if _HEADER_WITH_DATA.search(_ESCAPES.sub(b"", bytes(self._tail))):
            self.ready.set()
            self._tail.clear()
        elif len(self._tail) > 1 << 18:
            del self._tail[: len(self._tail) - (1 << 16)]

    def press(self, key: bytes) -> None:
        raise NotImplementedError


class SshStream(Stream):
    def __init__(self, conn: asyncssh.SSHClientConnection, proc: asyncssh.SSHClientProcess[bytes]) -> None:
        super().__init__()
        self.conn = conn
        self.proc = proc
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        while chunk := await self.proc.stdout.read(65536):
            self.got(chunk)

    def press(self, key: bytes) -> None:
        self.proc.stdin.write(key)

    async def close(self) -> None:
        self.proc.close()
        self.conn.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.conn.wait_closed(), 5)
        self._reader.cancel()


class PtyStream(Stream):
    """A console process on a pseudo-terminal of ``SIZE``; its output read as a terminal would."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        super().__init__()
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
        self.master = master
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
        )
        os.close(slave)
        asyncio.get_running_loop().add_reader(master, self._readable)

    def _readable(self) -> None:
        try:
            chunk = os.read(self.master, 1 << 16)
        except OSError:  # the process closed the terminal
            chunk = b""
        if not chunk:
            asyncio.get_running_loop().remove_reader(self.master)
            return
        self.got(chunk)

    def press(self, key: bytes) -> None:
        with contextlib.suppress(OSError):
            os.write(self.master, key)


async def _stop_consoles(streams: Sequence[PtyStream]) -> None:
    """``q`` to each; terminate, then kill, those still running after 5 s."""
    for s in streams:
        s.press(b"q")
    for _ in range(50):  # 5 s
        if all(s.proc.poll() is not None for s in streams):
            break
        await asyncio.sleep(0.1)
    for s in streams:
        if s.proc.poll() is None:
            s.proc.terminate()
            try:
                s.proc.wait(3.0)
            except subprocess.TimeoutExpired:
                s.proc.kill()
                s.proc.wait()
        asyncio.get_running_loop().remove_reader(s.master)
        os.close(s.master)


async def _press_keys(streams: Sequence[Stream], every: float) -> None:
    """Each stream gets a pane key every ``every`` seconds, the streams' presses spread over that period."""
    i = 0
    while True:
        n = len(streams)
        await asyncio.sleep(every / max(n, 1))
        if n:
            streams[i % n].press(KEYS[(i // n) % len(KEYS)])
            i += 1


# --- measuring --------------------------------------------------------------------------------------------


@dataclass
class Window:
    cpu_pct: float
    """Of the measured processes together, % of one core."""
    rss_mb: float
    pss_mb: float
    fetches: int
    bytes_per_s: float
    """Per stream."""
    client_cpu_pct: float
    """This process (the SSH clients, the pty readers), % of one core."""
    gc_pct: float
    """In the measured processes' cyclic collectors, % of one core (0 without ``--gc-time``)."""


async def _windows(
    pids: Sequence[int], homes: Sequence[Path], streams: Sequence[Stream], count: int, seconds: float
) -> list[Window]:
    """``count`` windows of ``seconds`` over the processes ``pids`` (their files in ``homes``)."""
    out = []
    for _ in range(count):
        t0, cpu0, own0 = time.monotonic(), sum(_cpu_seconds(p) for p in pids), _own_cpu()
        f0, b0 = sum(_fetches(h / "fetches") for h in homes), sum(s.nbytes for s in streams)
        gc0 = sum(_gc_seconds(h / "gc") for h in homes)
        await asyncio.sleep(seconds)
        wall = time.monotonic() - t0
        cpu, own = sum(_cpu_seconds(p) for p in pids) - cpu0, _own_cpu() - own0
        fetched = sum(_fetches(h / "fetches") for h in homes) - f0
        sent = sum(s.nbytes for s in streams) - b0
        collected = sum(_gc_seconds(h / "gc") for h in homes) - gc0
        out.append(
            Window(
                cpu_pct=100.0 * cpu / wall,
                rss_mb=sum(_rss_mb(p) for p in pids),
                pss_mb=sum(_pss_mb(p) for p in pids),
                fetches=fetched,
                bytes_per_s=sent / wall / max(len(streams), 1),
                client_cpu_pct=100.0 * own / wall,
                gc_pct=100.0 * collected / wall,
            )
        )
    return out


def _med(windows: Sequence[Window], what: Callable[[Window], float]) -> float:
    return statistics.median(what(w) for w in windows)


def _span(windows: Sequence[Window], what: Callable[[Window], float], fmt: str) -> str:
    values = [what(w) for w in windows]
    if len(values) == 1:
        return format(values[0], fmt)
    return f"{format(statistics.median(values), fmt)} ({format(min(values), fmt)}–{format(max(values), fmt)})"


async def _wait_ready(streams: Sequence[Stream], within: float, what: str) -> None:
    try:
        await asyncio.wait_for(asyncio.gather(*(s.ready.wait() for s in streams)), within)
    except TimeoutError:
        ready = sum(s.ready.is_set() for s in streams)
        said = f"{what}: only {ready} of {len(streams)} showed the fleet within {within:g} s"
        raise SystemExit(said) from None


# --- the server -------------------------------------------------------------------------------------------


async def bench_server(
    args: argparse.Namespace, tmp: Path
) -> tuple[list[Window], dict[int, list[Window]], dict[int, float]]:
    """Idle windows, then windows at each session count; and the seconds each level took to show data."""
    home = tmp / "server"
    (home / "config").mkdir(parents=True)
    keys = [asyncssh.generate_private_key("ssh-ed25519") for _ in ROLES]
    lines = [
        f'name="{role}-key",role="{role}" {key.export_public_key().decode().strip()}'
        for role, key in zip(ROLES, keys, strict=True)
    ]
    authorized = home / "authorized_keys"
    authorized.write_text("\n".join(lines) + "\n", encoding="utf-8")
    log = (home / "serve.log").open("wb")
    argv = ["serve", "--sim", "--sim-nodes", str(args.nodes), "--seed", "0", "--port", "0"]
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        WRAPPER,
        *argv,
        "--authorized-keys",
        str(authorized),
        stdout=asyncio.subprocess.PIPE,
        stderr=log,
        env=_env(home, args, young=args.server_young),
    )
    streams: list[SshStream] = []
    presser: asyncio.Task[None] | None = None
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        found = re.search(r"port (\d+), host key", line)
        if not found:
            raise SystemExit(f"the server did not say its port: {line!r}; see {home / 'serve.log'}")
        port = int(found[1])
        host_key = load_host_key(home / "state" / "aios-tui" / "ssh_host_ed25519_key")
        known = home / "known_hosts"
        known.write_text(f"[127.0.0.1]:{port} {host_key.export_public_key().decode()}", encoding="utf-8")
        print(f"\nServer: `aios-tui {' '.join(argv)}`, pid {proc.pid}, port {port}.", flush=True)

        async def connect(i: int) -> SshStream:
            conn = await asyncssh.connect(
                "127.0.0.1",
                port,
                username="bench",
                client_keys=[keys[i % len(keys)]],
                known_hosts=str(known),
                agent_path=None,
                config=None,
            )
            process = await conn.create_process(term_type="xterm-256color", term_size=SIZE, encoding=None)
            return SshStream(conn, process)

        await asyncio.sleep(args.settle)  # the poller's first fetches, nobody connected
        idle = await _windows([proc.pid], [home], [], args.windows, args.window)
        levels: dict[int, list[Window]] = {}
        shown: dict[int, float] = {}
        for n in sorted(args.sessions):
            t0 = time.monotonic()
            new = await asyncio.gather(*(connect(i) for i in range(len(streams), n)))
            await _wait_ready(new, 60, f"{n} sessions")
            shown[n] = time.monotonic() - t0
            streams.extend(new)
            if presser is None:
                presser = asyncio.create_task(_press_keys(streams, args.key_every))
            await asyncio.sleep(args.settle)
            levels[n] = await _windows([proc.pid], [home], streams, args.windows, args.window)
            print(f"  {n} sessions measured (load average {_loadavg()})", flush=True)
        return idle, levels, shown
    finally:
        if presser is not None:
            presser.cancel()
        await asyncio.gather(*(s.close() for s in streams), return_exceptions=True)
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        log.close()


# --- the baseline: separate consoles ----------------------------------------------------------------------


async def bench_consoles(args: argparse.Namespace, tmp: Path) -> tuple[list[Window], float, list[int]]:
    """Windows over ``--consoles`` separate consoles; seconds until all showed data; fetches per console
    over the windows."""
    streams: list[PtyStream] = []
    homes: list[Path] = []
    presser: asyncio.Task[None] | None = None
    argv = ["--sim", "--sim-nodes", str(args.nodes), "--seed", "0"]
    t0 = time.monotonic()
    try:
        for i in range(args.consoles):
            home = tmp / f"console-{i:02d}"
            (home / "config").mkdir(parents=True)
            homes.append(home)
            streams.append(PtyStream([sys.executable, "-c", WRAPPER, *argv], _env(home, args)))
        print(f"\nConsoles: {args.consoles} × `aios-tui {' '.join(argv)}`.", flush=True)
        await _wait_ready(streams, 120, f"{args.consoles} consoles")
        shown = time.monotonic() - t0
        presser = asyncio.create_task(_press_keys(streams, args.key_every))
        await asyncio.sleep(args.settle)
        before = [_fetches(h / "fetches") for h in homes]
        pids = [s.proc.pid for s in streams]
        windows = await _windows(pids, homes, streams, args.windows, args.window)
        each = [_fetches(h / "fetches") - b for h, b in zip(homes, before, strict=True)]
        for s in streams:
            if s.proc.poll() is not None:
                raise SystemExit(f"a console exited during the windows (code {s.proc.returncode})")
        return windows, shown, each
    finally:
        if presser is not None:
            presser.cancel()
        await _stop_consoles(streams)


# --- report -----------------------------------------------------------------------------------------------


def _rss(w: Window) -> float:
    return w.rss_mb


def _pss(w: Window) -> float:
    return w.pss_mb


def _cpu(w: Window) -> float:
    return w.cpu_pct


def _gc(w: Window) -> float:
    return w.gc_pct


def _total(ws: Sequence[Window]) -> str:
    """Fetches over the windows, and the range per window."""
    each = [w.fetches for w in ws]
    return f"{sum(each)} ({min(each)}–{max(each)})" if len(each) > 1 else str(each[0])


def _bps(w: Window) -> float:
    return w.bytes_per_s


def _client(w: Window) -> float:
    return w.client_cpu_pct


def report(
    args: argparse.Namespace,
    idle: list[Window],
    levels: dict[int, list[Window]],
    shown: dict[int, float],
    consoles: list[Window],
    consoles_shown: float,
    per_console: list[int],
) -> None:
    span = f"{args.windows * args.window:g} s"
    gc_col = " | in GC" if args.gc_time else ""
    gc_sep = "---:|" if args.gc_time else ""

    def gc(ws: list[Window]) -> str:
        return f" | {_span(ws, _gc, '.1f')} %" if args.gc_time else ""

    young = f", server's young GC threshold {args.server_young}" if args.server_young else ""
    setup = (
        f"{args.nodes}-node embedded fleet, {SIZE[0]}×{SIZE[1]} PTYs, a key per session every"
        f" {args.key_every:g} s{young}; medians (min–max) of {args.windows} windows of {args.window:g} s"
    )
    print(f"\n### `aios-tui serve`: one process, one poller ({setup})\n")
    print(
        "| sessions | server RSS | above idle | per session | server CPU (% of a core) | above idle,"
        f" per session{gc_col} | fetches in {span} | bytes/s per session | bench clients' CPU"
        " | all showing data |"
    )
    print(f"|---:|---:|---:|---:|---:|---:|{gc_sep}---:|---:|---:|---:|")
    rss0, cpu0 = _med(idle, _rss), _med(idle, _cpu)
    print(
        f"| 0 (idle) | {_span(idle, _rss, '.0f')} MB | – | – | {_span(idle, _cpu, '.1f')} % | –{gc(idle)}"
        f" | {_total(idle)} | – | – | – |"
    )
    for n, ws in levels.items():
        rise, cpu = _med(ws, _rss) - rss0, _med(ws, _cpu) - cpu0
        print(
            f"| {n} | {_span(ws, _rss, '.0f')} MB | {rise:.0f} MB | {rise / n:.1f} MB"
            f" | {_span(ws, _cpu, '.1f')} % | {cpu / n:.2f} %{gc(ws)} | {_total(ws)}"
            f" | {_span(ws, _bps, ',.0f')} | {_med(ws, _client):.1f} % | {shown[n]:.1f} s |"
        )
    counts = sorted(levels)
    if len(counts) >= 2:
        a, b = counts[-2], counts[-1]
        rise = (_med(levels[b], _rss) - _med(levels[a], _rss)) / (b - a)
        cpu = (_med(levels[b], _cpu) - _med(levels[a], _cpu)) / (b - a)
        print(f"\nMarginal cost of a session from {a} to {b} sessions: {rise:.1f} MB, {cpu:.2f} % of a core.")
    drift = idle[-1].rss_mb - idle[0].rss_mb
    print(f"Idle RSS drift over the idle windows (first to last): {drift:+.1f} MB.")

    k = args.consoles
    scale = 20 / k
    scaled = f"; totals scaled ×{scale:.3g} to 20 below" if k != 20 else ""
    print(
        f"\n### Baseline: {k} separate consoles (`aios-tui --sim --sim-nodes {args.nodes}`), each on its own"
        f" poller, {SIZE[0]}×{SIZE[1]} ptys, the same keys{scaled}\n"
    )
    print(
        "| consoles | total RSS | total PSS | RSS per console | total CPU (% of a core) | per console"
        f"{gc_col} | fetches in {span} | bytes/s per console | all showing data |"
    )
    print(f"|---:|---:|---:|---:|---:|---:|{gc_sep}---:|---:|---:|")
    print(
        f"| {k} | {_span(consoles, _rss, ',.0f')} MB | {_span(consoles, _pss, ',.0f')} MB"
        f" | {_med(consoles, _rss) / k:.0f} MB | {_span(consoles, _cpu, '.1f')} %"
        f" | {_med(consoles, _cpu) / k:.2f} %{gc(consoles)} | {_total(consoles)}"
        f" | {_span(consoles, _bps, ',.0f')} | {consoles_shown:.1f} s |"
    )
    print(
        f"\nFetches per console in {span}: {min(per_console)}–{max(per_console)}"
        f" (bench process's CPU {_med(consoles, _client):.1f} %)."
    )
    top = max(levels)
    ws = levels[top]
    print(f"\n### {20 if k != 20 else k} consoles against one server with {top} sessions (same run)\n")
    print("| | consoles | server | consoles ÷ server |")
    print("|---|---:|---:|---:|")
    rows = {"RSS": (_rss, " MB"), "PSS": (_pss, " MB"), "CPU (% of a core)": (_cpu, " %")}
    if args.gc_time:
        rows["in GC (% of a core)"] = (_gc, " %")
    for name, (what, unit) in rows.items():
        them, us = _med(consoles, what) * scale, _med(ws, what)
        ratio = f"×{them / us:.1f}" if us else "–"
        print(f"| {name} | {them:,.1f}{unit} | {us:,.1f}{unit} | {ratio} |")
    them, us = sum(w.fetches for w in consoles) * scale, sum(w.fetches for w in ws)
    ratio = f"×{them / us:.1f}" if us else "–"
    print(f"| fetches | {them:,.0f} in {span} | {us:,.0f} in {span} | {ratio} |")


async def amain(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="aios-bench-serve-") as tmp_s:
        tmp = Path(tmp_s)
        idle, levels, shown = await bench_server(args, tmp)
        consoles, consoles_shown, per_console = await bench_consoles(args, tmp)
    report(args, idle, levels, shown, consoles, consoles_shown, per_console)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, nargs="+", default=[1, 10, 20])
    parser.add_argument("--consoles", type=int, default=20, help="separate consoles for the baseline")
    parser.add_argument("--nodes", type=int, default=200, help="embedded fleet's nodes (the default 200)")
    parser.add_argument("--window", type=float, default=15.0, help="seconds per measured window")
    parser.add_argument("--windows", type=int, default=3, help="windows per level")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds before a level's windows")
    parser.add_argument("--key-every", type=float, default=2.0, help="seconds between a session's keys")
    parser.add_argument(
        "--gc-time", action="store_true", help="also time the children's cyclic collectors (gc.callbacks)"
    )
    parser.add_argument(
        "--server-young",
        type=int,
        default=0,
        metavar="N",
        help="the server's youngest-generation GC threshold (default: Python's, as the server runs)",
    )
    args = parser.parse_args()
    if not 1 <= args.consoles <= 20 or any(not 1 <= n <= 20 for n in args.sessions):
        parser.error("sessions and consoles: 1 to 20 (the server's max_sessions)")
    print(f"## aios-tui serve benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC")
    print(f"\nMachine: {machine()}; nproc {os.cpu_count()}; load average {_loadavg()} (1, 5, 15 min).")
    print(f"Command: `{' '.join([Path(sys.executable).name, *sys.argv])}`")
    said = compile_app()
    print(f"\n{said[0].upper()}{said[1:]}.", flush=True)
    began = time.perf_counter()
    asyncio.run(amain(args))
    print(f"\n(benchmark took {time.perf_counter() - began:.0f} s; load average after {_loadavg()})")


if __name__ == "__main__":
    main()
