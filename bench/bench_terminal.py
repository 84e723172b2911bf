"""What the console costs a terminal, beside htop and a bare Textual app measured in the same run.

    .venv/bin/python bench/bench_terminal.py [--sizes 80x24 120x40 200x60] [--nodes 200 5000]
                                             [--seconds 20] [--warmup 6] [--runs 3]
                                             [--keys 20] [--resizes 4] [--sync]
                                             [--telemetry-period 0] [--low-bandwidth]

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

Responsiveness (issue 14: a key answered within 100 ms while a 5,000-node refresh runs, no flicker on
resize), after the window, still with all three running:

5. ``--keys K``: K keys to aios-tui and K to the bare app (apps alternating, 0.37–0.9 s apart from a seeded
   random, so that some land while the embedded fleet is fetched, every 2 s, or the panes redrawn, every
   1 s). aios-tui gets ``k``/``j`` alternately, moving the node table's cursor between its first two rows;
   the bare app counts keys in a ``Static``. *Answered* is the time from the write of the key to the chunk
   read back after which the pyte screen shows the answer: the cursor's colour (found by one ``j`` sent
   first, not counted) on the row it moves to, or the counter's new value. So output that happens to follow
   the key (a refresh) is not taken for the answer; the keys after which such output came first are counted.
   The time to the first byte read back is printed beside it.
6. ``--resizes R``: R resizes of each pty, as a terminal does (TIOCSWINSZ, then SIGWINCH), alternating
   between the pane size and one 20 columns and 6 rows smaller (larger under 100 columns), about 2 s
   apart. The output of the 0.25 s after each is replayed into pyte, resized at the same point: bytes,
   erase-display sequences, screens that are blank, and *intermediate states*: screens differing from the
   one that stands at the end, that a terminal could show (after each chunk read, as a terminal reads a pty;
   with synchronised output, after each closed bracket only). Textual brackets its frames in
   ``ESC[?2026h``…``ESC[?2026l`` only when the terminal answers its query for mode 2026; this pty does not
   (as xterm does not) unless ``--sync``, which answers as a supporting terminal does (kitty, WezTerm, foot,
   iTerm2). Paints outside a bracket are counted.

Figures are medians over ``--runs``; the ratio aios/htop is per run. The load average is printed before and
after: the machine may be shared, so compare within a run, not across runs.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import importlib.metadata
import importlib.util
import os
import random
import re
import select
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

EXE = Path(sys.executable).with_name("aios-tui")
BARE_APP = """
from textual.app import App
from textual.widgets import Static

class Bare(App[None]):
    BINDINGS = [("q", "quit", "Quit"), ("j,k", "count", "Count")]
    count = 0

    def compose(self):
        yield Static("bare Textual app: Nodes 1/1")
        yield Static("count 0", id="count")

    def action_count(self):
        self.count += 1
        self.query_one("#count", Static).update(f"count {self.count}")

Bare().run()
"""
_ESCAPES = re.compile(r"\x1b\[[0-9;?<>=$ ]*[A-Za-z~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)")
# Textual asks the terminal about modes (DECRQM: ESC [ ? 2026 $ p) and keyboard protocols; pyte would
# draw the final character of a query it does not know, so queries are dropped before replay.
_QUERIES = re.compile(rb"\x1b\[[?>=<]?[0-9;]*\$p|\x1b\[[>=<][0-9;]*[a-z]|\x1b\[\?u")
_AIOS_DATA = re.compile(r"Nodes\s+\d[\d,]*/\d[\d,]*")
_CURSOR_MOVE = re.compile(rb"\x1b\[\d*;?\d*H")
_BARE_DATA = re.compile(r"bare Textual app")
_ERASE = re.compile(rb"\x1b\[[0-2]?J")
RESIZE_WINDOW = 0.25
"""Seconds after a resize whose output counts as its repaint (Textual repaints 1/120 s after the signal)."""
SYNC_START, SYNC_END = b"\x1b[?2026h", b"\x1b[?2026l"
_SYNC_QUERY, _SYNC_REPLY = b"\x1b[?2026$p", b"\x1b[?2026;2$y"  # DECRQM, and "supported, reset" (DECRPM)


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
    sync: bool = False
    """Answer Textual's query for synchronised output (mode 2026) as a terminal that supports it does."""
    keys: list[tuple[float, int]] = field(default_factory=list)
    """(time of the write, ``len(chunks)`` then) per key sent."""
    resizes: list[tuple[float, int, tuple[int, int]]] = field(default_factory=list)
    """(time, ``len(chunks)`` then, new size) per resize."""


