"""The Azure source against a protocol-level ARM and Entra ID server (tests/azure/armserver.py, built from
Azure's API descriptions), reached by the official SDKs over HTTPS with their own credential chain, nothing
patched: VMs → nodes, scale sets and AKS agent pools → pools, prices, pages, scaling, the join with
Kubernetes nodes, and the errors that matter on call (throttling, expired or refused credentials, access
denied on one API, an unknown subscription), with no credential in any output."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from aios_tui.config import AzureSettings, CloudPriceSettings, ConfigError, KubernetesSettings, Settings
from aios_tui.domain import NA, NodePool, SourceState
from aios_tui.domain.text import is_clean
from aios_tui.ops.audit import AuditEntry, AuditLog
from aios_tui.poll import Poller
from aios_tui.sources import build_sources
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.clouds.azure.prices import CATALOGUE
from aios_tui.sources.clouds.base import CloudSource
from aios_tui.sources.kubernetes import sources_from_settings
from tests.azure.armserver import ArmServer, denied, expired, throttled, vm
from tests.azure.conftest import FAKE_SECRET, SECRETS, SUB_A, SUB_B, TENANT, Scene
from tests.cloud_paths import pools_view, run_cli
from tests.k8s.apiserver import FakeApiServer, fixture_scene

SUB_GONE = "33333333-3333-4333-8333-333333333333"
CREATED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC).timestamp()
"""timeCreated of the scene's plain VMs (a fixed date, not the wall clock)."""
SCALE_SET_VM_CREATED = datetime(2026, 5, 2, 10, 0, tzinfo=UTC).timestamp()


def azure_source(url: str, **kw: object) -> CloudSource:
    settings = AzureSettings(enabled=True, subscriptions=(SUB_A, SUB_B), endpoint_url=url, timeout=5.0)
    settings = dataclasses.replace(settings, **kw)  # type: ignore[arg-type]
    (src,) = build_sources(Settings(azure=settings))
    assert isinstance(src, CloudSource)
    return src


@pytest.fixture
def source(scene: Scene) -> Iterator[CloudSource]:
    src = azure_source(scene.url)
    yield src
    src._provider.close()


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, "a credential leaked"


def pool(data: SourceData, name: str) -> NodePool:
    (found,) = [p for p in data.pools if p.name == name]
    return found


def arm_calls(arm: ArmServer, operation: str, subscription: str = "") -> int:
    return sum(1 for r in arm.requests if r.operation == operation and subscription.lower() in r.path.lower())


# --- what it shows ------------------------------------------------------------------------------------------


async def test_gpu_vms_become_nodes_with_kubernetes_provider_ids(scene: Scene, source: CloudSource) -> None:
    data = await source.fetch()
    by = {n.name: n for n in data.nodes}
    assert set(by) == {
        "h100-train-0",
        "a100-spot-1",
        "t4-parked",
        "gb200-try",
        "a100-eu",
        "gpu-batch000000",
        "gpu-batch000001",
        "aks-gpu-12345678-vmss000000",
        "aks-spotgpu-12345678-vmss000000",
        "flex-h100_0f3a9c",
        "t4-dev",
    }, "CPU VMs, CPU scale sets and the AKS system pool are left out"
    assert data.problems == ()
    assert data.context == f"azure {SUB_A}, {SUB_B} · all regions"

    h100 = by["h100-train-0"]
    assert (h100.instance_type, h100.gpu_model, h100.gpus_total, h100.gpus_allocatable) == (
        "Standard_ND96isr_H100_v5",
        "H100",
        8,
        8,
    )
    assert (h100.zone, h100.lifecycle, h100.instance_state, h100.ready, h100.pool) == (
        "eastus-2",
        "on-demand",
        "running",
        True,
        "azure-vm",
    )
    assert h100.provider_id == scene.provider_id("h100"), "resource group in lower case, as Kubernetes has it"
    assert h100.price_per_hour == 98.32
    assert h100.launched_at == CREATED

    aks = by["aks-gpu-12345678-vmss000000"]
    assert aks.provider_id == scene.provider_id("aks-gpu-0")
    assert (aks.pool, aks.zone, aks.ready, aks.launched_at) == (
        "prod-aks/gpu",
        "eastus-1",
        False,
        SCALE_SET_VM_CREATED,
    )
    (cond,) = aks.conditions  # a node of prod-aks that no Kubernetes source reports
    assert (cond.reason, cond.message) == ("NotInCluster", "Azure VM running, not a node of cluster prod-aks")
    assert by["aks-spotgpu-12345678-vmss000000"].lifecycle == "spot"
    assert [by[f"gpu-batch00000{n}"].zone for n in (0, 1)] == ["eastus-1", "eastus-2"]
    flex = by["flex-h100_0f3a9c"]
    assert (flex.pool, flex.gpu_model, flex.price_per_hour, flex.ready) == ("flex-h100", "H100", 6.98, True)

    spot = by["a100-spot-1"]
    assert (spot.lifecycle, spot.price_per_hour) == ("spot", NA), "no spot price is bundled or quoted"
    parked = by["t4-parked"]
    assert (parked.instance_state, parked.ready, parked.price_per_hour, parked.gpus_allocatable) == (
        "stopped",
        False,
        0.0,
        0,
    )
    gb200 = by["gb200-try"]  # a size the table lacks: its GPUs from Microsoft.Compute/skus, no price
    assert (gb200.gpu_model, gb200.gpus_total, gb200.price_per_hour) == ("GB200", 4, NA)
    eu = by["a100-eu"]
    assert (eu.zone, eu.price_per_hour) == ("", 3.673), "no zone; East US's list price in every region"
    assert by["t4-dev"].provider_id.startswith(f"azure:///subscriptions/{SUB_B}/resourceGroups/research/")


