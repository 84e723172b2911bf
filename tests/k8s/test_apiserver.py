"""`FakeApiServer` driven by the real `kubernetes` client over HTTP: each protocol behaviour the source
relies on, compared with what the real kube-apiserver answered (tests/fixtures/kubernetes/)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

from tests.k8s.apiserver import USER, FakeApiServer, fixture_scene, generate_fleet, load_fixture
from tests.k8s.conftest import api_client_for

JSON = dict[str, Any]
NS = "ml-prod"
LLM_POD = "llm-serve-c7b59b455-fwlz8"


@pytest.fixture
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


def error_body(call: Callable[[], object]) -> tuple[int, JSON]:
    """Run a call expected to fail with an HTTP error; its status and decoded `Status` body."""
    with pytest.raises(ApiException) as info:
        call()
    return info.value.status, json.loads(info.value.body)


def fixture_answer(name: str) -> JSON:
    answer: JSON = load_fixture(name)["response"]
    return answer


def watch_events(
    core: client.CoreV1Api, rv: str | None, *, seconds: float = 0.5, bookmarks: bool = True
) -> Iterator[JSON]:
    """The raw events of a pod watch in ml-prod from `rv`, ended by the server after `seconds`."""
    kwargs: JSON = {"timeout_seconds": seconds, "allow_watch_bookmarks": bookmarks}
    if rv is not None:
        kwargs["resource_version"] = rv
    for event in watch.Watch().stream(core.list_namespaced_pod, NS, **kwargs):
        yield {"type": event["type"], **event["raw_object"]}


def later(seconds: float, action: Callable[[], object]) -> threading.Thread:
    """Run `action` in a thread after `seconds` (a controller acting while the client watches)."""

    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


# --- discovery, list, get -------------------------------------------------------------------------------


def test_version_and_discovery(api_client: client.ApiClient, core: client.CoreV1Api) -> None:
    assert client.VersionApi(api_client).get_code().git_version == fixture_answer("version")["gitVersion"]
    resources = {r.name for r in core.get_api_resources().resources}
    assert {"pods", "pods/eviction", "nodes", "events"} <= resources
    groups = {
        g.name: g.preferred_version.version for g in client.ApisApi(api_client).get_api_versions().groups
    }
    assert groups["batch"] == "v1" and groups["policy"] == "v1" and groups["autoscaling"] == "v2"
    batch = client.BatchV1Api(api_client).get_api_resources()
    assert [r.name for r in batch.resources] == ["jobs"]


def test_paginated_list_walks_every_node_once(core: client.CoreV1Api) -> None:
    expected = [n["metadata"]["name"] for n in fixture_answer("nodes-list")["items"]]
    first = core.list_node(limit=2)
    assert first.metadata.remaining_item_count == len(expected) - 2
    names, page = [], first
    while True:
        names += [n.metadata.name for n in page.items]
        assert page.metadata.resource_version == first.metadata.resource_version
        if not page.metadata._continue:
            break
        page = core.list_node(limit=2, _continue=page.metadata._continue)
    assert names == sorted(expected)


def test_lists_cluster_wide_and_namespaced(core: client.CoreV1Api, apps: client.AppsV1Api) -> None:
    everything = core.list_pod_for_all_namespaces(limit=500)
    assert len(everything.items) == len(fixture_answer("pods-list-all")["items"])
    assert everything.metadata._continue is None
    ml_prod = core.list_namespaced_pod(NS)
    assert ml_prod.items and {p.metadata.namespace for p in ml_prod.items} == {NS}
    assert len(ml_prod.items) < len(everything.items)
    assert [d.metadata.name for d in apps.list_namespaced_deployment(NS).items] == ["llm-serve"]
    assert apps.list_namespaced_deployment("capture").items == []


def test_label_and_field_selectors(core: client.CoreV1Api) -> None:
    def names(**selectors: str) -> set[str]:
        return {p.metadata.name for p in core.list_pod_for_all_namespaces(**selectors).items}

    llm = names(label_selector="app=llm-serve")
    assert llm and all(n.startswith("llm-serve-") for n in names(label_selector="app==llm-serve"))
    assert names(label_selector="app in (llm-serve,dcgm-exporter)") >= llm
    assert names(label_selector="app in (llm-serve,dcgm-exporter)") - llm
    assert not names(label_selector="app=llm-serve,app!=llm-serve")
    indexed = names(label_selector="batch.kubernetes.io/job-completion-index")
    assert len(indexed) == 8  # 4 ranks in each of the two namespaces
    assert names(label_selector="!batch.kubernetes.io/job-completion-index").isdisjoint(indexed)
    node = "ip-10-0-1-11.ec2.internal"
    captured = {p["metadata"]["name"] for p in fixture_answer("pods-list-fieldselector-node")["items"]}
    assert names(field_selector=f"spec.nodeName={node}") == captured


def test_get_and_404_in_the_servers_words(core: client.CoreV1Api) -> None:
    node = core.read_node("ip-10-0-3-31.ec2.internal")
    assert node.kind == "Node" and node.spec.provider_id.startswith("aws:///")
    status, body = error_body(lambda: core.read_node("no-such-node"))
    assert (status, body) == (404, fixture_answer("error-404-get-node"))


# --- watch ----------------------------------------------------------------------------------------------


def test_watch_resumes_from_the_lists_version_with_bookmarks(
    apiserver: FakeApiServer, core: client.CoreV1Api
) -> None:
    rv = core.list_namespaced_pod(NS).metadata.resource_version
    shell = apiserver.get("pods", NS, "debug-shell")
    assert shell is not None
    shell["status"]["phase"] = "Succeeded"
    apiserver.apply(shell)  # before the watch starts: replayed from history
    apiserver.apply({**shell, "metadata": {**shell["metadata"], "namespace": "capture"}})  # other namespace
    mover = later(0.15, lambda: apiserver.delete("pods", NS, "debug-shell"))
    events = list(watch_events(core, rv, seconds=0.5))
    mover.join()
    changes = [(e["type"], e["metadata"].get("name")) for e in events if e["type"] != "BOOKMARK"]
    assert changes == [("MODIFIED", "debug-shell"), ("DELETED", "debug-shell")]
    assert events[0]["status"]["phase"] == "Succeeded"
    versions = [int(e["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and versions[0] > int(rv)
    bookmarks = [e for e in events if e["type"] == "BOOKMARK"]
    assert 2 <= len(bookmarks) <= 6  # every 0.1 s over 0.5 s
    assert bookmarks[-1]["metadata"]["resourceVersion"] == str(apiserver.resource_version)


def test_watch_without_version_starts_with_the_current_state(core: client.CoreV1Api) -> None:
    events = list(watch_events(core, None, seconds=0.2, bookmarks=False))
    assert {e["type"] for e in events} == {"ADDED"}
    assert sorted(e["metadata"]["name"] for e in events) == sorted(
        p.metadata.name for p in core.list_namespaced_pod(NS).items
    )


def test_too_old_version_gets_410_then_relist_and_watch(
    apiserver: FakeApiServer, core: client.CoreV1Api
) -> None:
    old_rv = core.list_namespaced_pod(NS).metadata.resource_version
    apiserver.apply({**fixture_scene()[0], "spec": {"unschedulable": True}})
    apiserver.compact()
    raw = core.list_namespaced_pod(NS, watch=True, resource_version=old_rv, _preload_content=False)
    lines = [json.loads(line) for line in raw.read().splitlines()]
    captured = load_fixture("watch-too-old-rv")["events"][0]
    assert len(lines) == 1 and lines[0]["type"] == "ERROR"
    assert {k: v for k, v in lines[0]["object"].items() if k != "message"} == {
        k: v for k, v in captured["object"].items() if k != "message"
    }
    assert (
        lines[0]["object"]["message"] == f"too old resource version: {old_rv} ({apiserver.resource_version})"
    )
    with pytest.raises(ApiException) as info:  # the client's own handling: 410 surfaces as an ApiException
        list(watch_events(core, old_rv))
    assert info.value.status == 410
    fresh = core.list_namespaced_pod(NS).metadata.resource_version
    later(0.1, lambda: apiserver.delete("pods", NS, "debug-shell")).join()
    assert [e["type"] for e in watch_events(core, fresh, seconds=0.2, bookmarks=False)] == ["DELETED"]


def test_history_is_bounded(kubeconfig: Path) -> None:
    with (
        FakeApiServer(fixture_scene(), history=2) as server,
        api_client_for(server.write_kubeconfig(kubeconfig)) as api,
    ):
        core = client.CoreV1Api(api)
        rv = core.list_namespaced_pod(NS).metadata.resource_version
        shell = server.get("pods", NS, "debug-shell")
        assert shell is not None
        for phase in ("Running", "Succeeded", "Failed", "Unknown", "Pending"):
            server.apply({**shell, "status": {"phase": phase}})
        with pytest.raises(ApiException) as info:
            list(watch_events(core, rv, bookmarks=False))
        assert info.value.status == 410
        recent = str(server.resource_version - 2)
        phases = [e["status"]["phase"] for e in watch_events(core, recent, seconds=0.1, bookmarks=False)]
        assert phases == ["Unknown", "Pending"]


def test_dropped_watch_breaks_the_stream(apiserver: FakeApiServer, core: client.CoreV1Api) -> None:
    rv = str(apiserver.resource_version)
    dropper = later(0.2, apiserver.drop_watches)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(watch_events(core, rv, seconds=30))
    dropper.join()
    assert time.monotonic() - started < 5
    assert core.read_node("gpu-node-1").metadata.name == "gpu-node-1"  # the server itself is fine


def test_stop_closes_open_watches_promptly(apiserver: FakeApiServer, core: client.CoreV1Api) -> None:
    errors: list[BaseException] = []

    def watcher() -> None:
        try:
            list(watch_events(core, str(apiserver.resource_version), seconds=30))
        except urllib3.exceptions.ProtocolError as err:
            errors.append(err)

    thread = threading.Thread(target=watcher)
    thread.start()
    deadline = time.monotonic() + 5
    while not any("watch" in path for _, path in apiserver.requests) and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)  # the request is logged before its stream opens
    started = time.monotonic()
    apiserver.stop()
    thread.join(5)
    assert time.monotonic() - started < 2 and not thread.is_alive() and len(errors) == 1


# --- changes: patch, scale, create ----------------------------------------------------------------------


def test_strategic_and_merge_patches(
    apiserver: FakeApiServer, core: client.CoreV1Api, apps: client.AppsV1Api
) -> None:
    cordon = load_fixture("node-cordon-patch")
    node = core.patch_node("ip-10-0-3-31.ec2.internal", cordon["request"]["body"])
    assert node.spec.unschedulable is True
    assert core.api_client.sanitize_for_serialization(node.spec) == cordon["response"]["spec"]
    restart = load_fixture("deployment-restart-patch")
    before = apps.read_namespaced_deployment("llm-serve", NS)
    after = apps.patch_namespaced_deployment("llm-serve", NS, restart["request"]["body"])
    restarted_at = restart["request"]["body"]["spec"]["template"]["metadata"]["annotations"]
    assert after.spec.template.metadata.annotations == restarted_at
    assert int(after.metadata.resource_version) > int(before.metadata.resource_version)
    assert after.metadata.generation == before.metadata.generation + 1
    assert after.spec.template.spec.containers[0].image == before.spec.template.spec.containers[0].image
    image = {
        "spec": {"template": {"spec": {"containers": [{"name": "vllm", "image": "vllm/vllm-openai:v0.7"}]}}}
    }
    apps.patch_namespaced_deployment("llm-serve", NS, image, _content_type="application/merge-patch+json")
    assert ("PATCH", f"/apis/apps/v1/namespaces/{NS}/deployments/llm-serve") in apiserver.requests
    stored = apiserver.get("deployments", NS, "llm-serve")
    assert stored is not None
    assert [c["image"] for c in stored["spec"]["template"]["spec"]["containers"]] == ["vllm/vllm-openai:v0.7"]
    assert stored["spec"]["template"]["metadata"]["annotations"] == restarted_at  # merged, not replaced


def test_scale_subresource(apiserver: FakeApiServer, apps: client.AppsV1Api) -> None:
    captured = fixture_answer("deployment-scale-get")
    scale = apps.api_client.sanitize_for_serialization(apps.read_namespaced_deployment_scale("llm-serve", NS))
    assert scale.keys() == captured.keys() and scale["status"] == captured["status"]
    assert scale["spec"] == captured["spec"]
    patched = apps.patch_namespaced_deployment_scale("llm-serve", NS, {"spec": {"replicas": 4}})
    assert patched.spec.replicas == 4 and patched.status.replicas == 3
    stored = apiserver.get("deployments", NS, "llm-serve")
    assert stored is not None and stored["spec"]["replicas"] == 4
    assert patched.metadata.resource_version == stored["metadata"]["resourceVersion"]
    invalid = load_fixture("error-422-invalid-scale")
    status, body = error_body(
        lambda: apps.patch_namespaced_deployment_scale("llm-serve", NS, invalid["request"]["body"])
    )
    assert (status, body) == (422, invalid["response"])


def test_statefulset_scale(apiserver: FakeApiServer, apps: client.AppsV1Api) -> None:
    labels = {"app": "db"}
    apiserver.apply(
        {
            "kind": "StatefulSet",
            "apiVersion": "apps/v1",
            "metadata": {"name": "db", "namespace": NS},
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": labels},
                "template": {"metadata": {"labels": labels}},
            },
        }
    )
    assert apps.read_namespaced_stateful_set_scale("db", NS).status.selector == "app=db"
    assert apps.patch_namespaced_stateful_set_scale("db", NS, {"spec": {"replicas": 0}}).spec.replicas == 0


def test_update_with_a_stale_version_conflicts(apps: client.AppsV1Api) -> None:
    deployment = apps.read_namespaced_deployment("llm-serve", NS)
    apps.patch_namespaced_deployment_scale("llm-serve", NS, {"spec": {"replicas": 2}})
    status, body = error_body(lambda: apps.replace_namespaced_deployment("llm-serve", NS, deployment))
    assert (status, body) == (409, fixture_answer("error-409-conflict"))
    fresh = apps.read_namespaced_deployment("llm-serve", NS)
    assert apps.replace_namespaced_deployment("llm-serve", NS, fresh).spec.replicas == 2


def test_create_job(apiserver: FakeApiServer, api_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(api_client)
    body: JSON = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"generateName": "train-", "labels": {"kueue.x-k8s.io/queue-name": "gpu"}},
        "spec": {
            "parallelism": 2,
            "completions": 2,
            "completionMode": "Indexed",
            "suspend": True,
            "template": {
                "spec": {"containers": [{"name": "t", "image": "pytorch"}], "restartPolicy": "Never"}
            },
        },
    }
    job = batch.create_namespaced_job(NS, body)
    assert job.metadata.name.startswith("train-") and job.metadata.namespace == NS and job.metadata.uid
    assert apiserver.get("jobs", NS, job.metadata.name) is not None
    assert job.metadata.name in {j.metadata.name for j in batch.list_namespaced_job(NS).items}
    body["metadata"] = {"name": job.metadata.name}
    status, error = error_body(lambda: batch.create_namespaced_job(NS, body))
    assert status == 409 and error["reason"] == "AlreadyExists"


# --- eviction -------------------------------------------------------------------------------------------


def evict(core: client.CoreV1Api, name: str, *, dry_run: bool = False) -> JSON:
    """Evict a pod in ml-prod; the server's raw answer (the client would read it as an Eviction)."""
    body = client.V1Eviction(metadata=client.V1ObjectMeta(name=name, namespace=NS))
    options: JSON = {"dry_run": "All"} if dry_run else {}
    answer = core.create_namespaced_pod_eviction(name, NS, body, _preload_content=False, **options)
    assert answer.status == 201
    result: JSON = json.loads(answer.data)
    return result


