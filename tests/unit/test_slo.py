"""Endpoint objectives: the ``[[slo]]`` rules, the Kubernetes annotations that win over them, the verdict
(ok / breached / unknown), and the poller following since when an endpoint has been in breach, with an
``SLOBreach`` and an ``SLORecovered`` event in its log."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from aios_tui.alloc.slo import SloRule, breached, fill_slos, slo_ratio
from aios_tui.config import ConfigError, load_settings
from aios_tui.domain import NA, Endpoint
from aios_tui.domain.clock import FrozenClock
from aios_tui.poll import Poller
from aios_tui.poll.slo import RECOVER_HOLD
from aios_tui.sources._k8s_convert import (
    SLO_ERROR_ANNOTATION,
    SLO_P99_ANNOTATION,
    build_endpoint,
    convert_deployment,
)
from aios_tui.sources.base import SourceData

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"


def ep(name: str, namespace: str = "prod", **kw: Any) -> Endpoint:
    return Endpoint(namespace=namespace, name=name, source="t", **kw)


# --- rules ----------------------------------------------------------------------------------------------


def test_the_first_rule_that_sets_an_objective_gives_it_and_the_source_wins() -> None:
    rules = [
        SloRule(p99_ms=200, name="llama-*", namespace="prod"),
        SloRule(error_rate=0.01, namespace="prod"),
        SloRule(p99_ms=999, name="llama-*"),  # never reached for prod llama: the first rule set p99
        SloRule(p99_ms=50, error_rate=0.05),  # the default
    ]
    out = fill_slos(
        (
            ep("llama-70b"),
            ep("llama-8b", "dev"),
            ep("embed"),
            ep("own", p99_slo_ms=30.0),
        ),
        rules,
    )
    assert [(e.p99_slo_ms, e.error_slo) for e in out] == [
        (200, 0.01),
        (999, 0.05),
        (50, 0.01),
        (30.0, 0.01),  # the workload's own p99 objective stays; only the missing one is filled
    ]


def test_no_rule_and_no_match_leave_the_tuple_as_it_was() -> None:
    eps = (ep("a"), ep("b"))
    assert fill_slos(eps, ()) is eps
    assert fill_slos(eps, [SloRule(p99_ms=1, namespace="other")]) is eps


def test_verdict_ok_breached_unknown() -> None:
    assert breached(ep("a", p99_ms=470.0, p99_slo_ms=32.0)) is True
    assert breached(ep("a", p99_ms=20.0, p99_slo_ms=32.0, error_rate=0.02, error_slo=0.01)) is True
    assert breached(ep("a", p99_ms=20.0, p99_slo_ms=32.0, error_rate=0.001, error_slo=0.01)) is False
    assert breached(ep("a", p99_ms=20.0)) is None  # no objective
    assert breached(ep("a", p99_slo_ms=32.0)) is None  # no reading
    assert breached(ep("a", p99_ms=470.0, p99_slo_ms=32.0, lost_since=5.0)) is None  # no longer reported
    ratio = slo_ratio(ep("a", p99_ms=470.0, p99_slo_ms=32.0, error_rate=0.002, error_slo=0.001))
    assert ratio == pytest.approx((470 / 32, 2.0))
    assert slo_ratio(ep("a", p99_ms=470.0)) is None


# --- settings ---------------------------------------------------------------------------------------------


def test_slo_rules_load_in_order(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        "[[slo]]\nname = 'llama-*'\np99_ms = 250\n[[slo]]\nerror_rate = 0.001\np99_ms = 100\n", "utf-8"
    )
    rules = load_settings(config, env={}).slo
    assert [(r.name, r.namespace, r.p99_ms, r.error_rate) for r in rules] == [
        ("llama-*", "", 250.0, 0.0),
        ("", "", 100.0, 0.001),
    ]


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ("name = 'x'\n", "[[slo]] #1: expected p99_ms or error_rate above 0 (or both)"),
        ("p99_ms = -1\n", "[[slo]] #1 p99_ms: expected"),
        ("error_rate = 5\n", "[[slo]] #1 error_rate: expected"),
        ("p99_ms = 10\nnamspace = 'x'\n", '[[slo]] #1 namspace: unknown setting; did you mean "namespace"?'),
    ],
)
def test_a_bad_slo_rule_names_the_file_and_the_key(tmp_path: Path, table: str, error: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[[slo]]\n" + table, "utf-8")
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert error in str(info.value) and str(config) in str(info.value)


# --- Kubernetes annotations -----------------------------------------------------------------------------


def _deployment(annotations: dict[str, str]) -> Any:
    """The Deployment captured from a real kube-apiserver, with these annotations."""
    doc = json.loads((FIXTURES / "deployments-list.json").read_text())["response"]
    obj = next(o for o in doc["items"] if o["metadata"]["name"] == "llm-serve")
    obj = copy.deepcopy(obj)
    obj["metadata"].setdefault("annotations", {}).update(annotations)
    return obj


@pytest.mark.parametrize(
    ("p99", "err", "want"),
    [
        ("250", "0.001", (250.0, 0.001)),
        ("250ms", "0.1%", (250.0, 0.001)),
        ("fast", "-1", (NA, NA)),  # not a number: unknown, and the endpoint is still shown
        ("0", "2", (NA, NA)),  # out of range
        ("250%", "5ms", (NA, NA)),  # the wrong unit
    ],
)
def test_annotations_give_the_objectives(p99: str, err: str, want: tuple[Any, Any]) -> None:
    obj = _deployment({SLO_P99_ANNOTATION: p99, SLO_ERROR_ANNOTATION: err})
    endpoint = build_endpoint(
        convert_deployment(obj, kind="Deployment", gpu_names=("nvidia.com/gpu",)), None, source="k"
    )
    got = (endpoint.p99_slo_ms, endpoint.error_slo)
    assert got == pytest.approx(want) if want[0] is not NA else got == want
    assert endpoint.key == "ml-prod/llm-serve"


# --- the poller ---------------------------------------------------------------------------------------------


class _Serving:
    """A source whose one endpoint's p99 the test sets."""

    name, kind, interval, timeout = "t", "t", 1.0, 1.0

    def __init__(self) -> None:
        self.endpoints = (ep("ranker", p99_ms=20.0), ep("own", p99_ms=20.0, p99_slo_ms=10.0))

    async def fetch(self) -> SourceData:
        return SourceData(endpoints=self.endpoints)

    async def close(self) -> None:
        pass


