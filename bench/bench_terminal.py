"""What the console costs a terminal, beside htop and a bare Textual app measured in the same run.

    .venv/bin/python bench/bench_terminal.py [--sizes 80x24 120x40 200x60] [--nodes 200 5000]
                                             [--seconds 20] [--warmup 6] [--runs 3]

Over SSH every byte written to the terminal crosses the link, so bytes per second at steady state is what
an operator on a slow or metered link feels. Timing the console alone says nothing about that; htop, the
tool people leave open on a fleet's hosts, is the yardstick, in a pseudo-terminal of the same size, in the
same run (so the same machine load). Per run, for each pane size and fleet size:

1. a bare Textual app (one ``Static``, ``q`` quits) is started alone in its own pseudo-terminal: seconds
   from just before exec to the first screen showing its text;
2. ``aios-tui --sim-nodes N`` (the installed console, embedded fleet, default settings) is started next,
   alone but for the idle bare app: seconds to the first screen that shows fleet data (the header's
   ``Nodes <ready>/<total>``);
3. htop is started (its default 1.5 s delay, no user config);
4. after ``--warmup`` seconds, all three run side by side for ``--seconds``: bytes each writes to its
   terminal (read from the pty master, as a terminal would), and its CPU time (utime + stime from
   /proc/PID/stat, all threads) as a percentage of one core. No input is sent.

The terminals are xterm-256color without COLORTERM (what SSH forwards by default; ``--truecolor`` sets
COLORTERM=truecolor). For aios-tui the byte stream is also replayed into pyte (a VT emulator,
``pip install pyte``; skipped with a note when missing): of the character cells it draws in the window, the
share already showing the same character with the same attributes (character, colours, bold, italics,
underline, strikethrough, reverse, blink, as pyte keeps them) — *re-sent cells*; and the share of bytes in
segments (from one cursor move to the next: one stretch of a line as Textual writes it) that changed no cell
at all — *re-sent bytes*, what a renderer sending only changes would have left out, colour codes included.

Figures are medians over ``--runs``; the ratio aios/htop is per run. The load average is printed before and
after: the machine may be shared, so compare within a run, not across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.metadata
import os
import re
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXE = Path(sys.executable).with_name("aios-tui")
BARE_APP = """
from textual.app import App
from textual.widgets import Static

class Bare(App[None]):
    BINDINGS = [("q", "quit", "Quit")]

    def compose(self):
        yield Static("bare Textual app: Nodes 1/1")