def test_eviction_succeeds_and_dry_run_changes_nothing(
    apiserver: FakeApiServer, core: client.CoreV1Api
) -> None:
    assert evict(core, "debug-shell", dry_run=True) == fixture_answer("eviction-ok-bare-pod")
    assert apiserver.get("pods", NS, "debug-shell") is not None
    assert evict(core, "debug-shell") == fixture_answer("eviction-ok-bare-pod")
    assert apiserver.get("pods", NS, "debug-shell") is None
    status, body = error_body(lambda: evict(core, "debug-shell"))
    assert status == 404 and body["message"] == 'pods "debug-shell" not found'
    assert ("POST", f"/api/v1/namespaces/{NS}/pods/debug-shell/eviction?dryRun=All") in apiserver.requests


def test_eviction_blocked_by_the_pdb(apiserver: FakeApiServer, core: client.CoreV1Api) -> None:
    apiserver.set_eviction(f"{NS}/{LLM_POD}", 429)
    assert error_body(lambda: evict(core, LLM_POD)) == (429, fixture_answer("eviction-pdb"))
    assert error_body(lambda: evict(core, LLM_POD, dry_run=True)) == (429, fixture_answer("eviction-dryrun"))
    assert apiserver.get("pods", NS, LLM_POD) is not None


def test_eviction_with_a_misconfigured_pdb(apiserver: FakeApiServer, core: client.CoreV1Api) -> None:
    apiserver.set_eviction(f"{NS}/{LLM_POD}", 500)
    status, body = error_body(lambda: evict(core, LLM_POD))
    assert status == 500 and body["reason"] == "InternalError"
    assert "more than one PodDisruptionBudget" in body["message"]
    with pytest.raises(ValueError):
        apiserver.set_eviction(f"{NS}/{LLM_POD}", 404)


