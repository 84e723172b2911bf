"""The Kubernetes source facing hostile and broken objects, end to end: the real client over HTTP against
`FakeApiServer` fed escape sequences, bidi and zero-width characters and 5,000-character strings where
tenants write (a container image, a FailedScheduling message, a Job's failure, a node condition), objects of
the wrong shape, watch lines that are no events, and answers over the size limits.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui import cli
from aios_tui.config import KubernetesSettings
from aios_tui.domain import JobState, SourceState
from aios_tui.domain.text import LIMIT, LONG_LIMIT, is_clean
from aios_tui.poll import Poller
from aios_tui.sources._k8s_convert import IMAGE_LIMIT, LABEL_KEY_LIMIT
from aios_tui.sources.base import EvictionBlocked, SourceData, SourceError
from aios_tui.sources.kubernetes import KubernetesSource, api_client_factory
from tests.k8s.apiserver import FakeApiServer, fixture_scene
from tests.k8s.test_source import H100, wait_error, wait_for

MIB = 2**20


def make_source(kubeconfig: Path, **limits: int) -> KubernetesSource:
    """A source for the test server, with quick retries and ``limits`` (max_page_bytes …) as given."""
    return KubernetesSource(
        name="k8s:test",
        api_client_factory=api_client_factory(str(kubeconfig), "test"),
        settings=KubernetesSettings(enabled=True, kubeconfig=kubeconfig, timeout=3.0),
        context="test",
        retry_base=0.05,
        retry_max=0.2,
        watch_seconds=30.0,
        **limits,
    )


@pytest.fixture
def source(kubeconfig: Path) -> Iterator[KubernetesSource]:
    src = make_source(kubeconfig)
    yield src
    src.close_now()


ESCAPES = "\x1b[2J\x1b[H\x1b]0;pwned\x07\x1b]52;c;cm0gLXJmIH4=\x07\x9b31m"
"""Clear the screen, cursor home, set the title (OSC 0), write the clipboard (OSC 52), an 8-bit CSI."""


def hostile(tag: str) -> str:
    """``tag`` wrapped in escapes, a right-to-left override, a zero-width space and 5,000 characters."""
    return f"{ESCAPES}{tag}\u202e\u200b" + "y" * 5000


def shown(tag: str, limit: int) -> str:
    """What :func:`hostile` comes out as, cut to ``limit``."""
    return tag + "y" * (limit - 1 - len(tag)) + "…"


def strings(value: Any, where: str = "") -> Iterator[tuple[str, str]]:
    """Every string in a domain object, as (field path, text), mapping keys included."""
    if isinstance(value, str):
        yield where, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, dict | tuple | list | frozenset) or hasattr(value, "items"):
        items = value.items() if hasattr(value, "items") else enumerate(value)
        for k, v in items:
            if isinstance(k, str):
                yield f"{where}<key>", k
            yield from strings(v, f"{where}[]")


CAPS = {
    "message": LONG_LIMIT,
    "pending_reason": LONG_LIMIT,
    "image": IMAGE_LIMIT,
    "labels<key>": LABEL_KEY_LIMIT,
    "taints[].key": LABEL_KEY_LIMIT,
    "owner": 2 * LIMIT + 1,
    "placement[]": 2 * LIMIT + 1,
}


def cap_of(where: str) -> int:
    return next((cap for suffix, cap in CAPS.items() if where.endswith(suffix)), LIMIT)


def assert_clean(data: SourceData) -> None:
    seen = 0
    for kind in ("nodes", "gpus", "pods", "jobs", "endpoints", "pdbs"):
        for obj in getattr(data, kind):
            for where, text in strings(obj, kind):
                seen += 1
                assert is_clean(text), (where, text[:80])
                assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text), where
                assert not any(c in text for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
                assert not any(c in text for c in "\u200b\u200c\u200d\u2060\ufeff"), where
                assert len(text) <= cap_of(where), (where, len(text))
    assert seen > 500  # the walk reached the objects' strings, not nothing


def make_hostile(server: FakeApiServer) -> None:
    """Tenants' and nodes' words, hostile: an image, a FailedScheduling message, a Job's failure message,
    a node condition's message, a taint and a label."""
    deployment = server.get("Deployment", "ml-prod", "llm-serve")
    assert deployment is not None
    deployment["spec"]["template"]["spec"]["containers"][0]["image"] = hostile("IMAGE")
    server.apply(deployment)
    event = next(
        e
        for e in server.list("Event", "ml-prod")
        if e["reason"] == "FailedScheduling" and e["involvedObject"]["name"] == "train-llama-70b-0-qqjt8"
    )
    for other in server.list("Event", "ml-prod"):  # the latest event for the pod gives the reason
        if other["involvedObject"].get("name") == "train-llama-70b-0-qqjt8" and other is not event:
            server.delete("Event", "ml-prod", other["metadata"]["name"])
    event["message"] = hostile("SCHEDULER")
    server.apply(event)
    job = server.get("Job", "ml-prod", "train-llama-70b")
    assert job is not None
    failed = copy.deepcopy(job)
    failed["metadata"] = {"name": "train-failed", "namespace": "ml-prod", "labels": job["metadata"]["labels"]}
    failed["status"] = {"conditions": [{"type": "Failed", "status": "True", "message": hostile("FAILURE")}]}
    server.apply(failed)
    node = server.get("Node", "", H100)
    assert node is not None
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    ready["message"] = hostile("CONDITION")
    ready["reason"] = hostile("REASON")
    node["spec"]["taints"] = [{"key": "x/" + hostile("TAINT"), "value": hostile("V"), "effect": "NoSchedule"}]
    node["metadata"]["labels"]["team"] = hostile("LABEL")
    server.apply(node)


