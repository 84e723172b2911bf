"""The Google Cloud source against the protocol-level test server (tests/gcp/server.py), reached by the
official SDKs (google-cloud-compute, google-cloud-container) over HTTP with real Application Default
Credentials, nothing patched: instances → nodes, MIGs and GKE node pools → pools, prices, scaling, the join
with Kubernetes nodes, and the errors that matter on call (throttling, refused credentials, an API denied
in one project, a project that is not there), with no credential in any output."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gcp.conftest import SA_EMAIL, SUBJECT_TOKEN, Key, require_google, seed, service_account

require_google()

from aios_tui.config import CloudPriceSettings, GcpSettings, KubernetesSettings, Settings  # noqa: E402
from aios_tui.domain import NA, NodePool, SourceState  # noqa: E402
from aios_tui.domain.text import is_clean  # noqa: E402
from aios_tui.ops.audit import AuditEntry, AuditLog  # noqa: E402
from aios_tui.poll import Poller  # noqa: E402
from aios_tui.sources import build_sources  # noqa: E402
from aios_tui.sources.base import PermissionChecker, PoolScaler, SourceData, SourceError  # noqa: E402
from aios_tui.sources.clouds.base import CloudSource  # noqa: E402
from aios_tui.sources.clouds.gcp.prices import CATALOGUE  # noqa: E402
from aios_tui.sources.clouds.gcp.provider import GcpProvider  # noqa: E402
from aios_tui.sources.kubernetes import sources_from_settings  # noqa: E402
from tests.cloud_paths import pools_view, run_cli  # noqa: E402
from tests.gcp.server import Fault, GoogleCloud  # noqa: E402
from tests.k8s.apiserver import FakeApiServer, fixture_scene  # noqa: E402

PROJECTS = ("alpha", "beta")
INSTANCES = "compute.instances.aggregatedList"
CLUSTERS = "container.projects.locations.clusters.list"
RESIZE = "compute.instanceGroupManagers.resize"


_MADE: list[CloudSource] = []


def gcp_source(url: str, **kw: Any) -> CloudSource:
    settings = GcpSettings(enabled=True, projects=PROJECTS, endpoint_url=url, timeout=5.0)
    (src,) = build_sources(Settings(gcp=dataclasses.replace(settings, **kw)))
    assert isinstance(src, CloudSource)
    _MADE.append(src)
    return src


@pytest.fixture(autouse=True)
def _settle() -> Iterator[None]:
    """After each test, wait for its sources' calls: a fetch that failed early leaves its other calls
    running, which would otherwise reach the (shared) server during the next test."""
    yield
    for src in _MADE:
        src._pool.shutdown(wait=True)
        src._provider.close()
    _MADE.clear()


@pytest.fixture
def source(scene: GoogleCloud) -> Iterator[CloudSource]:
    yield gcp_source(scene.url)
    assert scene.schema_errors == [], "the server sent what Google's schema does not allow"


def pool(data: SourceData, name: str) -> NodePool:
    (found,) = [p for p in data.pools if p.name == name]
    return found


def mig_size(cloud: GoogleCloud, project: str, name: str, zone: str = "") -> int:
    (size,) = [
        m["targetSize"]
        for m in cloud.projects[project].migs
        if m["name"] == name and (not zone or m.get("zone", "").endswith(zone))
    ]
    return int(size)


class Sleeps(list[float]):
    """The provider's waits between tries, recorded instead of slept."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


# --- what it shows ---------------------------------------------------------------------------------------


