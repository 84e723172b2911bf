"""A pod's log, the object as YAML and the cluster's Warning events, read by the real client from the
protocol-level API server: tail, previous run, a container named, follow, errors in words, hostile and huge
lines cleaned and cut, memory bounded."""

from __future__ import annotations

import asyncio
import calendar
import copy
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from aios_tui.domain import Event
from aios_tui.poll import Poller
from aios_tui.sources._k8s_convert import EventRec
from aios_tui.sources._k8s_qualify import Qualifier
from aios_tui.sources.base import LogReader, ObjectReader, SourceData, SourceError
from aios_tui.sources.kubernetes import KubernetesSource
from aios_tui.sources.kubernetes.logs import LINE_LIMIT, MAX_LINE_BYTES, MAX_LOG_BYTES, split_lines
from aios_tui.sources.kubernetes.source import MAX_EVENTS, _events
from tests.k8s.apiserver import FakeApiServer
from tests.k8s.test_source import make_source, wait_for

SERVE = "ml-prod/llm-serve-c7b59b455-fwlz8"
"""A running pod of the captured scene, with one container (vllm)."""


@pytest.fixture
def source(kubeconfig: Path) -> Iterator[KubernetesSource]:
    src = make_source(kubeconfig)
    yield src
    src.close_now()


def log_queries(server: FakeApiServer) -> list[dict[str, str]]:
    return [
        dict(parse_qsl(urlsplit(target).query))
        for method, target in server.requests
        if method == "GET" and urlsplit(target).path.endswith("/log")
    ]


async def test_the_last_lines_of_a_log(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    assert isinstance(source, LogReader) and isinstance(source, ObjectReader)
    apiserver.set_log(SERVE, [f"INFO request {i} 200 12ms" for i in range(1000)])
    lines = await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", tail=10)
    assert lines == [f"INFO request {i} 200 12ms" for i in range(990, 1000)]
    (query,) = log_queries(apiserver)
    assert query == {"tailLines": "10", "limitBytes": str(MAX_LOG_BYTES)}


async def test_the_previous_run_and_a_named_container(
    source: KubernetesSource, apiserver: FakeApiServer
) -> None:
    apiserver.set_log(SERVE, ["now"])
    with pytest.raises(SourceError) as err:
        await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", previous=True)
    assert str(err.value) == (
        "no previous run of container vllm in pod ml-prod/llm-serve-c7b59b455-fwlz8: it has not restarted"
    )
    apiserver.set_log(SERVE, ["torch.OutOfMemoryError: CUDA out of memory", "Killed"], previous=True)
    assert await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", previous=True) == [
        "torch.OutOfMemoryError: CUDA out of memory",
        "Killed",
    ]
    assert log_queries(apiserver)[-1]["previous"] == "true"

    pod = copy.deepcopy(apiserver.get("pods", "ml-prod", "llm-serve-c7b59b455-fwlz8"))
    assert pod is not None
    pod["spec"]["containers"].append({"name": "proxy", "image": "envoyproxy/envoy:v1.31"})
    apiserver.apply(pod)
    apiserver.set_log(SERVE, ["[proxy] upstream connect error"], container="proxy")
    with pytest.raises(SourceError) as err:
        await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8")
    assert str(err.value) == (
        "logs of pod ml-prod/llm-serve-c7b59b455-fwlz8: a container name must be specified for pod "
        "llm-serve-c7b59b455-fwlz8, choose one of: [vllm proxy]"
    )
    proxy = await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", container="proxy")
    assert proxy == ["[proxy] upstream connect error"]
    assert await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", container="vllm") == ["now"]