def test_hostile_strings_reach_no_domain_object(apiserver: FakeApiServer, kubeconfig: Path) -> None:
    make_hostile(apiserver)
    src = make_source(kubeconfig)
    try:
        data = src.fetch_now()
    finally:
        src.close_now()
    assert_clean(data)
    (endpoint,) = data.endpoints
    assert endpoint.image == shown("IMAGE", IMAGE_LIMIT)
    jobs = {j.name: j for j in data.jobs}
    assert jobs["train-llama-70b"].state is JobState.QUEUED
    assert jobs["train-llama-70b"].pending_reason == "rank 0: " + shown("SCHEDULER", LONG_LIMIT - 8)
    assert (jobs["train-failed"].state, jobs["train-failed"].pending_reason) == (
        JobState.FAILED,
        shown("FAILURE", LONG_LIMIT),
    )
    node = next(n for n in data.nodes if n.name == H100)
    ready = next(c for c in node.conditions if c.type == "Ready")
    assert (ready.reason, ready.message) == (shown("REASON", LIMIT), shown("CONDITION", LONG_LIMIT))
    (taint,) = node.taints
    assert (taint.key, taint.value) == ("x/" + shown("TAINT", LABEL_KEY_LIMIT - 2), shown("V", LIMIT))
    assert node.labels["team"] == shown("LABEL", LIMIT)
    assert not data.problems  # hostile words are cleaned, not a reason to skip


