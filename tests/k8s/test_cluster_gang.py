"""Opt-in: concurrent gang launches against the real cluster in ``$KUBECONFIG`` (issue 12, item 4).

This creates Jobs, so it runs only when ``AIOS_TUI_GANG_NAMESPACE`` names a scratch namespace you may create
Jobs, Leases and pods in, and only when the cluster has at least four nodes with 8 free GPUs::

    AIOS_TUI_GANG_NAMESPACE=aios-gang pytest -m cluster tests/k8s/test_cluster_gang.py

Twelve consoles, one source each, plan a 4×8 gang from the same view and launch at once. With F nodes of 8
free GPUs, exactly F // 4 gangs may start, every rank of a started gang is bound, and no other gang has a
bound pod (a partial gang holds nothing). Every Job it made is deleted afterwards (foreground propagation).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from kubernetes import client, config

from aios_tui.config import KubernetesSettings
from aios_tui.ops import Actor, AuditLog, Ops, Role
from aios_tui.poll import Poller
from aios_tui.sources.base import LaunchSpec
from aios_tui.sources.kubernetes import sources_from_settings
from tests.actions import launch_args

NS = os.environ.get("AIOS_TUI_GANG_NAMESPACE", "")
CONSOLES = 12
INDEX = "batch.kubernetes.io/job-completion-index"

pytestmark = [
    pytest.mark.cluster,
    pytest.mark.skipif(not os.environ.get("KUBECONFIG"), reason="no $KUBECONFIG: no cluster to run against"),
    pytest.mark.skipif(not NS, reason="AIOS_TUI_GANG_NAMESPACE names no scratch namespace: launches nothing"),
]


def api() -> client.ApiClient:
    return config.new_client_from_config()


async def console(audit: Path) -> tuple[Poller, Ops]:
    (source,) = sources_from_settings(KubernetesSettings(enabled=True, timeout=30.0))
    poller = Poller([source])
    await poller.refresh()
    ops = Ops(poller.sources, lambda: poller.snapshot, AuditLog(audit), actor=Actor("gang-test", Role.ADMIN))
    return poller, ops


@pytest.fixture
async def consoles(tmp_path: Path) -> AsyncIterator[list[tuple[Poller, Ops]]]:
    made = [await console(tmp_path / f"audit-{i}.jsonl") for i in range(CONSOLES)]
    yield made
    for poller, _ in made:
        await poller.stop()
    batch = client.BatchV1Api(api())
    for i in range(CONSOLES):
        try:
            batch.delete_namespaced_job(f"aios-gang-{i:02d}", NS, propagation_policy="Foreground")
        except client.ApiException as exc:
            if exc.status != 404:
                raise


async def test_twelve_concurrent_gangs_leave_no_partial_gang_holding_gpus(
    consoles: list[tuple[Poller, Ops]],
) -> None:
    snap = consoles[0][0].snapshot
    free = [n for n in snap.nodes if n.gpus_allocatable >= 8 and n.gpus_free >= 8 and not n.cordoned]
    fit = len(free) // 4
    if fit == 0:
        pytest.skip(f"{len(free)} nodes with 8 free GPUs: not one 4×8 gang fits")
    plans = [
        ops.plan("launch", **launch_args(LaunchSpec(NS, f"aios-gang-{i:02d}", "busybox:1.36", 4, 8)))
        for i, (_, ops) in enumerate(consoles)
    ]
    assert all(p.ok for p in plans), [p.blockers for p in plans]
    results = await asyncio.gather(
        *(ops.execute(p) for (_, ops), p in zip(consoles, plans, strict=True)), return_exceptions=True
    )
    assert not [r for r in results if isinstance(r, BaseException)], results

    core = client.CoreV1Api(api())
    deadline = time.monotonic() + 120.0
    while True:
        pods = core.list_namespaced_pod(NS, label_selector="job-name").items
        by_job: dict[str, list[client.V1Pod]] = {}
        for pod in pods:
            by_job.setdefault(pod.metadata.labels["job-name"], []).append(pod)
        bound = {job: sum(1 for p in ps if p.spec.node_name) for job, ps in by_job.items()}
        started = sorted(job for job, n in bound.items() if n == 4)
        if len(started) >= fit or time.monotonic() > deadline:
            break
        await asyncio.sleep(2.0)
    partial = {job: n for job, n in bound.items() if 0 < n < 4}
    assert not partial, f"gangs holding GPUs without all their ranks: {partial}"
    assert len(started) == fit, f"{started} started; {len(free)} free 8-GPU nodes fit {fit}"