async def test_gpu_instances_become_nodes_across_pages_and_projects(
    scene: GoogleCloud, source: CloudSource
) -> None:
    data = await source.fetch()
    by = {n.name: n for n in data.nodes}
    assert set(by) == {
        "h100-solo", "t4-spot", "l4-stopped", "rtx-new", "a100-pending", "a2-pool-x1z2", "a2-pool-q9w8",
        "gke-prod-gpu-l4-1a2b3c4d-7h2k", "gke-prod-gpu-l4-1a2b3c4d-m3n4", "gke-train-h100-aaaa1111-zz01",
        "h100-sg",
    }, "cpu-only has no GPU"  # fmt: skip
    assert data.problems == ()
    assert data.context == "gcp alpha, beta"
    # alpha's 10 instances come 2 a page: 5 pages; beta's 2, one page.
    assert scene.seen[INSTANCES] == 6
    assert [q["pageToken"] for m, _, q, _ in scene.requests if m == INSTANCES and "pageToken" in q] != []
    assert all(q["maxResults"] == "500" for m, _, q, _ in scene.requests if m == INSTANCES)

    solo = by["h100-solo"]
    assert (solo.instance_type, solo.gpu_model, solo.gpus_total, solo.gpus_allocatable) == (
        "a3-highgpu-8g",
        "H100",
        8,
        8,
    )
    assert (solo.zone, solo.lifecycle, solo.instance_state, solo.ready, solo.pool) == (
        "us-central1-a", "on-demand", "running", True, "gce",
    )  # fmt: skip
    assert solo.provider_id == "gce://alpha/us-central1-a/h100-solo"
    assert solo.price_per_hour == 88.254 == CATALOGUE.types["a3-highgpu-8g"].price_per_hour
    assert solo.launched_at == 1795968900.0  # 2026-11-29T08:15:00.000-08:00

    t4 = by["t4-spot"]  # N1 with attached GPUs: the count and model from guestAccelerators
    assert (t4.instance_type, t4.gpu_model, t4.gpus_total, t4.lifecycle) == ("n1-standard-8", "T4", 2, "spot")
    # The machine's own price is not in the table, its GPUs' is: 2 x the T4's spot list price.
    assert t4.price_per_hour == pytest.approx(2 * CATALOGUE.types["nvidia-tesla-t4"].spot_price_per_hour)

    stopped = by["l4-stopped"]  # no guestAccelerators: the GPU from the machine type
    assert (stopped.instance_state, stopped.ready, stopped.gpu_model, stopped.gpus_total) == (
        "stopped",
        False,
        "L4",
        1,
    )
    assert (stopped.price_per_hour, stopped.gpus_allocatable, stopped.zone) == (0.0, 0, "europe-west4-a")

    pending = by["a100-pending"]  # preemptible: spot, at the table's spot list price
    assert (pending.instance_state, pending.lifecycle, pending.gpu_model) == ("pending", "spot", "A100")
    assert pending.price_per_hour == CATALOGUE.types["a2-ultragpu-1g"].spot_price_per_hour == 1.52

    new = by["rtx-new"]  # a type the table lacks: machineTypes.get, once
    assert (new.gpu_model, new.gpus_total, new.price_per_hour) == ("RTX PRO 6000", 1, NA)
    assert scene.seen["compute.machineTypes.get"] == 1

    gke = by["gke-prod-gpu-l4-1a2b3c4d-7h2k"]
    assert (gke.pool, gke.gpus_total, gke.ready) == ("alpha/prod/gpu-l4", 2, False)
    (cond,) = gke.conditions
    assert cond.reason == "NotInCluster" and "not a node of cluster prod" in cond.message
    assert by["a2-pool-x1z2"].pool == "alpha/a2-pool", "created-by names the group (with the project number)"
    assert by["h100-sg"].provider_id == "gce://beta/asia-southeast1-b/h100-sg"

    await source.fetch()
    assert scene.seen["compute.machineTypes.get"] == 1, "a machine type's GPUs are asked once"


async def test_pools_are_migs_and_gke_node_pools(scene: GoogleCloud, source: CloudSource) -> None:
    data = await source.fetch()
    assert {p.name for p in data.pools} == {
        "alpha/a2-pool",
        "alpha/t4-regional",
        "alpha/prod/gpu-l4",
        "beta/train/h100",
    }
    a2 = pool(data, "alpha/a2-pool")
    assert (a2.kind, a2.region, a2.zones, a2.instance_types) == (
        "mig",
        "us-central1",
        ("us-central1-c",),
        ("a2-highgpu-1g",),
    )
    assert (a2.min_size, a2.desired, a2.max_size, a2.nodes) == (0, 2, 1000, 2), "no autoscaler: MIG limits"
    assert (a2.gpu_model, a2.gpus_per_node, a2.lifecycle, a2.price_per_hour) == (
        "A100",
        1,
        "on-demand",
        3.673,
    )
    t4 = pool(data, "alpha/t4-regional")
    assert (t4.kind, t4.zones, t4.min_size, t4.desired, t4.max_size) == (
        "mig", ("us-central1-a", "us-central1-b"), 0, 0, 6,
    ), "regional, with an autoscaler"  # fmt: skip
    assert (t4.gpu_model, t4.gpus_per_node, t4.lifecycle) == ("T4", 1, "spot")
    l4 = pool(data, "alpha/prod/gpu-l4")
    assert (l4.kind, l4.region, l4.zones) == (
        "gke-nodepool",
        "us-central1",
        ("us-central1-a", "us-central1-b"),
    )
    assert (l4.min_size, l4.desired, l4.max_size, l4.nodes) == (0, 2, 8, 2), "0..4 per zone, 2 zones"
    assert (l4.gpu_model, l4.gpus_per_node, l4.price_per_hour) == ("L4", 2, 2.001)
    # A plan says what autoscaler may move a count set by hand.
    notes = {
        n: " ".join(source.scale_notes(n, 2, 4))
        for n in ("alpha/a2-pool", "alpha/t4-regional", "alpha/prod/gpu-l4")
    }
    assert notes["alpha/a2-pool"] == ""
    assert (
        "alpha/t4-regional is resized by its autoscaler t4-regional-as between 0 and 6"
        in notes["alpha/t4-regional"]
    )
    assert (
        "alpha/prod/gpu-l4 is resized by the GKE cluster autoscaler between 0 and 8"
        in notes["alpha/prod/gpu-l4"]
    )
    h100 = pool(data, "beta/train/h100")
    assert (h100.region, h100.lifecycle, h100.desired, h100.max_size, h100.price_per_hour) == (
        "us-east1", "spot", 1, 1000, 26.48,
    )  # fmt: skip


