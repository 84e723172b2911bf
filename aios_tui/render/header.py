"""The two header lines: where you are and how the fleet is doing. Pure: snapshot in, rich Text out."""

from __future__ import annotations

import time

from rich.text import Text

from aios_tui.domain import FleetSnapshot, FleetTotals, SourceState, fmt_age, fmt_money, is_na
from aios_tui.domain.health import to_cordon
from aios_tui.render.glyphs import DIM_STYLE, FAIL_STYLE, OK_STYLE, WARN_STYLE

_STATE_STYLE = {
    SourceState.OK: OK_STYLE,
    SourceState.STALE: WARN_STYLE,
    SourceState.PARTIAL: WARN_STYLE,
    SourceState.ERROR: FAIL_STYLE,
    SourceState.STARTING: DIM_STYLE,
}


_MARK = {
    SourceState.OK: ("●", "ok"),
    SourceState.STALE: ("◐", "stale"),
    SourceState.PARTIAL: ("◐", "part"),
    SourceState.ERROR: ("✗", "err"),
    SourceState.STARTING: ("○", "..."),
}
"""A source's state in one sign (Unicode) or word (ASCII): distinct without colour either way."""


def sources_text(snapshot: FleetSnapshot, now: float, *, ascii: bool = False, compact: int = 0) -> Text:
    """Each source's state: in words (``● k8s  ● prom stale 12s``), or where room is short (``compact`` 1)
    one mark each (``● k8s ● prom ◐ ssh``, ASCII ``k8s:ok prom:stale``), then (2, 3) names cut to 4 and 3
    characters."""
    out = Text()
    if compact:
        names = _short_names([s.name for s in snapshot.sources], (0, 0, 4, 3)[min(compact, 3)])
        for i, (s, name) in enumerate(zip(snapshot.sources, names, strict=True)):
            sign, word = _MARK[s.state]
            style = _STATE_STYLE[s.state]
            if i:
                out.append(" ")
            if ascii:
                out.append_text(Text.assemble(name, (f":{word}", style)))
            else:
                out.append_text(Text.assemble((sign + " ", style), name))
        return out
    dot = "*" if ascii else "●"
    for i, s in enumerate(snapshot.sources):
        if i:
            out.append("  ")
        out.append(dot + " ", _STATE_STYLE[s.state])
        if s.state is SourceState.OK:
            out.append(s.name)
        elif s.state is SourceState.STALE:
            out.append(f"{s.name} stale {fmt_age(s.age(now))}", WARN_STYLE)
        elif s.state is SourceState.ERROR:
            out.append(f"{s.name} error", FAIL_STYLE)
        elif s.state is SourceState.PARTIAL:
            out.append(f"{s.name} partial", WARN_STYLE)
        else:
            out.append(f"{s.name} …" if not ascii else f"{s.name} ...", DIM_STYLE)
    return out


def _short_names(names: list[str], cut: int) -> list[str]:
    """Each name cut to ``cut`` characters (0: whole), or longer where that would read like another's:
    ``k8s:prod-us`` and ``k8s:prod-eu`` stay ``k8s:prod-u`` and ``k8s:prod-e``, not ``k8s`` twice."""
    if not cut:
        return names
    out = []
    for name in names:
        n = cut
        while n < len(name) and any(o != name and o[:n] == name[:n] for o in names):
            n += 1
        out.append(name[:n].rstrip(":-_/.") or name[:n])  # "k8s:prod" cut to 4 is "k8s"
    return out


