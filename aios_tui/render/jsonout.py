"""The fleet, plans and results as JSON-ready data, for ``snapshot --json`` and ``plan|act --json``.

``dataclasses.asdict`` deep-copies every value through a generic path and takes seconds on 40,000 GPUs. Here
each class gets its field list once; fields typed str/int/bool are copied as they are. NA and non-finite
floats become ``null``.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from aios_tui.domain import FleetSnapshot, NaType
from aios_tui.ops import ActionResult, Plan
from aios_tui.ops.suggest import suggest_cordons

__all__ = ["plan_to_json", "result_to_json", "snapshot_to_json", "to_json"]

_Converter = Callable[[Any], Any]
_PLAIN = (str, int, bool)


def _same(value: Any) -> Any:
    return value


def _float(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _sequence(value: Sequence[Any]) -> list[Any]:
    return [to_json(v) for v in value]


_CONVERTERS: dict[type, _Converter] = {
    str: _same,
    int: _same,
    bool: _same,
    type(None): _same,
    float: _float,
    NaType: lambda _: None,
    tuple: _sequence,
    list: _sequence,
}


def to_json(value: Any) -> Any:
    """``value`` (a domain object, a plan's detail, a tuple of them …) as plain JSON data."""
    kind = type(value)
    conv = _CONVERTERS.get(kind)
    if conv is None:
        conv = _CONVERTERS[kind] = _converter_for(kind)
    return conv(value)


def _converter_for(kind: type) -> _Converter:
    if issubclass(kind, enum.Enum):
        return lambda v: to_json(v.value)
    if dataclasses.is_dataclass(kind):
        hints = typing.get_type_hints(kind)
        fields = [f.name for f in dataclasses.fields(kind)]
        plain = tuple(n for n in fields if hints.get(n) in _PLAIN)
        other = tuple(n for n in fields if n not in plain)

        def convert(obj: Any) -> dict[str, Any]:
            out = {n: getattr(obj, n) for n in plain}
            for n in other:
                out[n] = to_json(getattr(obj, n))
            return out

        return convert
    if issubclass(kind, Mapping):
        return lambda m: {str(k): to_json(v) for k, v in m.items()}
    raise TypeError(f"cannot write a {kind.__name__} as JSON")


JSON_EVENTS = 500
"""The newest events written by ``snapshot --json`` (the console keeps up to 5,000)."""


def snapshot_to_json(snap: FleetSnapshot) -> dict[str, Any]:
    """The snapshot as one JSON-ready object: each element (node pools included) its dataclass's fields, NA
    as None; which endpoints breach their objectives since when, and the newest events; then the
    allocated-but-idle GPUs and the nodes the GPU telemetry says to cordon."""
    return {
        "timestamp": snap.timestamp,
        "context": snap.context,
        "sources": to_json(snap.sources),
        "totals": to_json(snap.totals),
        "pods": len(snap.pods),
        "nodes": to_json(snap.nodes),
        "pools": to_json(snap.pools),
        "gpus": to_json(snap.gpus),
        "jobs": to_json(snap.jobs),
        "endpoints": to_json(snap.endpoints),
        "slo_breached_since": to_json(snap.slo_breached_since),
        "events": to_json(snap.events[:JSON_EVENTS]),
        "idle_window": snap.idle_window,
        "idle_gpus": [
            {
                "uuid": g.uuid,
                "node": g.node,
                "index": g.index,
                "pod": g.pod,
                "util": to_json(g.util),
                "low_since": to_json(snap.low_since(g)),
                "price_per_hour": to_json(snap.gpu_price(g)),
            }
            for g in snap.idle_gpus
        ],
        "suggestions": [
            {
                "action": s.action,
                "node": s.node,
                "severity": s.severity.label,
                "verdict": s.need.word,
                "reasons": list(s.reasons),
            }
            for s in suggest_cordons(snap)
        ],
        "verdicts": [
            {
                "node": v.node,
                "verdict": v.word,
                "why": [f.describe(snap.timestamp) for f in v.findings],
                "jobs": list(v.jobs),
                "endpoints": list(v.endpoints),
                "pods": list(v.pods),
                "cordoned": v.cordoned,
                "cordoned_by": v.cordoned_by,
            }
            for v in snap.verdicts.values()
        ],
    }


def plan_to_json(plan: Plan[Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    """The plan as one JSON-ready object; ``detail`` is its action's structured part
    (:meth:`~aios_tui.ops.Ops.detail_json`: a drain's ``drain_plan``, a launch's ``placement`` …)."""
    doc: dict[str, Any] = {
        "action": plan.action,
        "target": plan.target,
        "source": plan.source,
        "title": plan.title,
        "ok": plan.ok,
        "lines": [{"label": label, "value": value} for label, value in plan.lines],
        "warnings": list(plan.warnings),
        "blockers": list(plan.blockers),
        "confirm_phrase": plan.confirm_phrase,
        "params": to_json(plan.params),
        "digest": plan.digest,
    }
    for key, value in detail.items():
        converted = to_json(value)
        ok = getattr(value, "ok", None)
        if isinstance(converted, dict) and isinstance(ok, bool):
            converted["ok"] = ok  # a property, not a field: say it too (a drain plan's)
        doc[key] = converted
    return doc


def result_to_json(result: ActionResult) -> dict[str, Any]:
    return {
        "ok": result.ok,
        "message": result.message,
        "done": list(result.done),
        "not_done": list(result.not_done),
        "cancelled": result.cancelled,
    }