async def test_machines_sharing_a_name_are_named_by_project_and_zone(
    scene: GoogleCloud, source: CloudSource
) -> None:
    from tests.gcp.conftest import instance

    beta = scene.projects["beta"]
    beta.instances.append(
        instance(beta, "us-east1-c", "h100-solo", "a3-highgpu-8g", gpus=("nvidia-h100-80gb", 8))
    )
    data = await source.fetch()
    names = {n.name: n.provider_id for n in data.nodes}
    assert "h100-solo" not in names
    assert names["alpha/us-central1-a/h100-solo"] == "gce://alpha/us-central1-a/h100-solo"
    assert names["beta/us-east1-c/h100-solo"] == "gce://beta/us-east1-c/h100-solo"
    assert "h100-sg" in names, "a name of its own stays as it is"


async def test_one_project_from_the_credentials_names_pools_without_it(scene: GoogleCloud) -> None:
    src = gcp_source(scene.url, projects=())
    data = await src.fetch()
    assert data.context == "gcp alpha", "the key file's project_id"
    assert {p.name for p in data.pools} == {"a2-pool", "t4-regional", "prod/gpu-l4"}
    assert {n.pool for n in data.nodes} >= {"a2-pool", "prod/gpu-l4", "gce"}
    assert scene.seen[INSTANCES] == 5, "alpha only"


async def test_no_project_anywhere_says_where_to_set_one(
    cloud: GoogleCloud, adc_key: Path, key: Key, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed(cloud)
    _write_json(adc_key, service_account(cloud.url, key.pem, project=None))
    with pytest.raises(SourceError, match=r"no Google Cloud project to list: set \[gcp\] projects"):
        await gcp_source(cloud.url, projects=()).fetch()
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "beta")
    data = await gcp_source(cloud.url, projects=()).fetch()
    assert data.context == "gcp beta" and {p.name for p in data.pools} == {"train/h100"}


async def test_no_credentials_say_what_to_run(
    scene: GoogleCloud, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "deleted.json"))
    with pytest.raises(
        SourceError,
        match=r"no usable Google Cloud credentials found .* gcloud auth application-default login",
    ):
        await gcp_source(scene.url).fetch()
    assert sum(scene.seen.values()) == 0


async def test_regions_filter_instances_and_pools(scene: GoogleCloud) -> None:
    data = await gcp_source(scene.url, regions=("us-central1",)).fetch()
    assert {n.zone for n in data.nodes} == {
        "us-central1-a",
        "us-central1-b",
        "us-central1-c",
        "us-central1-f",
    }
    assert {p.name for p in data.pools} == {"alpha/a2-pool", "alpha/t4-regional", "alpha/prod/gpu-l4"}
    assert data.context == "gcp alpha, beta · us-central1"


async def test_config_prices_override_the_table(scene: GoogleCloud) -> None:
    src = gcp_source(scene.url, prices=(CloudPriceSettings(instance_type="n1-standard-8", price=0.95),))
    data = await src.fetch()
    assert {n.name: n.price_per_hour for n in data.nodes}["t4-spot"] == 0.95


# --- scaling ---------------------------------------------------------------------------------------------


async def test_scale_pool_resizes_migs_and_sets_gke_node_counts_on_the_server(
    scene: GoogleCloud, source: CloudSource
) -> None:
    assert isinstance(source, PoolScaler) and isinstance(source, PermissionChecker)
    await source.fetch()
    assert source.permission("scale-pool", "alpha/a2-pool") is None

    await source.scale_pool("alpha/a2-pool", 3)
    assert mig_size(scene, "alpha", "a2-pool") == 3
    (resize,) = [(p, q) for m, p, q, _ in scene.requests if m == RESIZE]
    assert resize[0] == "/compute/v1/projects/alpha/zones/us-central1-c/instanceGroupManagers/a2-pool/resize"
    assert resize[1]["size"] == "3" and len(resize[1]["requestId"]) == 36, (
        "a request ID: a retry is one resize"
    )

    await source.scale_pool("alpha/t4-regional", 4)
    assert mig_size(scene, "alpha", "t4-regional") == 4
    assert scene.seen["compute.regionInstanceGroupManagers.resize"] == 1

    await source.scale_pool("alpha/prod/gpu-l4", 6)  # 3 per zone, over its 2 zones
    ((path, body),) = [(p, b) for m, p, _, b in scene.requests if m.endswith("nodePools.setSize")]
    assert path == "/v1/projects/alpha/locations/us-central1/clusters/prod/nodePools/gpu-l4:setSize"
    assert body == {"nodeCount": 3}
    assert mig_size(scene, "alpha", "gke-prod-gpu-l4-1a2b3c4d-grp", "us-central1-a") == 3
    await source.scale_pool("beta/train/h100", 2)
    assert mig_size(scene, "beta", "gke-train-h100-aaaa1111-grp") == 2

    data = await source.fetch()
    assert {p.name: p.desired for p in data.pools} == {
        "alpha/a2-pool": 3, "alpha/t4-regional": 4, "alpha/prod/gpu-l4": 6, "beta/train/h100": 2,
    }  # fmt: skip

    with pytest.raises(
        SourceError,
        match=r"runs in 2 zones and its nodes are counted per zone: .* multiple of 2 \(4 or 6, not 5\)",
    ):
        await source.scale_pool("alpha/prod/gpu-l4", 5)
    with pytest.raises(SourceError, match=r"desired 7 is outside its size limits 0\.\.6"):
        await source.scale_pool("alpha/t4-regional", 7)
    assert source.permission("scale-pool", "nope") == "gcp has no node pool nope"