async def test_pools_are_gpu_scale_sets_and_aks_agent_pools(scene: Scene, source: CloudSource) -> None:
    data = await source.fetch()
    assert {p.name for p in data.pools} == {"gpu-batch", "flex-h100", "prod-aks/gpu", "prod-aks/spotgpu"}, (
        "CPU pools and the scale sets behind agent pools are left out"
    )
    batch = pool(data, "gpu-batch")
    assert (batch.kind, batch.region, batch.instance_types, batch.zones) == (
        "vmss",
        "eastus",
        ("Standard_NC24ads_A100_v4",),
        ("eastus-1", "eastus-2"),
    )
    assert (batch.min_size, batch.desired, batch.max_size, batch.nodes) == (0, 2, 100, 2)
    assert (batch.gpu_model, batch.gpus_per_node, batch.lifecycle, batch.price_per_hour) == (
        "A100",
        1,
        "on-demand",
        3.673,
    )
    gpu = pool(data, "prod-aks/gpu")
    assert (gpu.kind, gpu.min_size, gpu.desired, gpu.max_size, gpu.nodes) == ("aks-agentpool", 0, 1, 1000, 1)
    assert (gpu.gpu_model, gpu.gpus_per_node, gpu.zones, gpu.price_per_hour) == (
        "H100",
        8,
        ("eastus-1", "eastus-2"),
        98.32,
    )
    flex = pool(data, "flex-h100")
    assert (flex.kind, flex.min_size, flex.desired, flex.max_size, flex.nodes) == ("vmss", 0, 1, 1000, 1)
    spot = pool(data, "prod-aks/spotgpu")
    assert (spot.min_size, spot.desired, spot.max_size, spot.lifecycle) == (0, 1, 4, "spot")


async def test_listing_follows_next_links_across_pages(scene: Scene) -> None:
    a = scene.arm.sub(SUB_A)
    for n in range(7):
        a.vms.append(vm(SUB_A, "Fleet", f"t4-{n}", "Standard_NC4as_T4_v3", zone=str(n % 3 + 1)))
    src = azure_source(scene.url, subscriptions=(SUB_A,))
    data = await src.fetch()
    assert {f"t4-{n}" for n in range(7)} <= {n.name for n in data.nodes}
    assert next(n for n in data.nodes if n.name == "t4-6").instance_state == "running", "status from page 7"
    pages = [
        r.query.get("$skiptoken", "0") for r in scene.arm.requests if r.operation == "VirtualMachines_ListAll"
    ]
    # 14 VMs in pages of 2: 7 pages, for the model and for the status list each.
    assert sorted(pages) == sorted(["0", "2", "4", "6", "8", "10", "12"] * 2)
    assert all(
        r.query["api-version"] == "2024-11-01"
        for r in scene.arm.requests
        if r.operation == "VirtualMachines_ListAll"
    )


async def test_config_prices_override_the_table_per_region(scene: Scene) -> None:
    src = azure_source(
        scene.url,
        prices=(
            CloudPriceSettings(instance_type="Standard_NC24ads_A100_v4", region="westeurope", price=4.28),
            CloudPriceSettings(
                instance_type="Standard_NC24ads_A100_v4", price=1.1
            ),  # spot or not, all regions
        ),
    )
    by = {n.name: n for n in (await src.fetch()).nodes}
    assert (by["a100-eu"].price_per_hour, by["a100-spot-1"].price_per_hour) == (4.28, 1.1)
    assert by["h100-train-0"].price_per_hour == 98.32


