"""Service-level objectives of the endpoints: where they come from, and whether an endpoint meets them.

What "slow" means differs by 1000× between an embedding model and a 70B chat model, so an absolute p99 says
little; what the on-call engineer looks for is the endpoint furthest past *its own* objective. Objectives
come from the workload itself (Kubernetes annotations ``aios-tui.dev/slo-p99-ms`` and
``aios-tui.dev/slo-error-rate``, read by the source), else from the ``[[slo]]`` rules of the settings, which
the poller applies once per merge (:func:`fill_slos`); an endpoint that has neither has no objective, and its
state is unknown rather than "ok".

Pure functions over domain objects; the poller follows since when each endpoint has been in breach.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from aios_tui.domain import Endpoint, is_na

__all__ = ["SloRule", "breached", "fill_slos", "slo_ratio"]


@dataclass(frozen=True, slots=True)
class SloRule:
    """Objectives for the endpoints whose name and namespace match the globs (``""``: any). ``0`` leaves an
    objective to a later rule."""

    p99_ms: float = 0.0
    error_rate: float = 0.0
    """Fraction of requests, 0..1."""
    name: str = ""
    namespace: str = ""

    def matches(self, ep: Endpoint) -> bool:
        return (not self.name or fnmatchcase(ep.name, self.name)) and (
            not self.namespace or fnmatchcase(ep.namespace, self.namespace)
        )


def fill_slos(endpoints: Sequence[Endpoint], rules: Sequence[SloRule]) -> tuple[Endpoint, ...]:
    """``endpoints`` with the objectives their source left unknown taken from the first rule that matches
    and sets that objective (p99 and error rate independently). What a source gave wins. The same tuple
    when nothing changed."""
    if not rules:
        return tuple(endpoints)
    out = list(endpoints)
    changed = False
    for i, ep in enumerate(out):
        p99_missing, err_missing = is_na(ep.p99_slo_ms), is_na(ep.error_slo)
        if not (p99_missing or err_missing):
            continue
        p99, err = ep.p99_slo_ms, ep.error_slo
        for rule in rules:
            if not rule.matches(ep):
                continue
            if p99_missing and rule.p99_ms > 0 and is_na(p99):
                p99 = rule.p99_ms
            if err_missing and rule.error_rate > 0 and is_na(err):
                err = rule.error_rate
        if p99 is not ep.p99_slo_ms or err is not ep.error_slo:
            out[i] = dataclasses.replace(ep, p99_slo_ms=p99, error_slo=err)
            changed = True
    return tuple(out) if changed else tuple(endpoints)


def slo_ratio(ep: Endpoint) -> tuple[float, float] | None:
    """(p99 / its objective, error rate / its objective), each 0 where that objective or reading is
    unknown; None when neither can be judged. Above 1 is a breach."""
    p99 = 0.0
    err = 0.0
    judged = False
    if not is_na(ep.p99_slo_ms) and float(ep.p99_slo_ms) > 0 and not is_na(ep.p99_ms):
        p99 = float(ep.p99_ms) / float(ep.p99_slo_ms)
        judged = True
    if not is_na(ep.error_slo) and float(ep.error_slo) > 0 and not is_na(ep.error_rate):
        err = float(ep.error_rate) / float(ep.error_slo)
        judged = True
    return (p99, err) if judged and not ep.lost_since else None


def breached(ep: Endpoint) -> bool | None:
    """True when the endpoint is past an objective, False when it meets the ones it has readings for,
    None when it cannot be judged (no objective, no reading, or no longer reported)."""
    ratio = slo_ratio(ep)
    return None if ratio is None else ratio[0] > 1.0 or ratio[1] > 1.0