# --- authorization and credentials ----------------------------------------------------------------------


def review(api_client: client.ApiClient, verb: str, resource: str, subresource: str = "") -> bool:
    attributes = client.V1ResourceAttributes(
        verb=verb, resource=resource, subresource=subresource, namespace=NS
    )
    body = client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(resource_attributes=attributes)
    )
    answer = client.AuthorizationV1Api(api_client).create_self_subject_access_review(body)
    assert answer.kind == "SelfSubjectAccessReview"
    return bool(answer.status.allowed)


def test_ssar_and_403(apiserver: FakeApiServer, api_client: client.ApiClient, apps: client.AppsV1Api) -> None:
    assert review(api_client, "patch", "deployments", "scale")
    apiserver.deny("patch", "deployments", "scale", NS)
    apiserver.deny("create", "pods", "eviction")  # every namespace
    assert not review(api_client, "patch", "deployments", "scale")
    assert not review(api_client, "create", "pods", "eviction")
    assert review(api_client, "patch", "deployments")  # the deployment itself is still patchable
    captured = load_fixture("error-403-viewer-scale")
    status, body = error_body(
        lambda: apps.patch_namespaced_deployment_scale("llm-serve", NS, captured["request"]["body"])
    )
    assert status == 403
    assert body == json.loads(
        json.dumps(captured["response"]).replace("system:serviceaccount:ml-prod:viewer", USER)
    )
    assert apps.read_namespaced_deployment_scale("llm-serve", NS).spec.replicas == 3