async def test_regions_limit_what_shows(scene: Scene) -> None:
    src = azure_source(scene.url, regions=("westeurope",))
    data = await src.fetch()
    assert [n.name for n in data.nodes] == ["a100-eu"]
    assert data.pools == ()
    assert data.context.endswith("· westeurope")


# --- scaling ------------------------------------------------------------------------------------------------


async def test_scale_pool_reaches_arm_for_a_scale_set_and_an_agent_pool(
    scene: Scene, source: CloudSource
) -> None:
    await source.fetch()
    await source.scale_pool("gpu-batch", 3)
    (patch,) = [r for r in scene.arm.requests if r.operation == "VirtualMachineScaleSets_Update"]
    assert (patch.method, patch.path, patch.body) == (
        "PATCH",
        f"/subscriptions/{SUB_A}/resourceGroups/Batch/providers/Microsoft.Compute/virtualMachineScaleSets/gpu-batch",
        {"sku": {"name": "Standard_NC24ads_A100_v4", "tier": "Standard", "capacity": 3}},
    )
    await source.scale_pool("prod-aks/gpu", 2)
    (put,) = [r for r in scene.arm.requests if r.operation == "AgentPools_CreateOrUpdate"]
    assert put.method == "PUT" and put.path.endswith("/managedClusters/prod-aks/agentPools/gpu")
    assert (put.body["properties"]["count"], put.body["properties"]["vmSize"]) == (
        2,
        "Standard_ND96isr_H100_v5",
    )

    data = await source.fetch()
    assert (pool(data, "gpu-batch").desired, pool(data, "gpu-batch").nodes) == (3, 3)
    assert (pool(data, "prod-aks/gpu").desired, pool(data, "prod-aks/gpu").nodes) == (2, 2)
    assert "gpu-batch000002" in {n.name for n in data.nodes}

    with pytest.raises(
        SourceError, match=r"cannot scale prod-aks/spotgpu: the cluster autoscaler is on for it \(0\.\.4"
    ):
        await source.scale_pool("prod-aks/spotgpu", 2)
    assert arm_calls(scene.arm, "AgentPools_CreateOrUpdate") == 1, "nothing sent for the autoscaled pool"
    with pytest.raises(SourceError, match=r"desired 101 is outside its size limits 0\.\.100"):
        await source.scale_pool("gpu-batch", 101)


async def test_a_refused_scale_keeps_arms_message(scene: Scene, source: CloudSource) -> None:
    await source.fetch()
    scene.arm.faults["AgentPools_CreateOrUpdate"] = dataclasses.replace(
        denied("Microsoft.ContainerService/managedClusters/agentPools/write", "/subscriptions/x"),
        status=409,
        code="OperationNotAllowed",
        message="Operation is not allowed because there's an in progress update managed cluster operation. "
        "token=abc123secret\n\x1b[2J",
    )
    with pytest.raises(SourceError) as err:
        await source.scale_pool("prod-aks/gpu", 3)
    msg = str(err.value)
    assert msg.startswith(
        "Microsoft.ContainerService agentPools update of prod-aks/gpu: OperationNotAllowed (Operation is"
    )
    assert "abc123secret" not in msg and "token=***" in msg
    assert is_clean(msg) and "\x1b" not in msg


# --- the join with Kubernetes -------------------------------------------------------------------------------


async def test_one_row_per_aks_node_with_both_views(scene: Scene, tmp_path: Path) -> None:
    objects = fixture_scene()
    for obj in objects:  # the cluster's gpu-node-1 is the AKS node, as cloud-provider-azure names it
        if obj["kind"] == "Node" and obj["metadata"]["name"] == "gpu-node-1":
            obj["spec"]["providerID"] = scene.provider_id("aks-gpu-0")
    with FakeApiServer(objects) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        (k8s,) = sources_from_settings(KubernetesSettings(enabled=True, kubeconfig=kubeconfig), env={})
        poller = Poller([k8s, azure_source(scene.url)])
        try:
            snap = await poller.refresh()
        finally:
            await poller.stop()
    names = {n.name for n in snap.nodes}
    assert "aks-gpu-12345678-vmss000000" not in names, "the scale set VM merged into its Kubernetes node"
    node = snap.node_by_name["gpu-node-1"]
    assert node.source.startswith("k8s")
    assert (node.instance_state, node.lifecycle, node.provider_id, node.price_per_hour) == (
        "running",
        "on-demand",
        scene.provider_id("aks-gpu-0"),
        98.32,
    )
    assert {s.name: s.state for s in snap.sources} == {"k8s:test": SourceState.OK, "azure": SourceState.OK}


# --- errors -------------------------------------------------------------------------------------------------