def test_snapshot_text_carries_no_escape_and_json_the_cleaned_words(
    apiserver: FakeApiServer, kubeconfig: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    make_hostile(apiserver)
    config = tmp_path / "config.toml"
    config.write_text(f'[kubernetes]\nenabled = true\nkubeconfig = "{kubeconfig}"\n')
    assert cli.main(["--config", str(config), "snapshot"]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text and "\x9b" not in text and "\x07" not in text
    assert "\u202e" not in text and "\u200b" not in text and "pwned" not in text
    assert "rank 0: SCHEDULERyyy" in text and "FAILUREyyy" in text  # the words themselves still shown
    assert cli.main(["--config", str(config), "snapshot", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    jobs = {j["name"]: j for j in doc["jobs"]}
    assert jobs["train-failed"]["pending_reason"] == shown("FAILURE", LONG_LIMIT)
    assert doc["endpoints"][0]["image"] == shown("IMAGE", IMAGE_LIMIT)
    node = next(n for n in doc["nodes"] if n["name"] == H100)
    ready = next(c for c in node["conditions"] if c["type"] == "Ready")
    assert ready["message"] == shown("CONDITION", LONG_LIMIT)


# --- malformed objects --------------------------------------------------------------------------------------


def bad_pod(server: FakeApiServer, name: str = "bad-pod", **changes: Any) -> dict[str, Any]:
    """A copy of a GPU pod under ``name``, with ``changes`` to its metadata, spec or status."""
    pod = server.get("Pod", "ml-prod", "llm-serve-c7b59b455-fwlz8")
    assert pod is not None
    pod["metadata"] = {**pod["metadata"], "name": name}
    for key in ("uid", "resourceVersion"):
        pod["metadata"].pop(key)
    for path, value in changes.items():
        section, field = path.split("__")
        pod[section][field] = value
    return pod


async def test_one_malformed_pod_leaves_the_rest_and_says_so(
    apiserver: FakeApiServer, kubeconfig: Path
) -> None:
    apiserver.apply(bad_pod(apiserver, metadata__ownerReferences=5))
    src = make_source(kubeconfig)
    poller = Poller([src])
    try:
        snap = await poller.refresh()
        (health,) = snap.sources
        assert health.state is SourceState.PARTIAL
        assert health.error == "1 pod skipped: metadata.ownerReferences is not a list (ml-prod/bad-pod)"
        assert len(snap.nodes) == 7 and len(snap.pods) == 39  # every node, every other pod
        assert "bad-pod" not in {p.name for p in snap.pods}
    finally:
        await poller.stop()


def test_malformed_objects_on_watches_are_skipped_counted_and_forgiven(
    source: KubernetesSource, apiserver: FakeApiServer
) -> None:
    assert not source.fetch_now().problems
    good = bad_pod(apiserver)
    apiserver.apply(bad_pod(apiserver, status__conditions="x"))  # arrives by the watch
    data = wait_for(source, lambda d: bool(d.problems))
    assert data.problems == ("1 pod skipped: status.conditions is not a list (ml-prod/bad-pod)",)
    assert len(data.pods) == 39 and len(data.nodes) == 7
    apiserver.apply(good)  # fixed: shown, no longer counted
    data = wait_for(source, lambda d: not d.problems)
    assert len(data.pods) == 40
    apiserver.apply(bad_pod(apiserver, spec__containers={"not": "a list"}))  # broken again
    data = wait_for(source, lambda d: bool(d.problems))
    assert data.problems == (
        "1 pod skipped: spec.containers is not a list (ml-prod/bad-pod, its last good version shown)",
    )
    assert len(data.pods) == 40  # the last good version
    apiserver.delete("Pod", "ml-prod", "bad-pod")
    data = wait_for(source, lambda d: not d.problems)
    assert len(data.pods) == 39


def test_objects_of_any_shape_on_the_wire(apiserver: FakeApiServer, kubeconfig: Path) -> None:
    node = apiserver.get("Node", "", H100)
    assert node is not None
    for name, section, field, value in (
        ("broken-1", "status", "conditions", "x"),
        ("broken-2", "status", "allocatable", {"nvidia.com/gpu": "eight"}),
    ):
        copy_ = copy.deepcopy(node)
        copy_["metadata"] = {**node["metadata"], "name": name}
        copy_["metadata"].pop("uid")
        copy_[section][field] = value
        apiserver.apply(copy_)
    apiserver.inject("Pod", {"metadata": [], "spec": {}}, event=None)
    apiserver.inject("Pod", 5, event=None)
    src = make_source(kubeconfig)
    try:
        data = src.fetch_now()
        assert data.problems == (
            "2 nodes skipped: status.conditions is not a list (broken-1) and 1 more",
            "2 pods skipped: metadata is not an object (unnamed) and 1 more",
        )
        assert len(data.nodes) == 7 and len(data.pods) == 39
        # Then on the watch: an event that is not JSON, one not an object, one of no known type.
        apiserver.inject_line("Job", b"{not json")
        apiserver.inject_line("Job", b"5")
        apiserver.inject_line("Job", b'{"type": "SURPRISE", "object": {}}')
        data = wait_for(src, lambda d: len(d.problems) == 3)
        assert data.problems[2] == "1 Job skipped: a watch event has no known type (unnamed)"
        assert len(data.nodes) == 7 and len(data.jobs) == 1  # the source goes on
        node["spec"]["unschedulable"] = True
        apiserver.apply(node)  # and the watches still follow the cluster
        wait_for(src, lambda d: next(n for n in d.nodes if n.name == H100).cordoned)
    finally:
        src.close_now()


# --- size limits ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_list_page_over_the_limit_is_refused_unread(
    apiserver: FakeApiServer, kubeconfig: Path, chunked: bool
) -> None:
    apiserver.pad_lists("pods", 128 * MIB, chunked=chunked)
    src = make_source(kubeconfig, max_page_bytes=MIB)
    try:
        message = wait_error(src, "larger than")
        assert message == (
            "pods: a list page of pods is larger than 1 MiB, the most aios-tui reads of one API response "
            "(GET /api/v1/pods); it was not read"
        )
    finally:
        src.close_now()
    deadline = time.monotonic() + 5.0
    while "pods" not in apiserver.padding_sent and time.monotonic() < deadline:
        time.sleep(0.02)  # the server notices the client hung up at its next write
    # Refused as it streamed in: what got out before the client hung up is socket buffers, not 128 MiB.
    assert apiserver.padding_sent["pods"] < 32 * MIB


def test_a_watch_event_over_the_limit_is_refused(apiserver: FakeApiServer, kubeconfig: Path) -> None:
    src = make_source(kubeconfig, max_event_bytes=MIB)
    try:
        src.fetch_now()
        apiserver.apply(bad_pod(apiserver, "big-pod", metadata__annotations={"note": "z" * (2 * MIB)}))
        message = wait_error(src, "larger than")
        assert message == (
            "pods: a watch event on pods is larger than 1 MiB, the most aios-tui reads of one event "
            "(watch /api/v1/pods); it was not read"
        )
    finally:
        src.close_now()


def test_the_default_limit_takes_a_page_of_heavy_pods(tmp_path: Path) -> None:
    """500 pods of 32 KiB each (managedFields, a last-applied annotation: a heavy production pod) in one
    page: 16 MiB, a quarter of the default limit."""
    scene = fixture_scene()
    template = next(o for o in scene if o["kind"] == "Pod" and o["metadata"]["name"] == "debug-shell")
    for i in range(500):
        pod = copy.deepcopy(template)
        pod["metadata"]["name"] = f"heavy-{i:03d}"
        pod["metadata"].pop("uid", None)
        pod["metadata"]["annotations"] = {"kubectl.kubernetes.io/last-applied-configuration": "a" * 32768}
        scene.append(pod)
    with FakeApiServer(scene, bookmark_interval=0.1) as server:
        src = make_source(server.write_kubeconfig(tmp_path / "kubeconfig"))
        try:
            data = src.fetch_now()
            assert len(data.pods) == 539 and not data.problems
        finally:
            src.close_now()


async def test_the_servers_error_messages_are_cleaned(apiserver: FakeApiServer, kubeconfig: Path) -> None:
    """A refusal quotes the server's words, which quote a tenant's names: an eviction blocked by a
    PodDisruptionBudget whose name carries a title-setting escape."""
    pdb = apiserver.get("PodDisruptionBudget", "ml-prod", "llm-serve")
    assert pdb is not None
    apiserver.delete("PodDisruptionBudget", "ml-prod", "llm-serve")
    pdb["metadata"] = {"name": "llm\x1b]0;pwned\x07-serve\u202e", "namespace": "ml-prod"}
    apiserver.apply(pdb)
    pod = "llm-serve-c7b59b455-fwlz8"
    apiserver.set_eviction(f"ml-prod/{pod}", 429)
    src = make_source(kubeconfig)
    try:
        with pytest.raises(EvictionBlocked) as info:
            await src.evict_pod("ml-prod", pod)
    finally:
        src.close_now()
    message = str(info.value)
    assert "\x1b" not in message and "\u202e" not in message and "pwned" not in message
    assert "The disruption budget llm-serve needs 3 healthy pods and has 1 currently" in message
    assert info.value.pdb == "ml-prod/llm-serve"


async def test_a_hostile_name_stays_one_path_segment(apiserver: FakeApiServer, kubeconfig: Path) -> None:
    """A name a broken server made up cannot aim an action at another object."""
    src = make_source(kubeconfig)
    try:
        with pytest.raises(SourceError, match="404"):
            await src.set_cordon("../namespaces/ml-prod/pods/debug-shell", True)
    finally:
        src.close_now()
    patched = "/api/v1/nodes/..%2Fnamespaces%2Fml-prod%2Fpods%2Fdebug-shell?fieldManager=aios-tui"
    assert ("PATCH", patched) in apiserver.requests