def header_lines(
    snapshot: FleetSnapshot,
    now: float,
    width: int,
    *,
    read_only: bool = False,
    ascii: bool = False,
    seconds: bool = True,
) -> tuple[Text, Text]:
    """Line 1: app, context, sources, clock, mode. Line 2: fleet totals, shortened to fit ``width``.
    ``seconds``: the clock shows them (a low-bandwidth console shows minutes: it changes once a minute)."""
    t = snapshot.totals
    sep = " | " if ascii else " │ "
    line1 = _line1(snapshot, now, width, sep, read_only=read_only, ascii=ascii, seconds=seconds)

    util = "N/A" if is_na(t.avg_util) else f"{float(t.avg_util):.0f}%"
    nodes_style = WARN_STYLE if t.nodes_ready < t.nodes else ""
    dot = " · " if not ascii else ", "
    # The alarm: unhealthy GPUs, and the nodes their verdicts say to cordon (``h`` / ``:health``), read off
    # the snapshot's verdicts (computed once per snapshot, not per redraw).
    cordon = len(to_cordon(snapshot))

    def gpus_part(compact: int) -> Text:
        idle = Text(f"{t.gpus_idle_allocated} idle", WARN_STYLE if t.gpus_idle_allocated else "")
        if not is_na(t.idle_cost_per_hour) and t.gpus_idle_allocated:
            idle.append(f" {_money(float(t.idle_cost_per_hour), compact > 1)}", WARN_STYLE)
        return Text.assemble(
            "GPUs ",
            (f"{t.gpus_used:,}", "bold"),
            f"/{t.gpus:,}" if compact else f"/{t.gpus:,} used",
            dot,
            (f"{t.gpus_free:,} free", OK_STYLE),
            dot,
            idle,
        )

    def alarm(compact: int) -> Text:
        out = Text()
        if t.unhealthy_gpus and not (compact and cordon):
            out.append(f"{t.unhealthy_gpus} unhealthy", FAIL_STYLE)
        if cordon:
            style = FAIL_STYLE if t.unhealthy_gpus else WARN_STYLE
            out.append(f"{', ' if out.plain else ''}{cordon} to cordon", style)
        return out

    # Where the figures do not fit: drop the least urgent ones, then shorten words, then round the money.
    for compact in (0, 1, 2):
        unhealthy = alarm(compact)
        full = [
            Text.assemble("Nodes ", (f"{t.nodes_ready}/{t.nodes}", nodes_style)),
            gpus_part(compact),
            Text.assemble("util ", (util, "bold")),
            # A floor where nodes have no price (``≥ $12.40/h, 3 nodes unpriced``; narrow: ``≥ $12.40/h``).
            Text.assemble((t.cost_text() if not compact else _floor(t) + fmt_money(t.cost_per_hour), "bold")),
            Text.assemble(
                f"Jobs {t.jobs_running} run, ",
                (f"{t.jobs_queued} queued", WARN_STYLE if t.jobs_queued else ""),
            ),
            Text(f"Endpoints {t.endpoints}"),
            unhealthy,
        ]
        parts = [p for p in full if p.plain]
        line2 = Text(sep).join(parts)
        while line2.cell_len > width and len(parts) > 3:
            parts.pop(-2 if parts[-1] is unhealthy else -1)  # keep the alarm, drop the least urgent figure
            line2 = Text(sep).join(parts)
        if line2.cell_len <= width:
            break
    line2.truncate(width, overflow="ellipsis")
    return line1, line2


def _line1(
    snap: FleetSnapshot, now: float, width: int, sep: str, *, read_only: bool, ascii: bool, seconds: bool
) -> Text:
    """App, context, sources, mode, clock. Where they do not fit, the sources' state stays whole: first
    they shorten (:func:`sources_text`'s ``compact``), then the context is cut, then the clock goes."""
    clock = time.strftime("%H:%M:%S UTC" if seconds else "%H:%M UTC", time.gmtime(now))
    badge = ("READ-ONLY ", "bold reverse yellow") if read_only else ""
    context = snap.context or "no context"
    app = Text.assemble(("aios-tui", "bold"), " ")
    tries = [(compact, True) for compact in range(4)] + [(3, False)]
    for compact, show_clock in tries:
        sources = sources_text(snap, now, ascii=ascii, compact=compact)
        right = Text.assemble(badge, (clock, DIM_STYLE) if show_clock else "")
        room = width - app.cell_len - len(sep) - sources.cell_len - (right.cell_len + 1 if right else 0)
        if room >= min(len(context), 12) or (compact, show_clock) == tries[-1]:
            break
    ctx = Text(context, "bold cyan")
    if ascii and ctx.cell_len > room:
        ctx.truncate(max(room - 3, 0))
        ctx.append("...")
    ctx.truncate(max(room, 1), overflow="ellipsis")
    line = Text.assemble(app, ctx, sep, sources)
    if right:
        line.append(" " * max(width - line.cell_len - right.cell_len, 1))
        line.append_text(right)
    line.truncate(width, overflow="ellipsis")
    return line


def _money(value: float, compact: bool) -> str:
    """``$4,010.20/h``, or where the line is short of room ``$4.0k/h`` / ``$101/h``."""
    if not compact:
        return fmt_money(value)
    return f"${value / 1000:.1f}k/h" if value >= 1000 else f"${value:.0f}/h"


def _floor(t: FleetTotals) -> str:
    return "≥ " if t.nodes_unpriced and not is_na(t.cost_per_hour) else ""
