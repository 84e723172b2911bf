"""The one registry of kinds: every table the console shows — the main screen's panes and the views that open
as screens of their own — with its aliases and the kind its rows open in a detail screen.

``:`` commands, the palette, the help screen and the main screen all ask :func:`lookup` and :data:`REGISTRY`;
the kinds themselves stay declared beside their cells (:mod:`~aios_tui.render.table`,
:mod:`~aios_tui.render.views`, :mod:`~aios_tui.render.triage`). Which kinds are panes is
:data:`aios_tui.config.PANES` (the config checks ``default_pane`` against it and cannot import this layer).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aios_tui.config import PANES as PANE_NAMES
from aios_tui.render.table import ENDPOINTS, GPUS, JOBS, NODES, ResourceKind
from aios_tui.render.triage import EVENTS, PODS
from aios_tui.render.views import CAPACITY, CORDON, IDLE, POOLS, SOURCES

__all__ = ["PANES", "REGISTRY", "VIEWS", "Entry", "lookup"]


@dataclass(frozen=True, slots=True)
class Entry:
    kind: ResourceKind
    pane: bool
    """A pane of the main screen (keys 1–4); else a view that opens as a screen of its own."""

    @property
    def name(self) -> str:
        return self.kind.name

    @property
    def detail(self) -> str:
        """The kind its rows open in a detail screen (``node``, ``gpu``, ``pod`` …)."""
        return self.kind.detail


REGISTRY: tuple[Entry, ...] = (
    *(Entry(k, True) for k in (NODES, GPUS, JOBS, ENDPOINTS)),
    *(Entry(k, False) for k in (PODS, EVENTS, IDLE, CORDON, POOLS, CAPACITY, SOURCES)),
)
PANES: Mapping[str, ResourceKind] = {e.name: e.kind for e in REGISTRY if e.pane}
VIEWS: Mapping[str, ResourceKind] = {e.name: e.kind for e in REGISTRY if not e.pane}
if tuple(PANES) != PANE_NAMES:  # pragma: no cover - a kind added on one side only
    raise ImportError(f"config.PANES {PANE_NAMES} and the registry's panes {tuple(PANES)} differ")

_BY_NAME: Mapping[str, Entry] = {name: e for e in reversed(REGISTRY) for name in (e.name, *e.kind.aliases)}


def lookup(name: str) -> Entry | None:
    """A pane or view by name or alias (``:no``, ``:gpu``, ``:po``, ``:health``); None when none is."""
    return _BY_NAME.get(name.strip().lower().lstrip(":"))