async def test_throttling_is_retried_as_retry_after_says_then_succeeds(scene: Scene) -> None:
    scene.arm.faults["VirtualMachines_ListAll"] = throttled(503, retry_after=1, times=2)
    data = await azure_source(scene.url, subscriptions=(SUB_A,)).fetch()
    assert "h100-train-0" in {n.name for n in data.nodes} and data.problems == ()
    first, second, third = scene.arm.arrivals("VirtualMachines_ListAll")[:3]
    # Measured on the server's monotonic clock: each retry waited the second Retry-After asked for.
    assert second - first >= 0.9 and third - second >= 0.9


async def test_throttling_that_outlasts_the_retries_fails_and_the_poller_keeps_the_last_data(
    scene: Scene, source: CloudSource
) -> None:
    poller = Poller([source], max_backoff=5.0)
    try:
        first = await poller.refresh()
        assert first.sources[0].state is SourceState.OK
        count = len(first.nodes)
        scene.arm.faults["VirtualMachines_ListAll"] = throttled(429, retry_after=1)
        scene.arm.requests.clear()
        second = await poller.refresh()
    finally:
        await poller.stop()
    health = second.sources[0]
    assert health.state is SourceState.STALE
    assert "Azure is throttling Microsoft.Compute virtualMachines list in subscription" in health.error
    assert "(SubscriptionRequestsThrottled) after 3 tries: backing off" in health.error
    assert len(second.nodes) == count, "the last good data stays"
    # Both subscriptions are listed side by side and either may give up first, ending the fetch: the one
    # the error names was tried max_attempts (3) times, the first try included.
    named = SUB_A if SUB_A in health.error else SUB_B
    assert arm_calls(scene.arm, "VirtualMachines_ListAll", named) == 3


@pytest.mark.parametrize("attempts", [1, 2, 4])
def test_max_attempts_counts_the_first_try(scene: Scene, attempts: int) -> None:
    from aios_tui.sources.clouds.azure.provider import AzureProvider

    scene.arm.faults["ManagedClusters_List"] = throttled(429, retry_after=1)
    p = AzureProvider(subscriptions=(SUB_A,), endpoint_url=scene.url, timeout=5.0, max_attempts=attempts)
    try:
        p.begin()
        with pytest.raises(SourceError, match=rf"after {attempts} tries"):
            p.pools(SUB_A)
    finally:
        p.close()
    assert arm_calls(scene.arm, "ManagedClusters_List") == attempts


def test_a_retry_after_longer_than_a_call_may_take_is_not_waited_for(scene: Scene) -> None:
    from aios_tui.sources.clouds.azure.provider import AzureProvider

    scene.arm.faults["VirtualMachineScaleSets_ListAll"] = throttled(429, retry_after=3600)
    p = AzureProvider(subscriptions=(SUB_A,), endpoint_url=scene.url, timeout=5.0)
    try:
        p.begin()
        with pytest.raises(SourceError) as err:
            p.pools(SUB_A)
    finally:
        p.close()
    assert str(err.value) == (
        f"Azure is throttling Microsoft.Compute virtualMachineScaleSets list in subscription {SUB_A} "
        "(SubscriptionRequestsThrottled) and asks to wait 3600 s, longer than a call's timeout (5 s): "
        "backing off"
    )
    assert arm_calls(scene.arm, "VirtualMachineScaleSets_ListAll") == 1


async def test_an_expired_token_fails_the_fetch_saying_what_to_do(scene: Scene, source: CloudSource) -> None:
    scene.arm.faults["VirtualMachines_ListAll"] = expired(scene.url, TENANT)
    with pytest.raises(SourceError) as err:
        await source.fetch()
    msg = str(err.value)
    assert msg == (
        "Azure credentials expired or invalid (ExpiredAuthenticationToken): run az login, or renew the "
        "secret in AZURE_CLIENT_SECRET"
    )
    assert all(arm_calls(scene.arm, "VirtualMachines_ListAll", s) <= 1 for s in (SUB_A, SUB_B)), "no retries"
    no_secret_in(msg, repr(err.value))


async def test_authorization_failed_on_aks_only_is_partial(scene: Scene, source: CloudSource) -> None:
    scene.arm.faults["ManagedClusters_List"] = denied(
        "Microsoft.ContainerService/managedClusters/read", f"/subscriptions/{SUB_A}"
    )
    poller = Poller([source])
    try:
        snap = await poller.refresh()
    finally:
        await poller.stop()
    health = snap.sources[0]
    assert health.state is SourceState.PARTIAL
    assert (
        f"Microsoft.ContainerService managedClusters list in subscription {SUB_A}: access denied: "
        "AuthorizationFailed (The client '5f1c7d2e-0000-4000-8000-00000000c0de'"
    ) in health.error
    assert {"h100-train-0", "gpu-batch000000", "t4-dev"} <= set(snap.node_by_name)
    # Without the clusters, an AKS node is its scale set's VM, and no agent pool shows.
    assert snap.node_by_name["aks-gpu-12345678-vmss000000"].pool == "aks-gpu-12345678-vmss"
    assert {p.name for p in snap.pools} == {"gpu-batch", "flex-h100"}