@pytest.mark.parametrize("where", ["gcp", "global"])
async def test_read_only_refuses_scaling_in_the_backend(scene: GoogleCloud, where: str) -> None:
    gcp = GcpSettings(enabled=True, projects=PROJECTS, endpoint_url=scene.url, read_only=where == "gcp")
    (src,) = build_sources(Settings(gcp=gcp, read_only=where == "global"))
    assert isinstance(src, CloudSource)
    await src.fetch()
    why = src.permission("scale-pool", "alpha/a2-pool")
    assert why is not None and why.startswith("gcp is read-only")
    with pytest.raises(SourceError, match="read-only"):
        await src.scale_pool("alpha/a2-pool", 3)
    assert mig_size(scene, "alpha", "a2-pool") == 2 and scene.seen[RESIZE] == 0


async def test_google_own_error_message_is_kept_one_line_with_secrets_masked(
    scene: GoogleCloud, source: CloudSource
) -> None:
    await source.fetch()
    message = (
        "Invalid value for field 'size': '3'. Quota 'GPUS_ALL_REGIONS' exceeded. token=abc123secret\n\x1b[2J"
    )
    scene.fault(RESIZE, Fault(400, message, reason="invalid"))
    with pytest.raises(SourceError) as err:
        await source.scale_pool("alpha/a2-pool", 3)
    msg = str(err.value)
    assert msg.startswith(
        "Compute Engine instanceGroupManagers.resize of alpha/a2-pool: 400 INVALID_ARGUMENT invalid "
        "(Invalid value for field 'size': '3'. Quota 'GPUS_ALL_REGIONS' exceeded. token=***"
    )
    assert "abc123secret" not in msg and is_clean(msg) and "\x1b" not in msg and "\n" not in msg
    assert "http://127.0.0.1" not in msg, "api-core's 'POST <url>:' prefix is left out"
    assert mig_size(scene, "alpha", "a2-pool") == 2


# --- the join with Kubernetes ----------------------------------------------------------------------------


async def test_one_row_per_machine_with_both_views(scene: GoogleCloud, tmp_path: Path) -> None:
    objects = fixture_scene()
    node_name = "ip-10-0-1-11.ec2.internal"
    gke = "gce://alpha/us-central1-a/gke-prod-gpu-l4-1a2b3c4d-7h2k"
    for obj in objects:
        if obj["kind"] == "Node" and obj["metadata"]["name"] == node_name:
            obj["spec"]["providerID"] = gke
    with FakeApiServer(objects) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        (k8s,) = sources_from_settings(KubernetesSettings(enabled=True, kubeconfig=kubeconfig), env={})
        poller = Poller([k8s, gcp_source(scene.url)])
        try:
            snap = await poller.refresh()
        finally:
            await poller.stop()
    names = {n.name for n in snap.nodes}
    assert "gke-prod-gpu-l4-1a2b3c4d-7h2k" not in names, "the instance merged into its Kubernetes node"
    node = snap.node_by_name[node_name]
    assert node.ready and node.source.startswith("k8s")
    assert (node.instance_state, node.lifecycle, node.provider_id, node.launched_at) == (
        "running", "on-demand", gke, 1795968900.0,
    )  # fmt: skip
    orphan = snap.node_by_name["gke-prod-gpu-l4-1a2b3c4d-m3n4"]
    assert not orphan.ready and orphan.conditions[0].reason == "NotInCluster"
    assert {s.name: s.state for s in snap.sources} == {"k8s:test": SourceState.OK, "gcp": SourceState.OK}


# --- throttling ------------------------------------------------------------------------------------------


def test_throttling_is_retried_after_retry_after_then_succeeds(scene: GoogleCloud) -> None:
    sleeps = Sleeps()
    p = GcpProvider(projects=("alpha",), endpoint_url=scene.url, timeout=10.0, max_attempts=3, sleep=sleeps)
    scene.fault(
        INSTANCES, Fault(429, "Quota exceeded for quota metric 'Read requests'", times=2, retry_after="7")
    )
    try:
        listing = p.instances("alpha")
    finally:
        p.close()
    assert listing.problems == () and len(listing.items) == 9
    assert sleeps == [7.0, 7.0], "Google's Retry-After, honoured"
    assert scene.seen[INSTANCES] == 2 + 5, "two refusals, then the 5 pages"