def test_401_for_a_bad_or_expired_token(
    apiserver: FakeApiServer, tmp_path: Path, core: client.CoreV1Api
) -> None:
    bad = apiserver.write_kubeconfig(tmp_path / "bad", token="wrong")
    with api_client_for(bad) as api:
        assert error_body(lambda: client.CoreV1Api(api).list_node()) == (
            401,
            fixture_answer("error-401-bad-token"),
        )
    assert core.list_node().items
    apiserver.expire_token()
    assert error_body(core.list_node) == (401, fixture_answer("error-401-bad-token"))


# --- faults ---------------------------------------------------------------------------------------------


def test_slow_answer_hits_the_clients_request_timeout(
    apiserver: FakeApiServer, core: client.CoreV1Api
) -> None:
    apiserver.delay(0.3)
    started = time.monotonic()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
        core.list_node(_request_timeout=0.05)
    assert isinstance(info.value.reason, urllib3.exceptions.ReadTimeoutError)
    assert time.monotonic() - started < 0.3 * 2
    apiserver.delay(0)
    assert core.list_node(_request_timeout=1).items


def test_refused_connection_after_stop(apiserver: FakeApiServer, core: client.CoreV1Api) -> None:
    apiserver.stop()
    with pytest.raises(urllib3.exceptions.MaxRetryError) as info:
        core.list_node(_request_timeout=1)
    assert isinstance(info.value.reason, urllib3.exceptions.NewConnectionError)


