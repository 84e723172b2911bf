"""Helpers shared by the benchmarks: a fake clock, order statistics, an app on the embedded fleet, and a
real console process under a pseudo-terminal."""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import re
import select
import statistics
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aios_tui.poll import Poller
from aios_tui.ui.app import AiosApp
from aios_tui.ui.harness import START, FakeClock, sim_app

__all__ = ["START", "FakeClock", "build_app"]


def median_p90(samples: Sequence[float]) -> tuple[float, float]:
    """Median and 90th percentile (the highest decile cut; the sample itself when there is only one)."""
    if len(samples) == 1:
        return samples[0], samples[0]
    return statistics.median(samples), statistics.quantiles(samples, n=10)[-1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def build_app(nodes: int, seed: int, clock: FakeClock, audit_dir: Path) -> tuple[AiosApp, Poller]:
    """The console on an embedded fleet, as the UI tests build it: not live, fake clock."""
    app, _ = sim_app(audit_dir / "audit.jsonl", nodes=nodes, seed=seed, clock=clock)
    return app, app.poller


def machine() -> str:
    """``2 × AMD EPYC …, Linux 6.x, Python 3.11.7``."""
    model = platform.processor() or "unknown CPU"
    with Path("/proc/cpuinfo").open(encoding="utf-8") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    system = f"{platform.system()} {platform.release()}"
    return f"{os.cpu_count()} × {model}, {system}, Python {platform.python_version()}"


def compile_app() -> str:
    """Write the bytecode of the ``aios_tui`` being measured, as installing a package does; returns a
    sentence saying so. An editable install (the README's) is compiled at its first run, unless
    ``PYTHONDONTWRITEBYTECODE`` is set, as on the machines here: then every start compiled all ~110 modules
    again (0.1-0.2 s of each "first data" measured before 2026-12-06 09:00 UTC)."""
    import compileall
    import importlib.util

    spec = importlib.util.find_spec("aios_tui")
    assert spec is not None and spec.submodule_search_locations
    where = Path(next(iter(spec.submodule_search_locations)))
    ok = compileall.compile_dir(where, quiet=1)
    said = "compiled" if ok else "**compiling failed**"
    flag = " (PYTHONDONTWRITEBYTECODE is set here)" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    return f"bytecode of {where} {said} before the runs, as an installed package has it{flag}"


# --- a real console process ------------------------------------------------------------------------------

_ESCAPES = re.compile(rb"\x1b\[[0-9;?<>=$]*[A-Za-z~]|\x1b\][^\x07]*\x07")
_CURSOR_MOVE = re.compile(rb"\x1b\[\d+;\d+H")
_HEADER_WITH_DATA = re.compile(rb"Nodes \d+/\d+")
_ALT_SCREEN = b"\x1b[?1049h"


@dataclass
class ConsoleRun:
    """Timings (seconds since exec) and resource readings of one ``aios-tui`` process."""

    alt_screen: float | None = None
    """The alternate screen was entered (the app started its driver)."""
    first_frame: float | None = None
    """First paint: the first cursor-addressed write after the alternate screen (panes drawn, no data yet)."""
    first_data_frame: float | None = None
    """First frame with the fleet on it: the header's ``Nodes <ready>/<total>`` has been written."""
    rss_mb: float | None = None
    cpu_pct: float | None = None
    """utime+stime over the idle window, as a percentage of one core."""
    notes: list[str] = field(default_factory=list)


def _cpu_seconds(pid: int) -> float:
    with Path(f"/proc/{pid}/stat").open(encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def _rss_mb(pid: int) -> float:
    with Path(f"/proc/{pid}/status").open(encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def run_console(
    exe: Path,
    nodes: int,
    *,
    seed: int = 0,
    size: tuple[int, int] = (160, 50),
    rss_at: float | None = None,
    cpu_window: float = 0.0,
    deadline: float = 30.0,
) -> ConsoleRun:
    """Start ``aios-tui --sim-nodes N`` on a pseudo-terminal of ``size`` and watch what it writes.

    Without ``rss_at`` the process is stopped as soon as the first frame with data is seen. With it, RSS is
    read ``rss_at`` seconds after exec and CPU time is summed over the following ``cpu_window`` seconds, with
    no input sent. The terminal output is drained all along, as a terminal would.
    """
    master, slave = os.openpty()
    cols, rows = size
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    home = Path(os.environ.get("TMPDIR", "/tmp")) / f"aios-bench-{os.getpid()}"
    home.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        TERM="xterm-256color",
        COLUMNS=str(cols),
        LINES=str(rows),
        XDG_CONFIG_HOME=str(home),  # no user config file: the defaults, i.e. the embedded fleet
        XDG_STATE_HOME=str(home),  # audit and log files stay out of the user's state directory
    )
    env.pop("NO_COLOR", None)
    run = ConsoleRun()
    began = time.perf_counter()
    proc = subprocess.Popen(
        [str(exe), "--sim-nodes", str(nodes), "--seed", str(seed)],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        start_new_session=True,
        close_fds=True,
    )
    os.close(slave)
    out = bytearray()
    cpu_from: float | None = None
    stop_at = began + (deadline if rss_at is None else rss_at + cpu_window + 5.0)
    try:
        while True:
            now = time.perf_counter()
            if now >= stop_at:
                break
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:  # the process closed the terminal
                    break
                if not chunk:
                    break
                seen = time.perf_counter() - began
                start = len(out)
                out += chunk
                if run.alt_screen is None and _ALT_SCREEN in out:
                    run.alt_screen = seen
                if run.alt_screen is not None and run.first_frame is None:
                    after = out.index(_ALT_SCREEN)
                    if _CURSOR_MOVE.search(out, max(after, start - 16)):
                        run.first_frame = seen
                if run.first_data_frame is None and _HEADER_WITH_DATA.search(
                    _ESCAPES.sub(b"", bytes(out[max(0, start - 4096) :]))
                ):
                    run.first_data_frame = seen
                    if rss_at is None:
                        break
                if len(out) > 1 << 20:  # keep the tail only: the markers are all found early
                    del out[: len(out) - (1 << 16)]
            if proc.poll() is not None:
                run.notes.append(f"exited early with code {proc.returncode}")
                break
            elapsed = time.perf_counter() - began
            if rss_at is not None:
                if run.rss_mb is None and elapsed >= rss_at:
                    run.rss_mb = _rss_mb(proc.pid)
                    cpu_from = _cpu_seconds(proc.pid)
                elif cpu_from is not None and elapsed >= rss_at + cpu_window:
                    run.cpu_pct = 100.0 * (_cpu_seconds(proc.pid) - cpu_from) / (elapsed - rss_at)
                    break
    finally:
        _stop(proc, master)
    return run


def _stop(proc: subprocess.Popen[bytes], master: int) -> None:
    """Ask the console to quit (``q``); terminate it, then kill it, if it does not."""
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            os.write(master, b"q")
        deadline = time.perf_counter() + 3.0
        while proc.poll() is None and time.perf_counter() < deadline:
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    os.read(master, 1 << 16)
                except OSError:
                    break
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(3.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    os.close(master)
