"""The Azure provider's peers: the protocol-level ARM and Entra ID server of :mod:`tests.azure.armserver`,
reached by the official SDKs over HTTPS (its CA in REQUESTS_CA_BUNDLE, as a user behind their own CA would
set it), the client-secret sign-in of ``EnvironmentCredential`` pointed at it with AZURE_AUTHORITY_HOST,
and a small GPU fleet in two subscriptions."""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.azure.armserver import ArmServer, agent_pool, cluster, scale_set, scale_set_vm, sku, vm

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT_ID = "a0c1e2f3-0000-4000-8000-00000000a105"
# Distinctive fake secrets: the no-leak asserts look for each of them (and for their first 20 characters).
FAKE_SECRET = "aiosTuiFakeClientSecret~DoNotLeak.0123456789abc"
FAKE_TOKEN = "eyJhaW9zLXR1aSI6ImZha2UifQ.aiosTuiFakeAccessTokenDoNotLeak0123456789.c2lnbmF0dXJl"
SECRETS = (FAKE_SECRET, FAKE_TOKEN, FAKE_SECRET[:20], FAKE_TOKEN[20:60])

SUB_A = "11111111-1111-4111-8111-111111111111"
SUB_B = "22222222-2222-4222-8222-222222222222"


def require_azure() -> None:
    """The Azure SDKs; when they are not installed the test skips, or fails under ``CI=true``."""
    try:
        for module in ("azure.identity", "azure.mgmt.compute", "azure.mgmt.containerservice"):
            importlib.import_module(module)
    except ImportError as exc:
        why = f"the Azure SDKs are not installed ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true: scripts/test.sh installs the azure extra)")
        pytest.skip(f"{why}: pip install -e '.[azure]'")


@pytest.fixture
def arm(tmp_path: Path) -> Iterator[ArmServer]:
    require_azure()
    folder = tmp_path / "arm"
    folder.mkdir()
    server = ArmServer(
        folder, tenant=TENANT, client_id=CLIENT_ID, client_secret=FAKE_SECRET, token=FAKE_TOKEN
    )
    with server:
        yield server


_CLEARED = (
    "AZURE_",
    "IDENTITY_",
    "MSI_",
    "IMDS_",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "SSL_CERT_FILE",
)


@pytest.fixture
def azure_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, arm: ArmServer) -> Path:
    """The client-secret sign-in in the environment, against the test server, trusted through
    REQUESTS_CA_BUNDLE; no az profile (AZURE_CONFIG_DIR is an empty folder, returned for tests that write
    one); nothing else of the machine's (managed identity, a real login)."""
    for var in list(os.environ):
        if var.startswith(_CLEARED):
            monkeypatch.delenv(var)
    config = tmp_path / "azure-config"
    config.mkdir()
    monkeypatch.setenv("AZURE_CONFIG_DIR", str(config))
    monkeypatch.setenv("AZURE_TENANT_ID", TENANT)
    monkeypatch.setenv("AZURE_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", FAKE_SECRET)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", arm.url)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(arm.ca_file))
    return config


# --- the scene ----------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """What :func:`seed` put on the server."""

    arm: ArmServer
    ids: dict[str, str] = field(default_factory=dict)
    """Role → ARM resource ID."""

    @property
    def url(self) -> str:
        return self.arm.url

    def provider_id(self, role: str) -> str:
        """What Kubernetes' cloud-provider-azure writes for the machine: azure:// and the resource ID with
        its resource group in lower case, written out here rather than computed."""
        return _EXPECTED_PROVIDER_IDS[role]


_EXPECTED_PROVIDER_IDS = {
    "h100": f"azure:///subscriptions/{SUB_A}/resourceGroups/ml-prod/providers/Microsoft.Compute/virtualMachines/h100-train-0",
    "aks-gpu-0": f"azure:///subscriptions/{SUB_A}/resourceGroups/mc_prod-rg_prod-aks_eastus/providers/"
    "Microsoft.Compute/virtualMachineScaleSets/aks-gpu-12345678-vmss/virtualMachines/0",
}