Bare().run()
"""
_ESCAPES = re.compile(r"\x1b\[[0-9;?<>=$ ]*[A-Za-z~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# Textual asks the terminal about modes (DECRQM: ESC [ ? 2026 $ p) and keyboard protocols; pyte would
# draw the final character of a query it does not know, so queries are dropped before replay.
_QUERIES = re.compile(rb"\x1b\[[?>=<]?[0-9;]*\$p|\x1b\[[>=<][0-9;]*[a-z]|\x1b\[\?u")
_AIOS_DATA = re.compile(r"Nodes\s+\d[\d,]*/\d[\d,]*")
_CURSOR_MOVE = re.compile(rb"\x1b\[\d*;?\d*H")
_BARE_DATA = re.compile(r"bare Textual app")


@dataclass
class Proc:
    """One program in its own pseudo-terminal, and what it wrote."""

    name: str
    argv: list[str]
    size: tuple[int, int]
    ready: re.Pattern[str] | None
    proc: subprocess.Popen[bytes] | None = None
    master: int = -1
    began: float = 0.0
    chunks: list[tuple[float, bytes]] = field(default_factory=list)
    ready_at: float | None = None
    """Seconds from exec to the first screen that matches ``ready``."""
    screen: Any = None
    stream: Any = None
    fed: int = 0


def _cpu_seconds(pid: int) -> float:
    with Path(f"/proc/{pid}/stat").open(encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _env(home: Path, size: tuple[int, int], truecolor: bool) -> dict[str, str]:
    cols, rows = size
    env = dict(
        os.environ,
        TERM="xterm-256color",
        LANG="C.UTF-8",
        COLUMNS=str(cols),
        LINES=str(rows),
        HOME=str(home),  # htop's config (and its write-back on exit) stays in the scratch directory
        XDG_CONFIG_HOME=str(home),  # no user config file: the defaults, i.e. the embedded fleet
        XDG_STATE_HOME=str(home),  # audit and log files stay out of the user's state directory
    )
    for name in ("NO_COLOR", "COLORTERM", "LC_ALL", "TEXTUAL"):
        env.pop(name, None)
    if truecolor:
        env["COLORTERM"] = "truecolor"
    return env


def _start(p: Proc, env: dict[str, str]) -> None:
    master, slave = os.openpty()
    cols, rows = p.size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    p.began = time.perf_counter()
    p.proc = subprocess.Popen(
        p.argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True, close_fds=True
    )
    os.close(slave)
    p.master = master


def _new_screen(p: Proc, pyte: Any) -> None:
    cols, rows = p.size
    p.screen = _counting_screen(pyte, cols, rows)
    p.stream = pyte.ByteStream(p.screen)


def _feed(p: Proc, upto: int) -> None:
    for _, chunk in p.chunks[p.fed : upto]:
        p.stream.feed(_QUERIES.sub(b"", chunk))
    p.fed = max(p.fed, upto)


def _check_ready(p: Proc) -> None:
    """Whether the screen now shows ``ready``: with pyte, the emulated screen; without, the stripped text."""
    assert p.ready is not None
    if p.screen is not None:
        _feed(p, len(p.chunks))
        shown = "\n".join(p.screen.display)
    else:
        tail = b"".join(c for _, c in p.chunks[-8:])[-8192:].decode("utf-8", "replace")
        shown = _ESCAPES.sub("", tail)
    if p.ready.search(shown):
        p.ready_at = p.chunks[-1][0] - p.began


def _pump(procs: Sequence[Proc], until: float, stop_when_ready: Proc | None = None) -> None:
    """Read every terminal as a terminal would until ``until`` (or until ``stop_when_ready`` is ready)."""
    while True:
        now = time.perf_counter()
        if now >= until:
            return
        live = {p.master: p for p in procs if p.master >= 0}
        ready, _, _ = select.select(list(live), [], [], min(0.05, until - now))
        for fd in ready:
            p = live[fd]
            try:
                chunk = os.read(fd, 1 << 16)
            except OSError:  # the process closed its terminal
                chunk = b""
            if not chunk:
                os.close(fd)
                p.master = -1
                continue
            p.chunks.append((time.perf_counter(), chunk))
            if p.ready is not None and p.ready_at is None:
                _check_ready(p)
        if stop_when_ready is not None and stop_when_ready.ready_at is not None:
            return
        for p in procs:
            if p.proc is not None and p.proc.poll() is not None and p.master < 0:
                raise RuntimeError(f"{p.name} exited with code {p.proc.returncode}")


def _stop(p: Proc, key: bytes) -> None:
    if p.proc is None:
        return
    if p.proc.poll() is None and p.master >= 0:
        with contextlib.suppress(OSError):
            os.write(p.master, key)
        deadline = time.perf_counter() + 3.0
        while p.proc.poll() is None and time.perf_counter() < deadline:
            with contextlib.suppress(RuntimeError):
                _pump([p], time.perf_counter() + 0.05)
    if p.proc.poll() is None:
        p.proc.terminate()
        try:
            p.proc.wait(3.0)
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()
    if p.master >= 0:
        os.close(p.master)
        p.master = -1


def _counting_screen(pyte: Any, cols: int, rows: int) -> Any:
    """A pyte screen that counts drawn cells, and those that were already showing what is drawn.

    A subclass of ``pyte.Screen`` (pyte is optional, so it is built here) that, while ``counting``, draws
    one character at a time and compares the cell before and after: same character, colours and styles.
    """

    class Screen(pyte.Screen):  # type: ignore[misc]
        counting = False
        drawn = 0
        same = 0

        def draw(self, data: str) -> None:
            if not self.counting:
                super().draw(data)
                return
            for ch in data:
                x, y = self.cursor.x, self.cursor.y
                # past the last column the character wraps onto the next line: not a cell compared
                before = None if x >= self.columns else self.buffer[y][x]
                super().draw(ch)
                self.drawn += 1
                if before is not None and self.buffer[y][x] == before:
                    self.same += 1

    return Screen(cols, rows)


def _replay(screen: Any, stream: Any, window: bytes) -> int:
    """Feed ``window`` to a counting screen; the bytes of its segments that changed no cell.

    A segment runs from one cursor move to the next: what Textual writes for one stretch of a line. One
    that draws nothing (mode switches, synchronised-output markers) is not counted as re-sent.
    """
    screen.counting = True
    resent = 0
    cuts = [m.start() for m in _CURSOR_MOVE.finditer(window)]
    for start, end in zip([0, *cuts], [*cuts, len(window)], strict=True):
        drawn, same = screen.drawn, screen.same
        stream.feed(_QUERIES.sub(b"", window[start:end]))
        if screen.drawn > drawn and screen.same - same == screen.drawn - drawn:
            resent += end - start
    return resent


@dataclass
class RunResult:
    aios_bps: float
    htop_bps: float
    bare_bps: float
    aios_cpu: float
    htop_cpu: float
    bare_cpu: float
    aios_first_data: float | None
    bare_first_frame: float | None
    cells_per_s: float | None = None
    same_cells: float | None = None
    resent_bytes: float | None = None
    """Bytes of segments (cursor move to cursor move) in which every drawn cell was already showing."""


def one_run(
    size: tuple[int, int],
    nodes: int,
    seed: int,
    *,
    seconds: float,
    warmup: float,
    truecolor: bool,
    htop: str | None,
    pyte: Any,
) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="aios-bench-term-") as tmp:
        env = _env(Path(tmp), size, truecolor)
        bare = Proc("bare Textual app", [sys.executable, "-c", BARE_APP], size, _BARE_DATA)
        aios = Proc("aios-tui", [str(EXE), "--sim-nodes", str(nodes), "--seed", str(seed)], size, _AIOS_DATA)
        top = Proc("htop", [htop], size, None) if htop else None
        if pyte is not None:
            _new_screen(bare, pyte)
            _new_screen(aios, pyte)
        procs = [bare, aios] + ([top] if top else [])
        try:
            _start(bare, env)
            _pump([bare], bare.began + 20.0, stop_when_ready=bare)
            _start(aios, env)
            _pump([bare, aios], aios.began + 60.0, stop_when_ready=aios)
            if aios.ready_at is None:
                raise RuntimeError(f"aios-tui showed no fleet data within 60 s at {size} and {nodes} nodes")
            if top is not None:
                _start(top, env)
            _pump(procs, time.perf_counter() + warmup)
            marks = {p.name: (len(p.chunks), _cpu_seconds(p.proc.pid)) for p in procs if p.proc}
            t0 = time.perf_counter()
            _pump(procs, t0 + seconds)
            t1 = time.perf_counter()
            ends = {p.name: (len(p.chunks), _cpu_seconds(p.proc.pid)) for p in procs if p.proc}
        finally:
            for p in procs:
                _stop(p, b"q")
    span = t1 - t0

    def bps(p: Proc | None) -> float:
        if p is None:
            return float("nan")
        lo, hi = marks[p.name][0], ends[p.name][0]
        return sum(len(c) for _, c in p.chunks[lo:hi]) / span

    def cpu(p: Proc | None) -> float:
        if p is None:
            return float("nan")
        return 100.0 * (ends[p.name][1] - marks[p.name][1]) / span

    result = RunResult(
        aios_bps=bps(aios),
        htop_bps=bps(top),
        bare_bps=bps(bare),
        aios_cpu=cpu(aios),
        htop_cpu=cpu(top),
        bare_cpu=cpu(bare),
        aios_first_data=aios.ready_at,
        bare_first_frame=bare.ready_at,
    )
    if pyte is not None:
        lo, hi = marks[aios.name][0], ends[aios.name][0]
        _feed(aios, lo)
        window = b"".join(c for _, c in aios.chunks[lo:hi])
        screen = aios.screen
        resent = _replay(screen, aios.stream, window)
        aios.fed = hi
        result.cells_per_s = screen.drawn / span
        result.same_cells = 100.0 * screen.same / max(1, screen.drawn)
        result.resent_bytes = 100.0 * resent / max(1, len(window))
    return result


def _med(values: Sequence[float | None]) -> float | None:
    got = [v for v in values if v is not None and v == v]
    return statistics.median(got) if got else None


def _fmt(value: float | None, spec: str, unit: str = "") -> str:
    return "—" if value is None or value != value else f"{value:{spec}}{unit}"


def _version(argv: list[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False).stdout
    except OSError:
        return "missing"
    return out.strip().splitlines()[0] if out.strip() else "unknown"


def _tree() -> str:
    """The checkout's commit, and whether its app code differed from it (the tree may be shared; run with
    PYTHONPATH set to a ``git archive`` export to measure a commit as it is)."""
    root = Path(__file__).resolve().parent.parent
    head = _version(["git", "-C", str(root), "rev-parse", "--short", "HEAD"])
    try:
        changed = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "aios_tui"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        ).stdout.splitlines()
    except OSError:
        return f"HEAD {head}"
    return f"HEAD {head}, {len(changed)} uncommitted file(s) under aios_tui/"


def _size(text: str) -> tuple[int, int]:
    cols, _, rows = text.lower().partition("x")
    try:
        size = int(cols), int(rows)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a size is COLUMNSxROWS, e.g. 120x40, not {text!r}") from None
    if not (20 <= size[0] <= 500 and 5 <= size[1] <= 200):
        raise argparse.ArgumentTypeError(f"{text}: columns 20–500 and rows 5–200, please")
    return size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_size, nargs="+", default=[(80, 24), (120, 40), (200, 60)])
    parser.add_argument("--nodes", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run (s)")
    parser.add_argument("--warmup", type=float, default=6.0, help="after htop starts, before the window (s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--truecolor", action="store_true", help="set COLORTERM=truecolor")
    args = parser.parse_args()
    if not EXE.exists():
        parser.error(f"{EXE} not found: install the project into this interpreter's environment first")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _util import machine  # imports the app: after --help

    htop = shutil.which("htop")
    pyte: Any
    try:
        import pyte
    except ImportError:
        pyte = None
    load_before = os.getloadavg()
    print(f"## Terminal cost, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC\n")
    print(f"- machine: {machine()}; load average before {' '.join(f'{x:.2f}' for x in load_before)}")
    print(f"- command: {' '.join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]])}")
    textual = importlib.metadata.version("textual")
    print(f"- {_version([str(EXE), '--version'])}; Textual {textual}")
    if htop:
        print(f"- {_version([htop, '--version'])} ({htop})")
    else:
        print("- **htop is missing**: no baseline, ratios are blank (Debian: `apt-get install -y htop`)")
    if pyte is None:
        print("- **pyte is missing**: re-sent cells not counted, first frames found in the text stream")
    else:
        print(f"- pyte {importlib.metadata.version('pyte')}")
    app_dir = Path(sys.modules["aios_tui"].__file__ or "?").parent
    print(f"- code: aios_tui from {app_dir}; checkout: {_tree()}")
    colour = "COLORTERM=truecolor" if args.truecolor else "no COLORTERM (as SSH forwards by default)"
    print(f"- terminal: TERM=xterm-256color, {colour}, LANG=C.UTF-8; seed {args.seed}")
    print(f"- per run: warm-up {args.warmup:g} s after htop starts, then a {args.seconds:g} s window\n")
    results: dict[tuple[tuple[int, int], int], list[RunResult]] = {}
    print(
        "| size | nodes | run | aios B/s | htop B/s | aios/htop | aios cells drawn/s | re-sent cells | "
        "re-sent bytes | aios CPU | htop CPU | bare CPU | first data | bare first frame |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        for nodes in args.nodes:
            runs = results.setdefault((size, nodes), [])
            for i in range(args.runs):
                r = one_run(
                    size,
                    nodes,
                    args.seed,
                    seconds=args.seconds,
                    warmup=args.warmup,
                    truecolor=args.truecolor,
                    htop=htop,
                    pyte=pyte,
                )
                runs.append(r)
                ratio = r.aios_bps / r.htop_bps if htop and r.htop_bps else None
                print(
                    f"| {size[0]}×{size[1]} | {nodes:,} | {i + 1} | {r.aios_bps:,.0f} | "
                    f"{_fmt(r.htop_bps, ',.0f')} | {_fmt(ratio, '.2f', '×')} | "
                    f"{_fmt(r.cells_per_s, ',.0f')} | "
                    f"{_fmt(r.same_cells, '.1f', ' %')} | {_fmt(r.resent_bytes, '.1f', ' %')} | "
                    f"{r.aios_cpu:.1f} % | {_fmt(r.htop_cpu, '.1f', ' %')} | {r.bare_cpu:.1f} % | "
                    f"{_fmt(r.aios_first_data, '.2f', ' s')} | {_fmt(r.bare_first_frame, '.2f', ' s')} |",
                    flush=True,
                )
    print("\n### Medians\n")
    print(
        "| size | nodes | aios B/s | htop B/s | aios/htop (median of runs) | re-sent bytes | bare B/s | "
        "first data | bare first frame | idle CPU aios | bare | htop |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (size, nodes), runs in results.items():
        ratios = [r.aios_bps / r.htop_bps for r in runs if htop and r.htop_bps]
        print(
            f"| {size[0]}×{size[1]} | {nodes:,} | {_fmt(_med([r.aios_bps for r in runs]), ',.0f')} | "
            f"{_fmt(_med([r.htop_bps for r in runs]), ',.0f')} | {_fmt(_med(ratios), '.2f', '×')} | "
            f"{_fmt(_med([r.resent_bytes for r in runs]), '.1f', ' %')} | "
            f"{_fmt(_med([r.bare_bps for r in runs]), ',.0f')} | "
            f"{_fmt(_med([r.aios_first_data for r in runs]), '.2f', ' s')} | "
            f"{_fmt(_med([r.bare_first_frame for r in runs]), '.2f', ' s')} | "
            f"{_fmt(_med([r.aios_cpu for r in runs]), '.1f', ' %')} | "
            f"{_fmt(_med([r.bare_cpu for r in runs]), '.1f', ' %')} | "
            f"{_fmt(_med([r.htop_cpu for r in runs]), '.1f', ' %')} |"
        )
    load_after = os.getloadavg()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