async def test_errors_say_what_to_do(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    with pytest.raises(SourceError) as err:
        await source.read_log("ml-prod", "gone-pod")
    assert str(err.value) == "pod ml-prod/gone-pod not found"
    with pytest.raises(SourceError) as err:
        await source.read_log("ml-prod", "train-llama-70b-0-qqjt8")
    assert str(err.value) == (
        'logs of pod ml-prod/train-llama-70b-0-qqjt8: container "trainer" in pod "train-llama-70b-0-qqjt8" '
        "is waiting to start: ContainerCreating"
    )
    apiserver.deny("get", "pods", "log", "ml-prod")
    with pytest.raises(SourceError) as err:
        await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8")
    assert str(err.value) == (
        "forbidden: you may not read logs of pods in ml-prod (RBAC: user "
        "system:serviceaccount:default:tester may not get pods/log in namespace ml-prod)"
    )
    with pytest.raises(SourceError) as err:  # the source's token is never in it
        apiserver.expire_token()
        await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8")
    assert "401" in str(err.value) and apiserver.token not in str(err.value)


async def test_hostile_and_huge_lines_come_out_clean_and_cut(
    source: KubernetesSource, apiserver: FakeApiServer
) -> None:
    apiserver.set_log(
        SERVE,
        [
            "\x1b[2J\x1b]0;pwned\x07GET /v1/chat\u202e200\u200b ok\x1b[0m",
            "\x1b]52;c;ZWNobyBoaQ==\x07clipboard\tand\ttabs\r",
            "é日本" + "y" * 50_000,
            "after the long one",
        ],
    )
    lines = await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8")
    assert lines[:2] == ["GET /v1/chat200 ok", "clipboard and tabs"]
    assert len(lines[2]) == LINE_LIMIT and lines[2].startswith("é日本yyy") and lines[2].endswith("…")
    assert lines[3] == "after the long one"
    assert len(lines) == 4


def test_a_line_without_end_is_held_bounded() -> None:
    """A 10 MB line that never ends (a binary dumped to stdout) is held to MAX_LINE_BYTES, then given cut."""

    def chunks() -> Iterator[bytes]:
        for _ in range(160):
            yield b"x" * 65_536
        yield b"\nnext\npartial"

    out = [line for batch in split_lines(chunks()) for line in batch]
    assert [len(line) for line in out] == [LINE_LIMIT, 4, 7]
    assert out[0].endswith("…") and out[1:] == ["next", "partial"]
    assert MAX_LINE_BYTES == 4 * LINE_LIMIT  # the most of an unended line held: 8,000 bytes, not 10 MB


async def test_at_most_tail_lines_and_limit_bytes(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    apiserver.set_log(SERVE, [f"{i:07d} " + "z" * 91 for i in range(60_000)])  # 100 bytes a line, 6 MB
    lines = await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", tail=100_000)
    # The server sends the first 4 MiB of the tail: 41,943 whole lines and 4 bytes of the next.
    assert len(lines) == 41_944 and lines[0].startswith("0000000 ") and lines[-1] == "0041"
    few = await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", tail=3)
    assert [line[:7] for line in few] == ["0059997", "0059998", "0059999"]
    # A server that ignores limitBytes is cut off after it, not read to the end.
    apiserver.honour_limit_bytes = False
    lines = await source.read_log("ml-prod", "llm-serve-c7b59b455-fwlz8", tail=100_000)
    assert lines[0].startswith("0000000 ") and 41_943 <= len(lines) <= 41_943 + 656  # + one 64 KiB read


async def test_follow_gets_lines_as_they_are_written(
    source: KubernetesSource, apiserver: FakeApiServer
) -> None:
    apiserver.set_log(SERVE, ["one", "two", "three"])
    follow = source.follow_log("ml-prod", "llm-serve-c7b59b455-fwlz8", tail=2)
    got = [await asyncio.wait_for(anext(follow), 5), await asyncio.wait_for(anext(follow), 5)]
    assert got == ["two", "three"]
    apiserver.append_log(SERVE, ["four \x1b[31mred\x1b[0m", "five"])
    got = [await asyncio.wait_for(anext(follow), 5), await asyncio.wait_for(anext(follow), 5)]
    assert got == ["four red", "five"]
    assert log_queries(apiserver)[-1] == {"tailLines": "2", "follow": "true"}
    apiserver.end_log(SERVE)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(follow), 5)

    # A follower the caller stops is closed at once: its thread ends, the server's stream too.
    follow = source.follow_log("ml-prod", "llm-serve-c7b59b455-fwlz8", tail=1)
    apiserver.set_log(SERVE, ["again"])
    assert await asyncio.wait_for(anext(follow), 5) == "again"
    pending = asyncio.ensure_future(anext(follow))
    await asyncio.sleep(0.1)
    pending.cancel()
    await asyncio.wait_for(follow.aclose(), 5)  # type: ignore[attr-defined]


async def test_objects_as_yaml(source: KubernetesSource, apiserver: FakeApiServer) -> None:
    node = await source.read_object("node", "ip-10-0-3-31.ec2.internal")
    assert node.startswith("kind: Node\napiVersion: v1\nmetadata:\n  name: ip-10-0-3-31.ec2.internal\n")
    assert "managedFields" not in node and "nvidia.com/gpu: '4'" in node
    pod = copy.deepcopy(apiserver.get("pods", "ml-prod", "llm-serve-c7b59b455-fwlz8"))
    assert pod is not None and pod["metadata"].get("managedFields")
    pod["metadata"]["labels"]["team"] = "\x1b[2Jevil\u202eteam"
    apiserver.apply(pod)
    text = await source.read_object("pod", SERVE)
    # YAML writes the escape as the two characters \e (shown, harmless); the bidi override is taken out.
    assert "  name: llm-serve-c7b59b455-fwlz8\n" in text and 'team: "\\e[2Jevilteam"\n' in text
    assert "managedFields" not in text and "\x1b" not in text and "\u202e" not in text
    assert (await source.read_object("endpoint", "ml-prod/llm-serve")).startswith("kind: Deployment\n")
    assert (await source.read_object("job", "ml-prod/train-llama-70b")).startswith("kind: Job\n")
    with pytest.raises(SourceError) as err:
        await source.read_object("pod", "ml-prod/gone")
    assert str(err.value) == "pod ml-prod/gone not found in k8s:test"
    with pytest.raises(SourceError) as err:
        await source.read_object("gpu", "GPU-1")
    assert str(err.value) == "k8s:test shows nodes, pods, jobs and endpoints as YAML, not gpu"


def _epoch(text: str) -> float:
    return float(calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ")))


async def test_warning_events_reach_the_snapshot(kubeconfig: Path, apiserver: FakeApiServer) -> None:
    src = make_source(kubeconfig)
    poller = Poller([src])
    try:
        snap = await poller.refresh()
        scheduling = [e for e in snap.events if e.reason == "FailedScheduling"]
        assert len(scheduling) == 13 and all(e.kind == "pod" and e.source == "k8s:test" for e in scheduling)
        assert not any(e.reason in ("Scheduled", "SuccessfulCreate") for e in snap.events)  # Normal: left out
        (metric,) = [e for e in snap.events if e.reason == "FailedGetPodsMetric"]
        assert (metric.kind, metric.key, metric.count, metric.time) == (
            "endpoint",  # the autoscaler's event is its Deployment's, an endpoint
            "ml-prod/llm-serve",
            2,
            _epoch("2026-11-29T23:04:00Z"),
        )
        # The scheduler's words still say why the gang waits.
        (job,) = snap.jobs
        assert "Insufficient nvidia.com/gpu" in job.pending_reason

        apiserver.warn("Node", "ip-10-0-1-11.ec2.internal", "NodeNotReady", "kubelet stopped posting")
        apiserver.warn("Deployment", "ml-prod/llm-serve", "ProgressDeadlineExceeded", "rollout stuck")
        apiserver.warn("ReplicaSet", "ml-prod/llm-serve-c7b59b455", "FailedCreate", "quota exceeded", count=9)
        pod = copy.deepcopy(apiserver.get("pods", "ml-prod", "llm-serve-c7b59b455-fwlz8"))
        assert pod is not None
        oom = {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-29T23:30:00Z"}
        pod["status"]["containerStatuses"][0].update(restartCount=2, lastState={"terminated": oom})
        apiserver.apply(pod)
        wait_for(src, lambda d: len(d.events) == 19 and any(e.reason == "OOMKilled" for e in d.events))
        snap = await poller.refresh()
        found = {(e.kind, e.key, e.reason): e for e in snap.events}
        assert ("node", "ip-10-0-1-11.ec2.internal", "NodeNotReady") in found
        assert ("endpoint", "ml-prod/llm-serve", "ProgressDeadlineExceeded") in found
        assert found[("endpoint", "ml-prod/llm-serve", "FailedCreate")].count == 9
        killed = found[("pod", SERVE, "OOMKilled")]
        assert killed.time == _epoch("2026-11-29T23:30:00Z") and killed.warning
        serve = next(p for p in snap.pods if p.key == SERVE)
        assert (serve.restarts, serve.reason, serve.containers) == (2, "OOMKilled", ("vllm",))
        times = [e.time for e in snap.events]
        assert times == sorted(times, reverse=True)
    finally:
        await poller.stop()


def test_events_are_bounded_newest_first_and_qualified() -> None:
    recs = [
        EventRec(Event(float(i), "pod", f"ml/p{i}", "BackOff", "", True, 1, "k8s:a"))
        for i in range(MAX_EVENTS + 500)
    ]
    told = [Event(1e9, "pod", "ml/oom", "OOMKilled", "container x was OOM-killed", True, 1, "k8s:a")]
    events = _events(recs, told, {}, frozenset())
    assert len(events) == MAX_EVENTS == 2000
    assert events[0].key == "ml/oom" and events[1].time == MAX_EVENTS + 499.0 and events[-1].time == 501.0
    # Several contexts in one view: the keys carry the context, as the objects' do.
    node = Event(5.0, "node", "gpu-1", "NodeNotReady", "", True, 1, "k8s:a")
    data = Qualifier("prod").data(SourceData(events=(node, told[0])))
    assert [e.key for e in data.events] == ["prod/gpu-1", "prod/ml/oom"]