@pytest.mark.parametrize(("attempts", "status"), [(3, 503), (1, 429)])
def test_max_attempts_counts_the_first_try(scene: GoogleCloud, attempts: int, status: int) -> None:
    sleeps = Sleeps()
    p = GcpProvider(
        projects=("alpha",), endpoint_url=scene.url, timeout=10.0, max_attempts=attempts, sleep=sleeps
    )
    scene.fault(INSTANCES, Fault(status, "The service is currently unavailable.", retry_after="1"))
    try:
        with pytest.raises(SourceError) as err:
            p.instances("alpha")
    finally:
        p.close()
    tries = "1 try" if attempts == 1 else f"{attempts} tries"
    name = {503: "503 UNAVAILABLE", 429: "429 RESOURCE_EXHAUSTED"}[status]
    assert str(err.value) == (
        f"Google Cloud is throttling Compute Engine instances.aggregatedList in project alpha ({name}) "
        f"after {tries}: backing off"
    )
    assert scene.seen[INSTANCES] == attempts
    assert sleeps == [1.0] * (attempts - 1)


def test_throttling_without_retry_after_backs_off_and_a_long_one_ends_the_tries(scene: GoogleCloud) -> None:
    sleeps = Sleeps()
    p = GcpProvider(projects=("alpha",), endpoint_url=scene.url, timeout=5.0, max_attempts=3, sleep=sleeps)
    scene.fault(INSTANCES, Fault(503, times=2))
    scene.fault(CLUSTERS, Fault(429, retry_after="120"))
    try:
        assert len(p.instances("alpha").items) == 9
        assert len(sleeps) == 2 and 0.25 <= sleeps[0] <= 0.5 and 0.5 <= sleeps[1] <= 1.0, sleeps
        with pytest.raises(
            SourceError,
            match=r"throttling GKE clusters\.list in project alpha \(429 RESOURCE_EXHAUSTED, asked to wait "
            r"120 s\) after 1 try",
        ):
            p.pools("alpha")
    finally:
        p.close()
    assert scene.seen[CLUSTERS] == 1 and len(sleeps) == 2


async def test_throttling_that_outlasts_the_tries_keeps_the_last_data(scene: GoogleCloud) -> None:
    src = gcp_source(scene.url)
    poller = Poller([src], max_backoff=5.0)
    try:
        first = await poller.refresh()
        assert first.sources[0].state is SourceState.OK
        count = len(first.nodes)
        scene.seen.clear()
        scene.fault("compute.autoscalers.aggregatedList", Fault(429, retry_after="0", project="beta"))
        second = await poller.refresh()
    finally:
        await poller.stop()
    health = second.sources[0]
    assert health.state is SourceState.STALE
    assert "throttling Compute Engine autoscalers.aggregatedList in project beta" in health.error
    assert "after 3 tries: backing off" in health.error
    assert len(second.nodes) == count, "the last good data stays"
    assert scene.seen["compute.autoscalers.aggregatedList"] >= 3


# --- credentials -----------------------------------------------------------------------------------------