async def test_the_poller_follows_a_breach_from_start_to_recovery() -> None:
    clock = FrozenClock(1000.0)
    src = _Serving()
    poller = Poller([src], clock=clock, slos=[SloRule(p99_ms=32.0)])
    snap = await poller.refresh()
    assert snap.endpoint_by_key["prod/ranker"].p99_slo_ms == 32.0
    assert snap.endpoint_by_key["prod/own"].p99_slo_ms == 10.0  # the source's objective wins
    assert dict(snap.slo_breached_since) == {"prod/own": 1000.0}
    src.endpoints = (ep("ranker", p99_ms=470.0), src.endpoints[1])
    clock.advance(60)
    snap = await poller.refresh()
    clock.advance(600)
    snap = await poller.refresh()
    assert dict(snap.slo_breached_since) == {"prod/own": 1000.0, "prod/ranker": 1060.0}
    breaches = [e for e in snap.events if e.reason == "SLOBreach"]
    assert [(e.key, e.time, e.warning) for e in breaches] == [
        ("prod/ranker", 1060.0, True),
        ("prod/own", 1000.0, True),
    ]
    assert breaches[0].message == "past its objective: p99 470 ms (objective 32 ms)"
    src.endpoints = (ep("ranker", p99_ms=25.0), dataclasses.replace(src.endpoints[1], p99_ms=NA))
    clock.advance(40)
    snap = await poller.refresh()
    # The endpoint that lost its reading is not judged: unknown, forgotten at once, and not "recovered".
    # The one back under its objective stays in breach until it has met it for RECOVER_HOLD.
    assert dict(snap.slo_breached_since) == {"prod/ranker": 1060.0}
    src.endpoints = (ep("ranker", p99_ms=40.0), src.endpoints[1])  # a wobble over it restarts the hold
    clock.advance(30)
    await poller.refresh()
    src.endpoints = (ep("ranker", p99_ms=25.0), src.endpoints[1])
    for _ in range(2):
        clock.advance(30)
        snap = await poller.refresh()
        assert dict(snap.slo_breached_since) == {"prod/ranker": 1060.0}
    clock.advance(RECOVER_HOLD - 30)
    snap = await poller.refresh()
    assert dict(snap.slo_breached_since) == {}
    recovered = [e for e in snap.events if e.reason == "SLORecovered"]
    assert [(e.key, e.time, e.warning) for e in recovered] == [("prod/ranker", 1820.0, False)]
    assert recovered[0].message == (
        "meets its objectives again after 11m in breach: p99 25 ms (objective 32 ms)"
    )
    assert [e.reason for e in snap.events if e.key == "prod/ranker"] == ["SLORecovered", "SLOBreach"]
