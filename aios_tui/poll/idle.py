"""Since when each allocated GPU has been under 5 % utilisation, followed across merged snapshots.

A source that knows a GPU's history (Prometheus: ``max_over_time(util[window]) < 5``; the simulator's own
signals) sets :attr:`Gpu.low_since` itself; for the others the poller remembers the first snapshot in which
the GPU was seen allocated to its pod and under 5 %, and forgets it as soon as the GPU goes back to 5 % or
more, loses its reading, or is freed or given to another pod.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

from aios_tui.domain import IDLE_UTIL_PCT, NA, Gpu
from aios_tui.domain.blocks import blocks

__all__ = ["IdleTracker"]


_BLOCK = 512


class IdleTracker:
    """Feed it every merged GPU tuple with its timestamp; it answers uuid → since when (Unix time).

    Touches only the allocated GPUs that read under 5 % and whose source left ``low_since`` unknown; a
    tuple seen last time (another source's fetch triggered the merge) costs nothing, and a block of
    :data:`_BLOCK` GPUs that are the last tuple's very objects (a source re-reads a slice at a time) is not
    looked through again: what it holds depends on the GPU objects alone (37,588 GPUs with a fifteenth
    re-read: 0.6 ms against 3.3 ms one by one). No Gpu object is rebuilt: the answer is a small mapping kept
    beside the GPUs in the snapshot (:attr:`FleetSnapshot.gpu_low_since`).
    """

    def __init__(self) -> None:
        self._gpus: Sequence[Gpu] = ()
        self._blocks: list[tuple[tuple[str, str], ...]] = []
        """Each block's (uuid, pod) of the GPUs allocated, under 5 % and with no ``low_since``."""
        self._since: dict[tuple[str, str], float] = {}
        """(uuid, pod) → since when; a GPU given to another pod starts again."""
        self._view: Mapping[str, float] = MappingProxyType({})

    def update(self, gpus: Sequence[Gpu], now: float) -> Mapping[str, float]:
        if gpus is self._gpus:
            return self._view
        old, old_blocks = self._gpus, self._blocks
        before = self._since
        since: dict[tuple[str, str], float] = {}
        found = []
        for i, (_, part, same) in enumerate(blocks(gpus, old, _BLOCK)):
            low = old_blocks[i] if same else tuple(_low(part))
            found.append(low)
            for key in low:
                since[key] = before.get(key, now)
        self._gpus, self._blocks, self._since = gpus, found, since
        self._view = MappingProxyType({uuid: t for (uuid, _), t in since.items()})
        return self._view


def _low(gpus: Sequence[Gpu]) -> Iterator[tuple[str, str]]:
    """(uuid, pod) of the GPUs allocated, reading under 5 %, whose source did not say since when."""
    na, low = NA, IDLE_UTIL_PCT
    for g in gpus:
        # The cheap tests first: most GPUs are free or busy and stop at the first or second one.
        if g.pod and (u := g.util) is not na and u < low and g.low_since is na:  # type: ignore[operator]
            yield (g.uuid, g.pod)