async def test_a_refused_token_exchange_says_so_and_the_next_poll_reads_the_credentials_again(
    cloud: GoogleCloud, adc_federated: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seed(cloud)
    src = gcp_source(cloud.url)
    data = await src.fetch()
    assert len(data.nodes) == 11 and cloud.seen["token"] == 1, "one token exchange, shared by every client"
    assert cloud.issued and cloud.issued <= cloud.bearers, "the exchanged token, on the calls"

    src2 = gcp_source(cloud.url)
    cloud.faults["token"] = [Fault(400)]
    cloud.seen.clear()
    with pytest.raises(SourceError) as err:
        await src2.fetch()
    msg = str(err.value)
    assert msg == (
        "Google Cloud credentials (Application Default Credentials: workload identity federation) have "
        "expired or are not valid (invalid_grant): run gcloud auth application-default login, or set "
        "GOOGLE_APPLICATION_CREDENTIALS to a valid key"
    )
    assert cloud.seen[INSTANCES] == 0, "refused before any API call"
    cloud.faults.pop("token")
    data = await src2.fetch()
    assert len(data.nodes) == 11, "the credentials were read again"
    texts = [msg, repr(err.value), caplog.text, repr(vars(src2._provider))]
    for secret in (SUBJECT_TOKEN, *cloud.issued):
        assert not any(secret in t for t in texts), "a credential leaked"


async def test_credentials_the_api_refuses_say_so(scene: GoogleCloud) -> None:
    src = gcp_source(scene.url, projects=("alpha",))
    await src.fetch()
    scene.reject_tokens = True  # the key was deleted, say
    scene.seen.clear()
    with pytest.raises(SourceError) as err:
        await src.fetch()
    assert str(err.value) == (
        "Google Cloud credentials (Application Default Credentials: a service account key) have expired or "
        "are not valid (401 UNAUTHENTICATED): run gcloud auth application-default login, or set "
        "GOOGLE_APPLICATION_CREDENTIALS to a valid key"
    )
    # On a 401 google-auth makes a new token and tries again, twice; never the throttling tries. (Counted on
    # one call: the fetch above ends at the first refusal, its other calls still running.)
    src._pool.shutdown(wait=True)
    p = GcpProvider(projects=("alpha",), endpoint_url=scene.url, timeout=5.0)
    scene.seen.clear()
    try:
        with pytest.raises(SourceError, match=r"\(401 UNAUTHENTICATED\)"):
            p.instances("alpha")
    finally:
        p.close()
    assert scene.seen[INSTANCES] == 3 and scene.seen["token"] == 0


async def test_the_server_verified_the_sdk_s_own_signed_tokens(
    scene: GoogleCloud, source: CloudSource
) -> None:
    """A service account key: the SDK signs a JWT with it for every client (no token exchange), which the
    server verifies with the public key."""
    await source.fetch()
    assert scene.seen["token"] == 0 and scene.bearers
    assert all(b.count(".") == 2 for b in scene.bearers)
    claims = [json.loads(_b64(b.split(".")[1])) for b in scene.bearers]
    assert {c["iss"] for c in claims} == {SA_EMAIL}
    assert {c["scope"] for c in claims} == {"https://www.googleapis.com/auth/cloud-platform"}


def _write_json(path: Path, value: object) -> None:
    path.write_text(json.dumps(value), encoding="utf-8")


def _b64(part: str) -> bytes:
    import base64

    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --- one API or project failing --------------------------------------------------------------------------

_GKE_DISABLED = (
    "Kubernetes Engine API has not been used in project 111111111111 before or it is disabled. Enable it by "
    "visiting https://console.developers.google.com/apis/api/container.googleapis.com/overview?project="
    "111111111111 then retry."
)
_ERROR_INFO = {
    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
    "reason": "SERVICE_DISABLED",
    "domain": "googleapis.com",
    "metadata": {"service": "container.googleapis.com", "consumer": "projects/111111111111"},
}


async def test_gke_disabled_in_one_project_is_partial_and_the_rest_shows(scene: GoogleCloud) -> None:
    scene.fault(
        CLUSTERS, Fault(403, _GKE_DISABLED, reason="SERVICE_DISABLED", details=[_ERROR_INFO], project="alpha")
    )
    poller = Poller([gcp_source(scene.url)])
    try:
        snap = await poller.refresh()
    finally:
        await poller.stop()
    health = snap.sources[0]
    assert health.state is SourceState.PARTIAL
    assert (
        "GKE clusters.list in project alpha: the API is disabled in this project (Kubernetes Engine API has "
        "not been used in project 111111111111 before or it is disabled." in health.error
    )
    assert "h100-solo" in snap.node_by_name and "gke-prod-gpu-l4-1a2b3c4d-7h2k" in snap.node_by_name
    # alpha's node pool is unknown; its groups are still not shown as pools (their template says GKE).
    assert {p.name for p in snap.pools} == {"alpha/a2-pool", "alpha/t4-regional", "beta/train/h100"}


async def test_permission_denied_everywhere_fails(scene: GoogleCloud) -> None:
    denied = "Required 'compute.instances.list' permission for 'projects/alpha'"
    every = ("instanceGroupManagers", "instanceTemplates", "autoscalers")
    for method in (INSTANCES, CLUSTERS, *(f"compute.{m}.aggregatedList" for m in every)):
        scene.fault(method, Fault(403, denied, reason="forbidden"))
    with pytest.raises(
        SourceError,
        match=r"Compute Engine instances\.aggregatedList in project alpha: permission denied \(Required",
    ):
        await gcp_source(scene.url).fetch()


async def test_a_project_that_is_not_there_is_a_problem_and_the_others_show(scene: GoogleCloud) -> None:
    data = await gcp_source(scene.url, projects=("alpha", "gone-project")).fetch()
    assert data.problems == (
        "Compute Engine instances.aggregatedList in project gone-project: not found (The resource "
        "'projects/gone-project' was not found)",
        "GKE clusters.list in project gone-project: permission denied (Permission denied on resource project "
        "gone-project.)",
        "Compute Engine instanceGroupManagers.aggregatedList in project gone-project: not found (The "
        "resource 'projects/gone-project' was not found)",
        "Compute Engine instanceTemplates.aggregatedList in project gone-project: not found (The resource "
        "'projects/gone-project' was not found)",
        "Compute Engine autoscalers.aggregatedList in project gone-project: not found (The resource "
        "'projects/gone-project' was not found)",
    )
    assert len(data.nodes) == 9 and {p.name for p in data.pools} == {
        "alpha/a2-pool",
        "alpha/t4-regional",
        "alpha/prod/gpu-l4",
    }


async def test_an_unreachable_endpoint_fails_saying_so(scene: GoogleCloud) -> None:
    with pytest.raises(
        SourceError,
        match=r"Compute Engine instances\.aggregatedList in project alpha: unreachable \(ConnectionError\)",
    ):
        await gcp_source("http://127.0.0.1:9", projects=("alpha",)).fetch()


# --- no credential anywhere ------------------------------------------------------------------------------


async def test_no_credential_in_any_output_log_or_audit_line(
    scene: GoogleCloud, key: Key, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    src = gcp_source(scene.url)
    poller = Poller([src])
    texts: list[str] = []
    audit = AuditLog(tmp_path / "audit.jsonl")
    try:
        snap = await poller.refresh()
        await src.scale_pool("alpha/a2-pool", 1)
        for method, f in (
            (INSTANCES, Fault(429, retry_after="0")),
            (CLUSTERS, Fault(403, _GKE_DISABLED, reason="SERVICE_DISABLED", details=[_ERROR_INFO])),
            (INSTANCES, Fault(404, "The resource 'projects/alpha' was not found")),
        ):
            scene.faults = {method: [f], RESIZE: [dataclasses.replace(f)]}
            snap = await poller.refresh()
            texts.extend(f"{h.state} {h.error}" for h in snap.sources)
            try:
                await src.scale_pool("alpha/a2-pool", 2)
            except SourceError as exc:
                texts.append(str(exc))
                audit.append(
                    AuditEntry(
                        ts="2026-11-30T00:00:00Z",
                        user="oncall",
                        host="h",
                        role="admin",
                        action="scale-pool",
                        target="alpha/a2-pool",
                        source=src.name,
                        title="scale alpha/a2-pool to 2",
                        outcome="failed",
                        message=str(exc),
                    )
                )
        scene.faults = {}
        scene.reject_tokens = True
        snap = await poller.refresh()
        texts.extend(f"{h.state} {h.error}" for h in snap.sources)
    finally:
        await poller.stop()
    assert any("throttling" in t for t in texts) and any("API is disabled" in t for t in texts)
    assert any("expired or are not valid" in t for t in texts)
    texts += [repr(snap), caplog.text, (tmp_path / "audit.jsonl").read_text(encoding="utf-8")]
    texts += [repr(vars(src._provider)), src._provider.context]
    assert caplog.records, "something was logged at DEBUG"
    secrets = [*key.secrets(), *scene.bearers, *(b.rsplit(".", 1)[-1][:40] for b in scene.bearers)]
    assert len(secrets) > 4
    for text in texts:
        for secret in secrets:
            assert secret not in text, "a credential leaked"
    assert logging.getLogger("google.auth").getEffectiveLevel() >= logging.WARNING
    assert logging.getLogger("google.api_core").getEffectiveLevel() >= logging.WARNING


# --- hostile and malformed answers -----------------------------------------------------------------------

HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u202e\u200b\n"
"""A title change, a screen wipe, a bidi override, a zero-width space and a line break: JSON carries them."""


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _strings(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _strings(v)


async def test_names_and_labels_tenants_write_come_out_clean(scene: GoogleCloud, source: CloudSource) -> None:
    def hostile(answer: dict[str, Any]) -> dict[str, Any]:
        for scoped in answer.get("items", {}).values():
            for i in scoped.get("instances", []):
                if i["name"] == "h100-solo":
                    i["name"] = f"h100{HOSTILE}"
                    i["labels"] = {
                        "goog-k8s-cluster-name": f"prod{HOSTILE}",
                        "goog-k8s-node-pool-name": "p" + "x" * 5000,
                    }
        return answer

    scene.rewrites[INSTANCES] = hostile
    data = await source.fetch()
    texts = [t for kind in (data.nodes, data.pools) for t in _strings(kind)]
    assert len(texts) > 50
    for text in texts:
        assert is_clean(text) and len(text) <= 256, repr(text[:80])
        assert not any(c in text for c in "\x1b\x07\u202e\u200b\n"), repr(text[:80])
    (node,) = [n for n in data.nodes if n.provider_id.startswith("gce://alpha/us-central1-a/h100")]
    assert node.name.rstrip() == "h100", "the escapes went, their payload too"
    assert node.provider_id.rstrip() == "gce://alpha/us-central1-a/h100"
    assert node.pool.startswith("alpha/prod") and node.pool.endswith("…")
    assert node.conditions[0].message.rstrip().endswith("not a node of cluster prod")


async def test_one_malformed_object_is_skipped_and_counted_and_the_rest_shows(scene: GoogleCloud) -> None:
    def no_zone(answer: dict[str, Any]) -> dict[str, Any]:
        for scoped in answer.get("items", {}).values():
            for i in scoped.get("instances", []):
                if i["name"] == "h100-solo":
                    del i["zone"]
        return answer

    def no_machine_type(answer: dict[str, Any]) -> dict[str, Any]:
        for c in answer["clusters"]:
            for np in c["nodePools"]:
                if np["name"] == "h100":
                    del np["config"]["machineType"]
        return answer

    def replicas_in_words(answer: dict[str, Any]) -> dict[str, Any]:
        for scoped in answer.get("items", {}).values():
            for a in scoped.get("autoscalers", []):
                a["autoscalingPolicy"]["maxNumReplicas"] = "six"
        return answer

    scene.rewrites.update({INSTANCES: no_zone, CLUSTERS: no_machine_type,
                           "compute.autoscalers.aggregatedList": replicas_in_words})  # fmt: skip
    poller = Poller([gcp_source(scene.url)])
    try:
        snap = await poller.refresh()
    finally:
        await poller.stop()
    health = snap.sources[0]
    assert health.state is SourceState.PARTIAL
    assert "1 instance skipped: the answer lacks zone" in health.error
    assert "1 GKE node pool skipped: the answer lacks config.machineType" in health.error
    assert (
        "Compute Engine autoscalers.aggregatedList in project alpha: the answer could not be read "
        "(ParseError)" in health.error
    )
    names = {n.name for n in snap.nodes}
    assert "h100-solo" not in names and "t4-spot" in names and len(names) == 10
    assert {p.name for p in snap.pools} == {"alpha/a2-pool", "alpha/t4-regional", "alpha/prod/gpu-l4"}
    t4 = snap.pools_by_name["alpha/t4-regional"]
    assert t4.max_size == 2000, "its autoscaler unread: a regional group's own limit"


# --- the console's and the CLI's path ----------------------------------------------------------------------


def test_the_cli_shows_google_cloud_and_scales_a_pool_through_plan_confirmation_and_audit(
    scene: GoogleCloud, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What an on-call engineer types: ``snapshot --json`` shows the instances, pools and prices;
    ``plan`` and ``act scale-pool`` go through the same plan, role check and audit log as every action."""
    audit = tmp_path / "audit.jsonl"
    config = tmp_path / "config.toml"
    config.write_text(
        f'user = "oncall"\naudit_path = "{audit}"\n'
        f'[gcp]\nenabled = true\nprojects = ["alpha", "beta"]\nendpoint_url = "{scene.url}"\n'
    )
    code, out, err = run_cli(capsys, "--config", str(config), "snapshot", "--json")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    nodes = {n["name"]: n for n in doc["nodes"]}
    assert nodes["h100-solo"]["provider_id"] == "gce://alpha/us-central1-a/h100-solo"
    assert nodes["h100-solo"]["price_per_hour"] == CATALOGUE.types["a3-highgpu-8g"].price_per_hour
    pools = {p["name"]: p for p in doc["pools"]}
    assert (pools["alpha/a2-pool"]["kind"], pools["alpha/prod/gpu-l4"]["kind"]) == ("mig", "gke-nodepool")
    assert [s["name"] for s in doc["sources"]] == ["gcp"]

    before = mig_size(scene, "alpha", "a2-pool")
    code, out, err = run_cli(capsys, "--config", str(config), "plan", "scale-pool", "alpha/a2-pool", "+1")
    assert code == 0, err
    assert f"{before} → {before + 1}" in out and scene.seen[RESIZE] == 0, "a plan changes nothing"
    # A GKE node pool over 2 zones counts per zone: an odd count is refused by the plan, with what would do.
    code, _, err = run_cli(capsys, "--config", str(config), "plan", "scale-pool", "alpha/prod/gpu-l4", "5")
    assert code == 3 and "must be a multiple of 2 (4 or 6, not 5)" in err

    act = ("--config", str(config), "act", "scale-pool", "alpha/a2-pool")
    code, out, err = run_cli(capsys, *act, "+1", "--yes")
    assert code == 0, err
    assert mig_size(scene, "alpha", "a2-pool") == before + 1 and scene.seen[RESIZE] == 1
    lines = [json.loads(line) for line in audit.read_text(encoding="utf-8").splitlines()]
    last = lines[-1]
    assert (last["action"], last["target"], last["user"], last["outcome"]) == (
        "scale-pool", "alpha/a2-pool", "oncall", "ok",
    )  # fmt: skip

    # Shrinking needs an admin: refused before anything reaches Google.
    code, _, err = run_cli(capsys, *act, "0", "--yes")
    assert code == 3 and "may not scale-pool down" in err and scene.seen[RESIZE] == 1

    # Read-only in the section: refused by the source itself.
    config.write_text(config.read_text() + "read_only = true\n")
    code, _, err = run_cli(capsys, *act, "+1", "--yes")
    assert code == 3 and "read-only" in err and scene.seen[RESIZE] == 1


async def test_the_console_shows_the_google_cloud_pools(scene: GoogleCloud, tmp_path: Path) -> None:
    screen = await pools_view(gcp_source(scene.url), tmp_path)
    for text in ("alpha/a2-pool", "mig", "alpha/prod/gpu-l4", "gke", "beta/train/h100"):
        assert text in screen, text