def seed(arm: ArmServer) -> Scene:
    """Two subscriptions. A: a plain H100 VM (zone 2, tagged by a team), a spot A100 VM, a deallocated T4
    VM, a CPU VM, a VM of a size the table lacks (GB200, known through the SKU list), an A100 VM in
    westeurope; a GPU scale set ``gpu-batch`` (2 × NC24ads A100, zones 1-2) and a CPU one; an AKS cluster
    ``prod-aks`` with a CPU system pool, a GPU pool ``gpu`` (1 × ND H100 v5, by hand) and an autoscaled spot
    pool ``spotgpu`` (0..4), each GPU pool backed by a scale set in the node resource group. B: one T4 VM."""
    scene = Scene(arm)
    a = arm.sub(SUB_A)

    def add_vm(role: str, *args: Any, **kw: Any) -> None:
        v = vm(SUB_A, *args, **kw)
        a.vms.append(v)
        scene.ids[role] = v["id"]

    add_vm("h100", "ML-Prod", "h100-train-0", "Standard_ND96isr_H100_v5", zone="2", tags={"team": "ml"})
    add_vm("spot", "ML-Prod", "a100-spot-1", "Standard_NC24ads_A100_v4", zone="1", priority="Spot")
    add_vm("stopped", "ml-prod", "t4-parked", "Standard_NC4as_T4_v3", state="deallocated")
    add_vm("cpu", "ML-Prod", "cpu-box", "Standard_D4s_v5")
    add_vm("gb200", "ML-Prod", "gb200-try", "Standard_ND128isr_NDR_GB200_v6", zone="3")
    add_vm("westeu", "ML-EU", "a100-eu", "Standard_NC24ads_A100_v4", location="westeurope")
    arm.skus.extend(
        [
            sku("Standard_ND128isr_NDR_GB200_v6", 4),
            sku("Standard_D4s_v5", 0, ("eastus", "westeurope")),
            sku("Standard_D8s_v5", 0),
        ]
    )

    def add_scale_set(s: dict[str, Any], states: tuple[str, ...] = ()) -> dict[str, Any]:
        a.scale_sets.append(s)
        capacity = s["sku"]["capacity"]
        a.scale_set_vms[s["id"].lower()] = [
            scale_set_vm(s, n, states[n] if n < len(states) else "running") for n in range(capacity)
        ]
        return s

    batch = add_scale_set(
        scale_set(SUB_A, "Batch", "gpu-batch", "Standard_NC24ads_A100_v4", 2, zones=("1", "2"))
    )
    scene.ids["gpu-batch"] = batch["id"]
    add_scale_set(scale_set(SUB_A, "Batch", "cpu-ss", "Standard_D8s_v5", 1))
    flex = scale_set(
        SUB_A,
        "Batch",
        "flex-h100",
        "Standard_NC40ads_H100_v5",
        1,
        orchestration="Flexible",
        single_placement_group=False,
    )
    a.scale_sets.append(flex)  # a Flexible scale set's VMs are VMs of the VM list, naming their scale set
    add_vm("flex", "Batch", "flex-h100_0f3a9c", "Standard_NC40ads_H100_v5", zone="1", scale_set=flex["id"])

    prod = cluster(SUB_A, "Prod-RG", "prod-aks")
    a.clusters.append(prod)
    node_group = prod["properties"]["nodeResourceGroup"]
    a.agent_pools[prod["id"].lower()] = [
        agent_pool(prod, "system", "Standard_D4s_v5", 2, mode="System"),
        agent_pool(prod, "gpu", "Standard_ND96isr_H100_v5", 1, zones=("1", "2")),
        agent_pool(prod, "spotgpu", "Standard_NC24ads_A100_v4", 1, autoscale=(0, 4), spot=True),
    ]
    for pool, size, count, priority in (
        ("system", "Standard_D4s_v5", 2, "Regular"),
        ("gpu", "Standard_ND96isr_H100_v5", 1, "Regular"),
        ("spotgpu", "Standard_NC24ads_A100_v4", 1, "Spot"),
    ):
        name = f"aks-{pool}-12345678-vmss"
        s = scale_set(
            SUB_A,
            node_group,
            name,
            size,
            count,
            priority=priority,
            zones=("1", "2") if pool == "gpu" else (),
            tags={"aks-managed-poolName": pool, "aks-managed-orchestrator": "Kubernetes:1.33.2"},
            computer_prefix=f"aks-{pool}-12345678-vmss",
        )
        add_scale_set(s)
        scene.ids[f"aks-{pool}"] = s["id"]

    b = arm.sub(SUB_B)
    t4 = vm(SUB_B, "research", "t4-dev", "Standard_NC8as_T4_v3", zone="1")
    b.vms.append(t4)
    scene.ids["sub-b"] = t4["id"]
    return scene


@pytest.fixture
def scene(arm: ArmServer, azure_env: Path) -> Scene:
    return seed(arm)
