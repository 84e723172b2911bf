"""Endpoint objectives from the cluster: the ``aios-tui.dev/slo-*`` annotations on a Deployment, read by the
real client from the protocol-level API server, win over the ``[[slo]]`` rules; a rule fills what the
workload leaves out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aios_tui.alloc.slo import SloRule
from aios_tui.config import KubernetesSettings
from aios_tui.domain import NA, Endpoint
from aios_tui.poll import Poller
from aios_tui.sources.kubernetes import KubernetesSource, api_client_factory
from tests.k8s.apiserver import FakeApiServer

KEY = "ml-prod/llm-serve"


@pytest.fixture
def source(kubeconfig: Path) -> Iterator[KubernetesSource]:
    src = KubernetesSource(
        name="k8s:test",
        api_client_factory=api_client_factory(str(kubeconfig), "test"),
        settings=KubernetesSettings(enabled=True, kubeconfig=kubeconfig, timeout=3.0),
        context="test",
        retry_base=0.05,
        retry_max=0.2,
        watch_seconds=30.0,
    )
    yield src
    src.close_now()


def _endpoint(poller: Poller, want: float) -> Endpoint:
    """The endpoint once its p99 objective reads ``want`` (a watch event takes a few milliseconds)."""
    deadline = time.monotonic() + 5.0
    while True:
        ep = asyncio.run(poller.refresh()).endpoint_by_key[KEY]
        if ep.p99_slo_ms == want or time.monotonic() > deadline:
            return ep
        time.sleep(0.02)


def test_annotations_win_over_the_rules(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    poller = Poller(
        [source], slos=[SloRule(p99_ms=32.0, namespace="other"), SloRule(p99_ms=250.0, error_rate=0.01)]
    )
    ep = _endpoint(poller, 250.0)
    assert (ep.p99_slo_ms, ep.error_slo) == (250.0, 0.01)  # the default rule: no annotation yet
    deployment = apiserver.get("Deployment", "ml-prod", "llm-serve")
    assert deployment is not None
    deployment["metadata"].setdefault("annotations", {}).update({"aios-tui.dev/slo-p99-ms": "120"})
    apiserver.apply(deployment)
    ep = _endpoint(poller, 120.0)
    assert (ep.p99_slo_ms, ep.error_slo) == (120.0, 0.01)  # the annotation's p99, the rule's error rate
    deployment["metadata"]["annotations"]["aios-tui.dev/slo-p99-ms"] = "fast"
    deployment["metadata"]["annotations"]["aios-tui.dev/slo-error-rate"] = "0.5%"
    apiserver.apply(deployment)
    ep = _endpoint(poller, 250.0)
    # A p99 annotation that is not a number is ignored (the rule's then), and the endpoint still shown.
    assert (ep.p99_slo_ms, ep.error_slo) == (250.0, 0.005)
    assert ep.p99_ms is NA  # no Prometheus: no reading, so its state is unknown, not "ok"