async def test_an_unknown_subscription_is_one_problem_and_the_others_show(scene: Scene) -> None:
    src = azure_source(scene.url, subscriptions=(SUB_A, SUB_GONE))
    data = await src.fetch()
    assert data.problems == (
        f"subscription {SUB_GONE}: SubscriptionNotFound (The subscription '{SUB_GONE}' could not be found.)",
    )
    assert "h100-train-0" in {n.name for n in data.nodes}


async def test_a_subscription_of_another_tenant_is_one_problem(scene: Scene, source: CloudSource) -> None:
    """ARM refuses the token for a subscription outside the credential's tenant: that subscription alone."""
    for op in ("VirtualMachines_ListAll", "VirtualMachineScaleSets_ListAll", "ManagedClusters_List"):
        fault = expired(scene.url, TENANT)
        scene.arm.faults[op] = dataclasses.replace(
            fault,
            code="InvalidAuthenticationTokenTenant",
            message="The access token is from the wrong issuer. It must match the tenant associated with "
            "this subscription.",
            subscription=SUB_B,
        )
    data = await source.fetch()
    assert data.problems == (
        f"subscription {SUB_B} belongs to another tenant than the credential's "
        "(InvalidAuthenticationTokenTenant): sign in to its tenant (az login --tenant …, or AZURE_TENANT_ID)",
    )
    assert "h100-train-0" in {n.name for n in data.nodes} and "t4-dev" not in {n.name for n in data.nodes}


async def test_a_malformed_object_is_skipped_and_counted(scene: Scene, source: CloudSource) -> None:
    a = scene.arm.sub(SUB_A)
    del a.vms[0]["properties"]["hardwareProfile"]  # h100-train-0
    a.agent_pools[a.clusters[0]["id"].lower()][1]["properties"]["count"] = "one"  # prod-aks/gpu
    data = await source.fetch()
    assert "1 VM skipped: the answer lacks hardwareProfile.vmSize" in data.problems
    assert (
        f"Microsoft.ContainerService agentPools list in subscription {SUB_A}: the answer could not be read "
        "(DeserializationError)"
    ) in data.problems
    names = {n.name for n in data.nodes}
    assert "h100-train-0" not in names and "a100-spot-1" in names, "the other VMs still show"
    assert {p.name for p in data.pools} == {"gpu-batch", "flex-h100"}