def _cpu_seconds(pid: int) -> float:
    with Path(f"/proc/{pid}/stat").open(encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _env(home: Path, truecolor: bool) -> dict[str, str]:
    """The size comes from the pty alone, as in a terminal: Textual (``shutil.get_terminal_size``) and
    ncurses read ``COLUMNS``/``LINES`` first, which would pin the size and hide every resize."""
    env = dict(
        os.environ,
        TERM="xterm-256color",
        LANG="C.UTF-8",
        HOME=str(home),  # htop's config (and its write-back on exit) stays in the scratch directory
        XDG_CONFIG_HOME=str(home),  # no user config file: the defaults, i.e. the embedded fleet
        XDG_STATE_HOME=str(home),  # audit and log files stay out of the user's state directory
    )
    for name in ("NO_COLOR", "COLORTERM", "LC_ALL", "TEXTUAL", "COLUMNS", "LINES"):
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
    for i in range(p.fed, upto):
        _apply_resizes(p, i)
        p.stream.feed(_QUERIES.sub(b"", p.chunks[i][1]))
    p.fed = max(p.fed, upto)


def _apply_resizes(p: Proc, index: int) -> None:
    """Resize the emulated screen where the pty was resized: before the first chunk read after it."""
    for _, at, (cols, rows) in p.resizes:
        if at == index:
            p.screen.resize(lines=rows, columns=cols)


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
            if p.sync and _SYNC_QUERY in chunk:
                os.write(fd, _SYNC_REPLY)
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


def _row_colours(screen: Any) -> list[set[str]]:
    return [{screen.buffer[y][x].bg for x in range(screen.columns)} for y in range(screen.lines)]


def _calibrate(p: Proc, procs: Sequence[Proc]) -> tuple[int, int, str]:
    """Send one ``j`` to aios-tui and find the table row the cursor left, the one it reached, and its colour.

    The row that gains a background colour it did not have is the one the cursor moved to; the one that
    loses it, the row it left. Later keys alternate ``k``/``j`` between these two rows, so the table never
    scrolls and the answer to each key is that colour appearing on the expected row.
    """
    _pump(procs, time.perf_counter() + 1.0)
    _feed(p, len(p.chunks))
    before = _row_colours(p.screen)
    os.write(p.master, b"j")
    _pump(procs, time.perf_counter() + 1.0)
    _feed(p, len(p.chunks))
    after = _row_colours(p.screen)
    for y, (b, a) in enumerate(zip(before, after, strict=True)):
        for colour in a - b:
            left = [u for u in range(len(after)) if colour in before[u] and colour not in after[u]]
            if len(left) == 1:
                return left[0], y, colour
    raise RuntimeError("aios-tui: a `j` moved no table cursor (no row changed its background colour)")


def _send_keys(
    aios: Proc, bare: Proc, procs: Sequence[Proc], count: int, rng: random.Random
) -> list[tuple[Proc, bytes]]:
    """``count`` keys to each app, alternating apps, 0.37–0.9 s apart (so some land during a refresh)."""
    sent = []
    for i in range(2 * count):
        p = aios if i % 2 == 0 else bare
        key = b"k" if (i // 2) % 2 == 0 else b"j"
        _pump(procs, time.perf_counter() + rng.uniform(0.37, 0.9))
        p.keys.append((time.perf_counter(), len(p.chunks)))
        os.write(p.master, key)
        sent.append((p, key))
    _pump(procs, time.perf_counter() + 1.5)
    return sent


def _resize(p: Proc, size: tuple[int, int]) -> None:
    """What a terminal emulator does when its window changes: set the pty's size, signal the program."""
    assert p.proc is not None
    cols, rows = size
    p.resizes.append((time.perf_counter(), len(p.chunks), size))
    fcntl.ioctl(p.master, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    os.kill(p.proc.pid, signal.SIGWINCH)


@dataclass
class KeyTimes:
    first_byte: list[float] = field(default_factory=list)
    answered: list[float] = field(default_factory=list)
    unanswered: int = 0
    other_first: int = 0
    """Keys after which the app drew something else (a refresh) before the answer."""


def _drew(chunk: bytes) -> bool:
    """Whether ``chunk`` draws any character (not only modes, cursor moves or bracket markers)."""
    return bool(_ESCAPES.sub("", chunk.decode("utf-8", "replace")).strip())


def _key_times(p: Proc, answered: Callable[[int], bool]) -> KeyTimes:
    """Replay chunk by chunk after each key until ``answered(key number)`` holds on the emulated screen."""
    out = KeyTimes()
    ends = [at for _, at in p.keys[1:]] + [len(p.chunks)]
    for n, ((sent, at), end) in enumerate(zip(p.keys, ends, strict=True)):
        _feed(p, at)
        if at < len(p.chunks):
            out.first_byte.append(p.chunks[at][0] - sent)
        for i in range(max(at, p.fed), end):
            _feed(p, i + 1)
            if answered(n):
                out.answered.append(p.chunks[i][0] - sent)
                out.other_first += any(_drew(c) for _, c in p.chunks[at:i])
                break
        else:
            out.unanswered += 1
    return out


@dataclass
class ResizeFacts:
    bytes: list[int] = field(default_factory=list)
    erases: int = 0
    """Erase-display sequences (``ESC[J``, ``ESC[2J``) written after a resize."""
    frames: list[int] = field(default_factory=list)
    """States a terminal could show between the resize and the settled screen: one per chunk read without
    synchronised output, one per ``ESC[?2026l`` with it."""
    blank: int = 0
    """Of those, screens with no character at all."""
    outside_sync: int = 0
    """Chunks that drew text outside a synchronised-output bracket (a supporting terminal shows them as
    they arrive)."""
    settle: list[float] = field(default_factory=list)
    """Seconds from the resize to the last chunk of the repaint that answers it."""


def _resize_facts(p: Proc, window: float) -> ResizeFacts:
    """The repaint after each resize: the chunks read within ``window`` seconds of it."""
    out = ResizeFacts()
    inside = False
    for t, at, _ in p.resizes:
        _feed(p, at)
        if at < len(p.chunks):  # the screen as it stands right after the resize (pyte keeps what fits)
            _apply_resizes(p, at)
        states: list[tuple[str, ...]] = []
        last = None
        nbytes = 0
        for i in range(at, len(p.chunks)):
            stamp, chunk = p.chunks[i]
            if stamp - t > window:
                break
            nbytes += len(chunk)
            out.erases += len(_ERASE.findall(chunk))
            pieces = re.split(rb"(\x1b\[\?2026[hl])", chunk)
            drew_outside = False
            for piece in pieces:
                if piece == SYNC_START:
                    inside = True
                elif piece == SYNC_END:
                    inside = False
                    states.append(tuple(p.screen.display))
                elif not inside and _drew(piece):
                    drew_outside = True
                p.stream.feed(_QUERIES.sub(b"", piece))
            p.fed = i + 1
            out.outside_sync += drew_outside
            if not p.sync:
                states.append(tuple(p.screen.display))
            last = stamp
        out.bytes.append(nbytes)
        if states:
            settled = states[-1]
            shown = [s for s in states[:-1] if s != settled]
            out.frames.append(len(shown))
            out.blank += sum(1 for s in shown if not "".join(s).strip())
        else:
            out.frames.append(0)
        if last is not None:
            out.settle.append(last - t)
    return out


def _pct(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


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
    aios_keys: KeyTimes | None = None
    bare_keys: KeyTimes | None = None
    aios_resize: ResizeFacts | None = None
    bare_resize: ResizeFacts | None = None


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
    keys: int = 0,
    resizes: int = 0,
    sync: bool = False,
    telemetry_period: float | None = None,
    low_bandwidth: bool = False,
) -> RunResult:
    with tempfile.TemporaryDirectory(prefix="aios-bench-term-") as tmp:
        env = _env(Path(tmp), truecolor)
        if telemetry_period is not None:  # the embedded fleet's only setting here, in a config file
            config = Path(tmp) / "aios-tui" / "config.toml"
            config.parent.mkdir()
            config.write_text(f"[sim]\ntelemetry_period = {telemetry_period}\n")
        bare = Proc("bare Textual app", [sys.executable, "-c", BARE_APP], size, _BARE_DATA)
        argv = [str(EXE), "--sim-nodes", str(nodes), "--seed", str(seed)]
        aios = Proc("aios-tui", [*argv, "--low-bandwidth"] if low_bandwidth else argv, size, _AIOS_DATA)
        top = Proc("htop", [htop], size, None) if htop else None
        bare.sync = aios.sync = sync
        other = (size[0] - 20, size[1] - 6) if size[0] >= 100 else (size[0] + 20, size[1] + 6)
        rng = random.Random(f"{seed}/{size}/{nodes}")
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
            if keys:
                rows = _calibrate(aios, procs)
                _send_keys(aios, bare, procs, keys, rng)
            for i in range(resizes):
                for p in (aios, bare):
                    _pump(procs, time.perf_counter() + rng.uniform(0.8, 1.3))
                    _resize(p, other if i % 2 == 0 else size)
            if resizes:
                _pump(procs, time.perf_counter() + 1.5)
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
        screen.counting = False
    if keys:
        top_row, low_row, colour = rows

        def moved(n: int) -> bool:  # key n is k (to the upper row) when n is even, else j
            row = aios.screen.buffer[top_row if n % 2 == 0 else low_row]
            return sum(1 for x in range(aios.screen.columns) if row[x].bg == colour) >= 4

        result.aios_keys = _key_times(aios, moved)
        result.bare_keys = _key_times(bare, lambda n: f"count {n + 1}" in "\n".join(bare.screen.display))
    if resizes:
        result.aios_resize = _resize_facts(aios, RESIZE_WINDOW)
        result.bare_resize = _resize_facts(bare, RESIZE_WINDOW)
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


def _ms(value: float | None) -> str:
    return _fmt(None if value is None else 1000 * value, ".0f", " ms")


def _print_keys(results: dict[tuple[tuple[int, int], int], list[RunResult]]) -> None:
    print("\n### Key latency (all runs pooled)\n")
    print(
        "Answered: from the write of the key to the chunk after which the emulated screen shows the move "
        "(aios-tui: the cursor colour on the row it moves to; bare app: its counter's new value). *Other "
        "output first*: keys after which the app drew something else (a refresh) before answering.\n"
    )
    print(
        "| size | nodes | app | keys | first byte median | answered median | p90 | p99 | max | "
        "> 100 ms | unanswered | other output first |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (size, nodes), runs in results.items():
        for app, pick in (("aios-tui", "aios_keys"), ("bare", "bare_keys")):
            got = [getattr(r, pick) for r in runs if getattr(r, pick) is not None]
            first = [v for k in got for v in k.first_byte]
            done = [v for k in got for v in k.answered]
            print(
                f"| {size[0]}×{size[1]} | {nodes:,} | {app} | {len(first)} | {_ms(_med(first))} | "
                f"{_ms(_med(done))} | {_ms(_pct(done, 0.9))} | {_ms(_pct(done, 0.99))} | "
                f"{_ms(max(done, default=None))} | {sum(1 for v in done if v > 0.1)} | "
                f"{sum(k.unanswered for k in got)} | {sum(k.other_first for k in got)} |"
            )


def _print_resizes(results: dict[tuple[tuple[int, int], int], list[RunResult]]) -> None:
    print(f"\n### Resizes (all runs pooled; output within {RESIZE_WINDOW:g} s of each resize)\n")
    print(
        "*Intermediate states*: what a terminal could show between the resize and the settled screen (per "
        "chunk read without synchronised output, per closed bracket with it) that differ from the settled "
        "screen; *blank*: of those, screens with no character. *Unbracketed paints*: chunks that drew text "
        "outside ESC[?2026h…l.\n"
    )
    print(
        "| size | nodes | app | resizes | bytes per resize (median) | erase-display | intermediate states | "
        "blank | unbracketed paints | repaint done (median) | max |"
    )
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (size, nodes), runs in results.items():
        for app, pick in (("aios-tui", "aios_resize"), ("bare", "bare_resize")):
            got = [getattr(r, pick) for r in runs if getattr(r, pick) is not None]
            sizes = [v for f in got for v in f.bytes]
            settle = [v for f in got for v in f.settle]
            print(
                f"| {size[0]}×{size[1]} | {nodes:,} | {app} | {len(sizes)} | {_fmt(_med(sizes), ',.0f')} | "
                f"{sum(f.erases for f in got)} | {sum(v for f in got for v in f.frames)} | "
                f"{sum(f.blank for f in got)} | {sum(f.outside_sync for f in got)} | "
                f"{_ms(_med(settle))} | {_ms(max(settle, default=None))} |"
            )


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
    # Killed (SIGTERM), still stop the three programs (``one_run``'s finally): a bare app left behind on a
    # closed pty spins at 100 % of a core and skews every later measurement on the machine.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=_size, nargs="+", default=[(80, 24), (120, 40), (200, 60)])
    parser.add_argument("--nodes", type=int, nargs="+", default=[200, 5000])
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run (s)")
    parser.add_argument("--warmup", type=float, default=6.0, help="after htop starts, before the window (s)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--truecolor", action="store_true", help="set COLORTERM=truecolor")
    parser.add_argument("--keys", type=int, default=0, help="keys to each app, after the window")
    parser.add_argument("--resizes", type=int, default=0, help="pty resizes after the keys (0: none)")
    parser.add_argument(
        "--sync",
        action="store_true",
        help="answer the synchronised-output query",
    )
    parser.add_argument(
        "--telemetry-period",
        type=float,
        default=None,
        help="[sim] telemetry_period for aios-tui (default: the console's, 30 s; 0 re-reads every GPU)",
    )
    parser.add_argument("--low-bandwidth", action="store_true", help="run aios-tui with --low-bandwidth")
    args = parser.parse_args()
    if (args.keys or args.resizes) and importlib.util.find_spec("pyte") is None:
        parser.error("--keys and --resizes replay the output into pyte: pip install pyte")
    if not EXE.exists():
        parser.error(f"{EXE} not found: install the project into this interpreter's environment first")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _util import compile_app, machine  # imports the app: after --help

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
    print(f"- {compile_app()}")
    colour = "COLORTERM=truecolor" if args.truecolor else "no COLORTERM (as SSH forwards by default)"
    print(f"- terminal: TERM=xterm-256color, {colour}, LANG=C.UTF-8; seed {args.seed}")
    period = "default (30 s)" if args.telemetry_period is None else f"{args.telemetry_period:g} s"
    mode = ", --low-bandwidth" if args.low_bandwidth else ""
    print(f"- aios-tui: [sim] telemetry_period {period}{mode}")
    print(f"- per run: warm-up {args.warmup:g} s after htop starts, then a {args.seconds:g} s window")
    if args.keys:
        print(f"- then {args.keys} keys to each app (k/j alternately, 0.37–0.9 s apart, apps alternating)")
    if args.resizes:
        print(f"- then {args.resizes} resizes of each pty (TIOCSWINSZ + SIGWINCH), about 2 s apart")
    sync = "answered: frames bracketed" if args.sync else "not answered (as xterm): no brackets"
    print(f"- synchronised-output query (DECRQM 2026): {sync}\n")
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
                    keys=args.keys,
                    resizes=args.resizes,
                    sync=args.sync,
                    telemetry_period=args.telemetry_period,
                    low_bandwidth=args.low_bandwidth,
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
    if args.keys:
        _print_keys(results)
    if args.resizes:
        _print_resizes(results)
    load_after = os.getloadavg()
    print(f"\nload average after: {' '.join(f'{x:.2f}' for x in load_after)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
