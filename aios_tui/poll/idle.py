"""Since when each allocated GPU has been under 5 % utilisation, followed across merged snapshots.

A source that knows a GPU's history (Prometheus: ``max_over_time(util[window]) < 5``; the simulator's own
signals) sets :attr:`Gpu.low_since` itself; for the others the poller remembers the first snapshot in which
the GPU was seen allocated to its pod and under 5 %, and forgets it as soon as the GPU goes back to 5 % or
more, loses its reading, or is freed or given to another pod.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from aios_tui.domain import IDLE_UTIL_PCT, NA, Gpu

__all__ = ["IdleTracker"]


class IdleTracker:
    """Feed it every merged GPU tuple with its timestamp; it answers uuid → since when (Unix time).

    One pass over the GPUs per new tuple, touching only the allocated ones that read under 5 % and whose
    source left ``low_since`` unknown; a tuple seen last time (another source's fetch triggered the merge)
    costs nothing. No Gpu object is rebuilt: the answer is a small mapping kept beside the GPUs in the
    snapshot (:attr:`FleetSnapshot.gpu_low_since`).
    """

    def __init__(self) -> None:
        self._gpus: Sequence[Gpu] | None = None
        self._since: dict[tuple[str, str], float] = {}
        """(uuid, pod) → since when; a GPU given to another pod starts again."""
        self._view: Mapping[str, float] = MappingProxyType({})

    def update(self, gpus: Sequence[Gpu], now: float) -> Mapping[str, float]:
        if gpus is self._gpus:
            return self._view
        self._gpus = gpus
        before = self._since
        na, low = NA, IDLE_UTIL_PCT
        since: dict[tuple[str, str], float] = {}
        for g in gpus:
            # The cheap tests first: most GPUs are free or busy and stop at the first or second one.
            if g.pod and (u := g.util) is not na and u < low and g.low_since is na:  # type: ignore[operator]
                key = (g.uuid, g.pod)
                since[key] = before.get(key, now)
        self._since = since
        self._view = MappingProxyType({uuid: t for (uuid, _), t in since.items()})
        return self._view