def test_the_server_speaks_arm_to_requests_the_api_description_refuses(scene: Scene) -> None:
    """The test server is only worth its answers: a wrong api-version, a path no operation has and a call
    without the bearer token get ARM's answers."""
    base = f"{scene.url}/subscriptions/{SUB_A}/providers/Microsoft.Compute/virtualMachines"
    token = {"Authorization": f"Bearer {scene.arm.token}"}
    scene.arm.tokens_issued = 1  # as if signed in: these requests are the test's own, not the SDK's
    verify = str(scene.arm.ca_file)
    r = requests.get(base, params={"api-version": "2019-07-01"}, headers=token, verify=verify, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidApiVersionParameter")
    assert "'2019-07-01' is invalid. The supported versions are '2024-11-01'" in r.json()["error"]["message"]
    r = requests.get(
        f"{base}/nope/deeper", params={"api-version": "2024-11-01"}, headers=token, verify=verify, timeout=5
    )
    assert r.status_code == 404
    r = requests.get(base, params={"api-version": "2024-11-01"}, verify=verify, timeout=5)
    assert (r.status_code, r.json()["error"]["code"]) == (401, "AuthenticationFailed")
    assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
    r = requests.get(
        f"{scene.url}/subscriptions/not-a-guid/providers/Microsoft.ContainerService/managedClusters",
        params={"api-version": "2025-10-01"},
        headers=token,
        verify=verify,
        timeout=5,
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "InvalidSubscriptionId")


# --- credentials --------------------------------------------------------------------------------------------


async def test_the_sign_in_is_what_msal_asks_of_entra_once(scene: Scene, source: CloudSource) -> None:
    await source.fetch()
    await source.fetch()
    assert scene.arm.entra_requests == [
        ("GET", f"/{TENANT}/v2.0/.well-known/openid-configuration"),
        ("POST", f"/{TENANT}/oauth2/v2.0/token"),
    ], "no instance discovery (a private authority host), and the token is cached across fetches"
    assert scene.arm.tokens_issued == 1


async def test_no_credential_anywhere_says_where_it_looked(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET", "AZURE_TENANT_ID"):
        monkeypatch.delenv(var)
    monkeypatch.setenv("PATH", str(tmp_path))  # no az, pwsh or azd, whatever this machine has
    monkeypatch.setenv("AZURE_TOKEN_CREDENTIALS", "dev")  # no managed identity probe (CI runs on cloud VMs)
    src = azure_source(scene.url)
    for _ in range(2):
        with pytest.raises(SourceError) as err:
            await src.fetch()
        assert str(err.value).startswith("no Azure credentials found (looked in the environment")
        assert str(err.value).endswith(
            "run az login, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
        )
    assert scene.arm.requests == [], "nothing reached ARM"


async def test_a_refused_client_secret_says_so_without_the_secret(
    scene: Scene, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "aiosTuiWrongSecret~NotTheOne.0123456789"
    monkeypatch.setenv("AZURE_CLIENT_SECRET", wrong)
    src = azure_source(scene.url)
    with pytest.raises(SourceError) as err:
        await src.fetch()
    assert str(err.value) == (
        "Azure sign-in refused (EnvironmentCredential): AADSTS7000215: run az login, or check "
        "AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
    )
    assert wrong not in str(err.value) and wrong not in caplog.text


async def test_no_credential_in_any_output_log_or_audit_line(
    scene: Scene, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    src = azure_source(scene.url)
    poller = Poller([src])
    texts: list[str] = []
    audit = AuditLog(tmp_path / "audit.jsonl")
    try:
        snap = await poller.refresh()
        await src.scale_pool("gpu-batch", 1)
        for op, fault in (
            ("VirtualMachines_ListAll", throttled(429, retry_after=1)),
            ("VirtualMachines_ListAll", expired(scene.url, TENANT)),
            ("ManagedClusters_List", denied("Microsoft.ContainerService/managedClusters/read", "/")),
        ):
            scene.arm.faults = {op: fault}
            snap = await poller.refresh()
            texts.extend(f"{h.state} {h.error}" for h in snap.sources)
            scene.arm.faults = {"VirtualMachineScaleSets_Update": fault}
            try:
                await src.scale_pool("gpu-batch", 2)
            except SourceError as exc:
                texts.append(str(exc))
                audit.append(
                    AuditEntry(
                        ts="2026-11-30T00:00:00Z",
                        user="oncall",
                        host="h",
                        role="admin",
                        action="scale-pool",
                        target="gpu-batch",
                        source=src.name,
                        title="scale gpu-batch to 2",
                        outcome="failed",
                        message=str(exc),
                    )
                )
    finally:
        await poller.stop()
    assert any("throttling" in t for t in texts) and any("expired" in t for t in texts)
    assert any("access denied" in t for t in texts)
    texts += [src._provider.context, repr(snap), caplog.text, (tmp_path / "audit.jsonl").read_text()]
    assert caplog.records, "something was logged at DEBUG"
    no_secret_in(*texts)
    for name in ("azure", "msal", "urllib3"):
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING


# --- subscriptions and settings -----------------------------------------------------------------------------


def _write_profile(folder: Path, subscriptions: list[dict[str, object]]) -> None:
    """azureProfile.json as az writes it: UTF-8 with a byte-order mark."""
    text = json.dumps({"installationId": "x", "subscriptions": subscriptions})
    (folder / "azureProfile.json").write_text(text, encoding="utf-8-sig")


async def test_subscriptions_default_to_the_environment_then_to_az(
    scene: Scene, azure_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_profile(
        azure_env,
        [
            {"id": SUB_A, "name": "ML Production", "isDefault": False, "tenantId": TENANT},
            {"id": SUB_B, "name": "Research", "isDefault": True, "tenantId": TENANT},
        ],
    )
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", SUB_A.upper())
    src = azure_source(scene.url, subscriptions=())
    assert src._provider.scopes == (SUB_A,)
    assert src._provider.context == "azure ML Production · all regions"
    monkeypatch.delenv("AZURE_SUBSCRIPTION_ID")
    src = azure_source(scene.url, subscriptions=())
    assert (src._provider.scopes, src._provider.context) == ((SUB_B,), "azure Research · all regions")
    assert {n.name for n in (await src.fetch()).nodes} == {"t4-dev"}

    _write_profile(azure_env, [])
    src = azure_source(scene.url, subscriptions=())
    with pytest.raises(SourceError, match=r"no Azure subscription to list: set \[azure\] subscriptions"):
        await src.fetch()
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "prod")
    with pytest.raises(ConfigError) as err:
        azure_source(scene.url, subscriptions=())
    assert str(err.value).endswith(
        "[azure] subscriptions: AZURE_SUBSCRIPTION_ID is not a subscription ID (a GUID): 'prod'"
    )


# --- hostile answers ----------------------------------------------------------------------------------------

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u202e\u200b\n"
"""A title change (OSC 0), a screen wipe (CSI 2J), a bidi override, a zero-width space and a line break:
JSON carries ESC and every other control character as it is."""


async def test_names_and_tags_tenants_write_come_out_clean(scene: Scene, source: CloudSource) -> None:
    a = scene.arm.sub(SUB_A)
    a.vms.append(
        vm(
            SUB_A,
            "ML-Prod",
            f"evil{HOSTILE}",
            "Standard_NC4as_T4_v3",
            tags={"aks-managed-cluster-name": f"prod{HOSTILE}", "aks-managed-poolName": "p" + "x" * 5000},
        )
    )
    data = await source.fetch()
    texts = [t for kind in (data.nodes, data.pools) for n in kind for t in _strings(n)]
    assert len(texts) > 50
    for text in texts:
        assert is_clean(text) and len(text) <= 256, repr(text[:80])
        assert not any(c in text for c in "\x1b\x07\u202e\u200b\n"), repr(text[:80])
    evil = next(n for n in data.nodes if n.name.startswith("evil"))
    (cond,) = evil.conditions
    assert cond.message.rstrip().endswith("not a node of cluster prod")  # the escapes went, their payload too
    assert evil.pool.startswith("prod") and evil.pool.endswith("…")


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _strings(v)


# --- the catalogue ------------------------------------------------------------------------------------------


def test_the_catalogue_has_the_gpu_sizes_with_their_gpus() -> None:
    assert (CATALOGUE.provider, CATALOGUE.home_region) == ("azure", "eastus")
    shapes = {t.name: (t.gpu_model, t.gpus) for t in CATALOGUE.types.values()}
    assert shapes["Standard_ND96isr_H100_v5"] == ("H100", 8)
    assert shapes["Standard_ND96isr_H200_v5"] == ("H200", 8)
    assert shapes["Standard_ND96amsr_A100_v4"] == ("A100", 8)
    assert shapes["Standard_NC80adis_H100_v5"] == ("H100", 2)
    assert shapes["Standard_NC64as_T4_v3"] == ("T4", 4)
    assert shapes["Standard_NC24rs_v3"] == ("V100", 4)
    assert shapes["Standard_NV6ads_A10_v5"] == ("A10 (1/6 GPU)", 1), "a share of a GPU, as AWS's g6f"
    for t in CATALOGUE.types.values():
        assert t.name.startswith("Standard_") and t.gpus > 0 and t.price_per_hour > 0, t.name
    assert CATALOGUE.price("Standard_NC24ads_A100_v4", spot=True) is NA, "no spot list price bundled"


def test_provider_holds_no_credential_and_quiets_the_sdk_loggers(azure_env: Path) -> None:
    from aios_tui.sources.clouds.azure.provider import AzureProvider

    p = AzureProvider(subscriptions=(SUB_A,), endpoint_url="https://127.0.0.1:9")
    try:
        no_secret_in(p.context, repr(p), repr(vars(p)))
    finally:
        p.close()
    assert logging.getLogger("azure").getEffectiveLevel() >= logging.WARNING
    assert os.environ["AZURE_CLIENT_SECRET"] == FAKE_SECRET


async def test_a_vm_stopped_from_inside_is_still_billed_and_vms_sharing_a_name_are_two_rows(
    scene: Scene, source: CloudSource
) -> None:
    """Azure bills a VM stopped from its OS (PowerState/stopped) until it is deallocated; and a VM name is
    unique only in its resource group: two VMs of one name (a mirrored environment) are two rows, each named
    by its resource group, in one source and across two subscriptions alike."""
    sub_a, sub_b = scene.arm.sub(SUB_A), scene.arm.sub(SUB_B)
    sub_a.vms.append(vm(SUB_A, "ml-prod", "t4-halted", "Standard_NC4as_T4_v3", state="stopped"))
    sub_a.vms.append(vm(SUB_A, "ml-staging", "h100-train-0", "Standard_ND96isr_H100_v5"))
    sub_b.vms.append(vm(SUB_B, "research", "a100-spot-1", "Standard_NC24ads_A100_v4"))
    sub_b.vms.append(vm(SUB_B, "ML-Prod", "h100-train-0", "Standard_ND96isr_H100_v5"))
    data = await source.fetch()
    by = {n.name: n for n in data.nodes}
    assert by["t4-halted"].instance_state == "stopped"
    assert by["t4-halted"].price_per_hour == CATALOGUE.price("Standard_NC4as_T4_v3", "eastus") > 0
    assert by["t4-parked"].price_per_hour == 0.0, "deallocated: not billed"
    # One name in two resource groups: each by its group; the same group name in two subscriptions too:
    # each by its provider ID, which no two machines share.
    assert {"research/a100-spot-1", "ML-Prod/a100-spot-1"} <= set(by)
    h100s = sorted(n for n in by if n.endswith("h100-train-0"))
    assert h100s == sorted(
        [
            "ml-staging/h100-train-0",
            f"azure:///subscriptions/{SUB_A}/resourceGroups/ml-prod/providers/Microsoft.Compute/virtualMachines/"
            "h100-train-0",
            f"azure:///subscriptions/{SUB_B}/resourceGroups/ml-prod/providers/Microsoft.Compute/virtualMachines/"
            "h100-train-0",
        ]
    )
    assert len(data.nodes) == len(by), "no two rows share a name"


# --- the console's and the CLI's path ----------------------------------------------------------------------


def test_the_cli_shows_azure_and_scales_a_pool_through_plan_confirmation_and_audit(
    scene: Scene, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an on-call engineer types: ``snapshot --json`` shows the VMs, pools and prices; ``plan`` and
    ``act scale-pool`` go through the same plan, role check and audit log as every action; an agent pool the
    cluster autoscaler sizes is refused at the plan, before any confirmation."""
    audit = tmp_path / "audit.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(
        f'user = "oncall"\naudit_path = "{audit}"\n'
        f'[azure]\nenabled = true\nsubscriptions = ["{SUB_A}", "{SUB_B}"]\nendpoint_url = "{scene.url}"\n'
    )
    code, out, err = run_cli(capsys, "--config", str(config), "snapshot", "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert nodes["h100-train-0"]["provider_id"] == scene.provider_id("h100")
    assert (
        nodes["h100-train-0"]["price_per_hour"] == CATALOGUE.types["Standard_ND96isr_H100_v5"].price_per_hour
    )
    pools = {p["name"]: p for p in doc["pools"]}
    assert (pools["gpu-batch"]["kind"], pools["prod-aks/gpu"]["kind"]) == ("vmss", "aks-agentpool")
    assert [s["name"] for s in doc["sources"]] == ["azure"]

    code, out, err = run_cli(capsys, "--config", str(config), "plan", "scale-pool", "gpu-batch", "+1")
    assert code == 0, err
    assert "2 → 3" in out and arm_calls(scene.arm, "VirtualMachineScaleSets_Update") == 0

    act = ("--config", str(config), "act", "scale-pool")
    code, out, err = run_cli(capsys, *act, "gpu-batch", "+1", "--yes")
    assert code == 0, err
    assert arm_calls(scene.arm, "VirtualMachineScaleSets_Update") == 1
    last = json.loads(audit.read_text(encoding="utf-8").splitlines()[-1])
    assert (last["action"], last["target"], last["user"], last["outcome"]) == (
        "scale-pool", "gpu-batch", "oncall", "ok",
    )  # fmt: skip

    code, _, err = run_cli(capsys, *act, "prod-aks/spotgpu", "+1", "--yes")
    assert code == 3 and "the cluster autoscaler is on for it (0..4 nodes)" in err
    code, _, err = run_cli(capsys, *act, "gpu-batch", "0", "--yes")  # shrinking needs an admin
    assert code == 3 and "may not scale-pool down" in err
    assert arm_calls(scene.arm, "VirtualMachineScaleSets_Update") == 1
    assert arm_calls(scene.arm, "AgentPools_CreateOrUpdate") == 0


async def test_the_console_shows_the_azure_pools(scene: Scene, tmp_path: Path) -> None:
    screen = await pools_view(azure_source(scene.url), tmp_path)
    for text in ("gpu-batch", "vmss", "prod-aks/gpu", "aks", "prod-aks/spotgpu"):
        assert text in screen, text


async def test_a_fetch_lists_scale_sets_and_clusters_once_per_subscription(
    scene: Scene, source: CloudSource
) -> None:
    """instances() and pools() both need a subscription's scale sets and AKS clusters: one fetch lists
    each once, whichever asks first (they asked twice), and the next fetch lists them again."""
    for n in (1, 2):
        data = await source.fetch()
        assert data.problems == ()
        for op in ("VirtualMachineScaleSets_ListAll", "ManagedClusters_List"):
            firsts = [  # a listing's first page: the next ones carry the $skiptoken of their nextLink
                r for r in scene.arm.requests
                if r.operation == op and SUB_A in r.path and "$skiptoken" not in r.query
            ]  # fmt: skip
            assert len(firsts) == n, op
    assert pool(data, "gpu-batch").nodes == 2, "what both listings read is still whole"