def test_requests_are_logged(apiserver: FakeApiServer, core: client.CoreV1Api) -> None:
    core.list_node(limit=2)
    core.read_node("gpu-node-1")
    assert apiserver.requests == [("GET", "/api/v1/nodes?limit=2"), ("GET", "/api/v1/nodes/gpu-node-1")]


# --- setup helpers --------------------------------------------------------------------------------------


def test_kubeconfig_merges_contexts(tmp_path: Path) -> None:
    path = tmp_path / "kubeconfig"
    with FakeApiServer(fixture_scene()) as one, FakeApiServer(generate_fleet(3, 10)) as two:
        one.write_kubeconfig(path, context="one")
        two.write_kubeconfig(path, context="two")
        for context, count in (("one", 7), ("two", 3)):
            with api_client_for(path, context) as api:
                assert len(client.CoreV1Api(api).list_node().items) == count
        with api_client_for(path) as api:  # current-context: the first one written
            assert len(client.CoreV1Api(api).list_node().items) == 7


def test_generate_fleet_is_deterministic_and_sized() -> None:
    fleet = generate_fleet(40, 500, seed=3)
    assert fleet == generate_fleet(40, 500, seed=3) and fleet != generate_fleet(40, 500, seed=4)
    kinds = [o["kind"] for o in fleet]
    assert kinds.count("Node") == 40 and kinds.count("Pod") == 500
    assert kinds.count("Job") == 2 and kinds.count("DaemonSet") == 1
    pods = [o for o in fleet if o["kind"] == "Pod"]
    gpus: dict[str, int] = {}
    for pod in pods:
        requested = pod["spec"]["containers"][0]["resources"]["requests"].get("nvidia.com/gpu", "0")
        gpus[pod["spec"]["nodeName"]] = gpus.get(pod["spec"]["nodeName"], 0) + int(requested)
    assert max(gpus.values()) == 8  # never more GPUs requested than a node has
    assert len({(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pods}) == 500
