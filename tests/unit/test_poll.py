"""The poller against small fake sources: merge, timeouts, errors, back-off, coalescing, poke, history."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
from collections.abc import Callable, Sequence

import pytest

from aios_tui.domain import NA, Endpoint, Gpu, Metric, Node, SourceState
from aios_tui.domain.model import gpu_slot
from aios_tui.poll import Poller, backoff_delay, describe_error
from aios_tui.sources.base import HistoryProvider, Source, SourceData, SourceError


class FakeSource:
    """A Source whose answers the test controls; counts calls and concurrent fetches."""

    def __init__(
        self,
        name: str,
        data: SourceData | None = None,
        *,
        interval: float = 0.01,
        timeout: float = 1.0,
        kind: str = "fake",
    ) -> None:
        self.name = name
        self.kind = kind
        self.interval = interval
        self.timeout = timeout
        self.data = data or SourceData()
        self.fail: Exception | None = None
        self.delay = 0.0
        self.hang = False
        self.calls = 0
        self.call_times: list[float] = []
        self.active = 0
        self.max_active = 0
        self.closed = False

    async def fetch(self) -> SourceData:
        self.calls += 1
        self.call_times.append(asyncio.get_running_loop().time())
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if self.hang:
                await asyncio.Event().wait()
            if self.fail is not None:
                raise self.fail
            return self.data
        finally:
            self.active -= 1

    async def close(self) -> None:
        self.closed = True


class FakeHistorySource(FakeSource):
    """A source that keeps its own history (like Prometheus)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.asked: list[tuple[str, str, str, int, float]] = []

    def history(self, kind: str, key: str, metric: str, points: int, step: float) -> Sequence[float]:
        self.asked.append((kind, key, metric, points, step))
        return [float(i) for i in range(points)]


def node(name: str, source: str, pool: str = "pool") -> Node:
    return Node(name=name, source=source, pool=pool, zone="z1", instance_type="p5.48xlarge", gpu_model="H100")


def gpu(node_name: str, index: int, util: Metric = NA, **kw: Metric) -> Gpu:
    return Gpu(node=node_name, index=index, uuid=f"GPU-{node_name}-{index}", model="H100", util=util, **kw)  # type: ignore[arg-type]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


async def until(predicate: Callable[[], bool], within: float = 3.0) -> None:
    """Wait until ``predicate()`` holds, failing the test after ``within`` seconds."""
    async with asyncio.timeout(within):
        while not predicate():  # noqa: ASYNC110 - polling what the poller's tasks change is the point
            await asyncio.sleep(0.002)


def test_fake_sources_satisfy_the_protocols() -> None:
    assert isinstance(FakeSource("a"), Source)
    assert not isinstance(FakeSource("a"), HistoryProvider)
    assert isinstance(FakeHistorySource("b"), HistoryProvider)


def test_snapshot_before_any_fetch_is_empty_and_sources_are_starting() -> None:
    poller = Poller([FakeSource("a"), FakeSource("b")], clock=FakeClock(5.0))
    snap = poller.snapshot
    assert snap.timestamp == 5.0
    assert snap.nodes == () and snap.gpus == () and snap.endpoints == ()
    assert [(s.name, s.state) for s in snap.sources] == [
        ("a", SourceState.STARTING),
        ("b", SourceState.STARTING),
    ]
    assert list(poller.sources) == ["a", "b"]


def test_duplicate_source_names_are_rejected() -> None:
    with pytest.raises(ValueError, match="repeated: a"):
        Poller([FakeSource("a"), FakeSource("a")])


async def test_refresh_merges_two_sources_first_source_wins_on_the_same_key() -> None:
    a = FakeSource(
        "a",
        SourceData(
            nodes=(node("n1", "a"), node("n2", "a", pool="from-a")),
            gpus=(gpu("n1", 0, 50.0),),
            context="cluster-a",
        ),
    )
    b = FakeSource(
        "b",
        SourceData(
            nodes=(node("n2", "b", pool="from-b"), node("n3", "b")),
            gpus=(gpu("n3", 0, 10.0),),
            endpoints=(Endpoint(namespace="ml", name="llm", source="b"),),
            context="cluster-b",
        ),
    )
    clock = FakeClock(42.0)
    poller = Poller([a, b], clock=clock)
    snap = await poller.refresh()

    assert snap is poller.snapshot
    assert [n.name for n in snap.nodes] == ["n1", "n2", "n3"]
    assert snap.node_by_name["n2"].pool == "from-a"
    assert [g.uuid for g in snap.gpus] == ["GPU-n1-0", "GPU-n3-0"]
    assert [e.key for e in snap.endpoints] == ["ml/llm"]
    assert snap.context == "cluster-a, cluster-b"
    assert snap.timestamp == 42.0
    assert [(s.name, s.state, s.last_ok, s.failures) for s in snap.sources] == [
        ("a", SourceState.OK, 42.0, 0),
        ("b", SourceState.OK, 42.0, 0),
    ]
    assert all(s.latency_ms >= 0 for s in snap.sources)

    # New data from b changes the merge; unchanged a still wins on n2.
    b.data = SourceData(nodes=(node("n2", "b", pool="from-b"), node("n4", "b")))
    snap = await poller.refresh()
    assert [n.name for n in snap.nodes] == ["n1", "n2", "n4"]
    assert snap.node_by_name["n2"].pool == "from-a"
    assert snap.context == "cluster-a"


async def test_a_later_source_fills_what_the_earlier_left_unknown_on_endpoints_and_gpus() -> None:
    counted = gpu_slot("n2", 0)  # Kubernetes counts a node's GPUs; it cannot name them
    k8s = FakeSource(
        "k8s",
        SourceData(
            nodes=(node("n2", "k8s", pool="gpu"),),
            endpoints=(
                Endpoint(namespace="ml", name="llm", source="k8s", replicas_desired=3, server="vllm"),
                Endpoint(namespace="ml", name="embed", source="k8s", replicas_desired=1),
            ),
            gpus=(
                Gpu(node="n2", index=0, uuid=counted, model="H200", pod="ml/llm-0"),
                Gpu(node="n2", index=1, uuid=gpu_slot("n2", 1), model="H200", pod="ml/llm-1"),
                Gpu(node="n2", index=2, uuid="GPU-local", model="H200", util=5.0),  # e.g. NVML, listed first
            ),
        ),
    )
    prom = FakeSource(
        "prom",
        SourceData(
            nodes=(node("n2", "prom", pool="prometheus"),),
            endpoints=(
                Endpoint(namespace="ml", name="llm", source="prom", qps=12.5, p99_ms=80.0, server="triton"),
                Endpoint(namespace="ml", name="other", source="prom", qps=1.0),
            ),
            gpus=(
                Gpu(node="n2", index=0, uuid="GPU-a", model="H200", util=97.0, xid=79),
                Gpu(node="n2", index=1, uuid="GPU-b", model="H200", util=3.0, pod="ml/llm-0"),
                Gpu(node="n2", index=2, uuid="GPU-c", model="H100", util=50.0, temp=40.0),
                Gpu(node="n7", index=0, uuid="GPU-d", model="H200"),
            ),
        ),
    )
    snap = await Poller([k8s, prom]).refresh()
    llm, embed, other = snap.endpoints
    assert (llm.source, llm.replicas_desired, llm.qps, llm.p99_ms, llm.server) == (
        "k8s",
        3,
        12.5,
        80.0,
        "vllm",
    )
    assert (embed.qps, other.source, other.qps) == (NA, "prom", 1.0)
    a, b, local, d = snap.gpus
    # The measured GPU takes the counted one's place (uuid, readings); the count's pod fills in if none.
    assert (a.node, a.index, a.uuid, a.util, a.xid, a.pod) == ("n2", 0, "GPU-a", 97.0, 79, "ml/llm-0")
    assert (b.uuid, b.pod) == ("GPU-b", "ml/llm-0")  # the exporter saw which pod really holds it
    # Two measurements of one slot: the first source wins, the later fills what it lacks.
    assert (local.uuid, local.model, local.util, local.temp) == ("GPU-local", "H200", 5.0, 40.0)
    assert d.uuid == "GPU-d"
    assert snap.node_by_name["n2"].pool == "gpu"  # nodes are not combined: the first source wins whole


async def test_single_source_merge_reuses_its_tuples() -> None:
    # Reused when nothing needs filling in; a node without a price gets the bundled list price (a new tuple).
    priced = dataclasses.replace(node("n1", "a"), price_per_hour=12.0)
    data = SourceData(nodes=(priced,), gpus=(gpu("n1", 0), gpu("n1", 1)))
    poller = Poller([FakeSource("a", data)])
    snap = await poller.refresh()
    assert snap.nodes is data.nodes
    assert snap.gpus is data.gpus


async def test_a_live_snapshot_comes_with_what_every_repaint_reads_already_computed() -> None:
    """The header's totals, the verdicts and GPUs by node are computed off the event loop before the app
    sees the snapshot (a key pressed during a 5,000-node refresh waited ~20 ms more for them on the loop)."""
    data = SourceData(nodes=(node("n1", "a"),), gpus=(gpu("n1", 0), gpu("n1", 1)))
    poller = Poller([FakeSource("a", data, interval=0.01)])
    poller.start()
    try:
        async for snap in poller.updates():
            assert {"totals", "verdicts", "gpus_by_node"} <= set(vars(snap))
            assert snap.totals.gpus == 2
            break
    finally:
        await poller.stop()


async def test_a_hanging_source_goes_stale_keeps_its_data_and_the_others_keep_updating() -> None:
    good = FakeSource("good", SourceData(nodes=(node("g1", "good"),)), interval=0.005)
    slow = FakeSource("slow", SourceData(nodes=(node("s1", "slow"),)), interval=0.005, timeout=0.05)
    poller = Poller([good, slow], max_backoff=0.05)
    await poller.refresh()
    slow.hang = True
    poller.start()
    try:
        await until(lambda: poller.snapshot.source("slow").state is SourceState.STALE)  # type: ignore[union-attr]
        health = poller.snapshot.source("slow")
        assert health is not None
        assert health.error == "timed out after 0.05s"
        assert health.failures >= 1
        assert health.last_ok > 0
        calls = good.calls
        await until(lambda: good.calls > calls + 3)
        snap = poller.snapshot
        assert {n.name for n in snap.nodes} == {"g1", "s1"}
        assert snap.source("good").state is SourceState.OK  # type: ignore[union-attr]
    finally:
        await poller.stop()
    assert good.closed and slow.closed


async def test_a_raising_source_is_error_before_any_success_and_stale_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    src = FakeSource("k8s", SourceData(nodes=(node("n1", "k8s"),)))
    src.fail = ConnectionRefusedError("connect to 10.0.0.1:6443 refused")
    poller = Poller([src])
    with caplog.at_level(logging.WARNING, logger="aios_tui.poll"):
        snap = await poller.refresh()
    health = snap.source("k8s")
    assert health is not None
    assert health.state is SourceState.ERROR
    assert health.error == "connection refused (connect to 10.0.0.1:6443 refused)"
    assert health.failures == 1
    assert snap.nodes == ()
    assert any(r.name == "aios_tui.poll" and "refused" in r.getMessage() for r in caplog.records)

    src.fail = None
    snap = await poller.refresh()
    assert snap.source("k8s").state is SourceState.OK  # type: ignore[union-attr]
    assert snap.source("k8s").failures == 0  # type: ignore[union-attr]
    assert snap.source("k8s").error == ""  # type: ignore[union-attr]

    src.fail = RuntimeError("boom")
    await poller.refresh()
    snap = await poller.refresh()
    health = snap.source("k8s")
    assert health is not None
    assert health.state is SourceState.STALE
    assert health.failures == 2
    assert health.error == "RuntimeError: boom"
    assert [n.name for n in snap.nodes] == ["n1"]


def test_backoff_doubles_from_the_interval_up_to_the_cap() -> None:
    assert backoff_delay(2.0, 0, 60.0) == 2.0
    assert [backoff_delay(2.0, n, 60.0) for n in range(1, 7)] == [4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert backoff_delay(2.0, 10_000, 60.0) == 60.0
    # A cap below the interval never makes a failing source poll faster than a healthy one.
    assert backoff_delay(10.0, 3, 5.0) == 10.0


async def test_a_source_with_a_cheap_failing_fetch_caps_its_own_back_off() -> None:
    # Kubernetes (a failing fetch is one bounded GET /readyz) sets max_backoff: a server back from a hang
    # is read again within that, not after the poller's minute.
    clock = FakeClock()
    src = FakeSource("k8s", interval=0.01)
    src.fail = OSError("no route to host")
    src.max_backoff = 0.02  # type: ignore[attr-defined]
    poller = Poller([src], max_backoff=60.0, clock=clock)
    poller.start()
    try:
        await until(lambda: src.calls >= 6)
        health = poller.snapshot.source("k8s")
        assert health is not None and health.failures >= 5
        assert health.next_try - clock.now == pytest.approx(0.02)  # 0.01 × 2**5 = 0.32 without the cap
    finally:
        await poller.stop()


async def test_the_loop_backs_off_after_failures_and_survives_them() -> None:
    src = FakeSource("flaky", interval=0.01)
    src.fail = OSError("no route to host")
    poller = Poller([src], max_backoff=0.08)
    poller.start()
    try:
        await until(lambda: src.calls >= 5)
    finally:
        await poller.stop()
    gaps = [b - a for a, b in zip(src.call_times, src.call_times[1:], strict=False)]
    # Without back-off every gap would be ~0.01 s; with it they are 0.02, 0.04, 0.08, 0.08 (capped).
    for gap, expected in zip(gaps, [0.02, 0.04, 0.08, 0.08], strict=False):
        assert gap >= expected * 0.9, gaps
    assert poller.snapshot.source("flaky").failures >= 4  # type: ignore[union-attr]


def test_error_messages_are_short_single_line_and_hide_credentials() -> None:
    exc = ValueError(
        "401 from https://api:6443\nAuthorization: Bearer eyJhbGciOi.secret token=abc123 " + "x" * 500
    )
    message = describe_error(exc)
    assert message.startswith("ValueError: 401 from https://api:6443 Authorization")
    assert "\n" not in message
    assert "eyJhbGciOi" not in message and "abc123" not in message
    assert len(message) <= 200
    assert describe_error(TimeoutError(), 5.0) == "timed out after 5s"
    # A source's own sentence is shown as words, without "SourceError:"; a foreign error keeps its class.
    said = "cannot list nodes: forbidden (token=abc123)"
    assert describe_error(SourceError(said)) == "cannot list nodes: forbidden (token=***)"
    assert describe_error(SourceError("")) == "SourceError"


async def test_fetches_of_one_source_never_overlap() -> None:
    src = FakeSource("slow", interval=0.001)
    src.delay = 0.03
    poller = Poller([src])
    poller.start()
    try:
        # refresh() from a headless command while the loop runs must wait its turn too.
        await asyncio.gather(poller.refresh(), poller.refresh())
        poller.poke()
        await until(lambda: src.calls >= 6)
    finally:
        await poller.stop()
    assert src.max_active == 1


async def test_updates_coalesce_to_the_latest_snapshot_and_end_on_stop() -> None:
    src = FakeSource("a")
    clock = FakeClock(0.0)
    poller = Poller([src], clock=clock)
    updates = poller.updates()
    first = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0)
    clock.now = 1.0
    await poller.refresh()
    assert (await first).timestamp == 1.0

    # Three snapshots while nobody reads: the reader then gets only the newest, and nothing else queued.
    for t in (2.0, 3.0, 4.0):
        clock.now = t
        await poller.refresh()
    latest = await anext(updates)
    assert latest.timestamp == 4.0
    assert latest is poller.snapshot
    pending = asyncio.ensure_future(anext(updates))
    await asyncio.sleep(0.02)
    assert not pending.done()

    await poller.stop()
    with pytest.raises(StopAsyncIteration):
        await pending


async def test_poke_wakes_a_sleeping_loop() -> None:
    a = FakeSource("a", interval=60.0)
    b = FakeSource("b", interval=60.0)
    poller = Poller([a, b])
    poller.start()
    try:
        await until(lambda: a.calls == 1 and b.calls == 1)
        await asyncio.sleep(0.02)
        assert (a.calls, b.calls) == (1, 1)
        poller.poke("a")
        await until(lambda: a.calls == 2)
        await asyncio.sleep(0.02)
        assert b.calls == 1
        poller.poke()
        await until(lambda: a.calls == 3 and b.calls == 2)
        poller.poke("no-such-source")
    finally:
        await poller.stop()


async def test_a_poke_during_a_fetch_fetches_again_right_after() -> None:
    src = FakeSource("a", interval=60.0)
    src.delay = 0.05
    poller = Poller([src])
    poller.start()
    try:
        await until(lambda: src.active == 1)
        poller.poke("a")  # the change happened after this fetch started: it must not wait 60 s
        await until(lambda: src.calls == 2)
    finally:
        await poller.stop()


async def test_history_from_the_ring_buffer() -> None:
    src = FakeSource("a")
    poller = Poller([src], history_points=3, history_window=0.0)  # a point per fetch

    def fleet(u0: Metric, u1: Metric, qps: Metric) -> SourceData:
        return SourceData(
            nodes=(node("n1", "a"),),
            gpus=(gpu("n1", 0, u0, power=300.0), gpu("n1", 1, u1, power=100.0)),
            endpoints=(Endpoint(namespace="ml", name="llm", source="a", qps=qps),),
        )

    for data in (fleet(10.0, 30.0, 1.0), fleet(20.0, NA, 2.0), fleet(NA, NA, NA), fleet(40.0, 60.0, 4.0)):
        src.data = data
        await poller.refresh()

    # history_points=3: the oldest of the four fetches is gone.
    assert _nan_eq(poller.history("gpu", "GPU-n1-0", "util"), [20.0, math.nan, 40.0])
    assert _nan_eq(poller.history("gpu", "GPU-n1-0", "util", points=2), [math.nan, 40.0])
    assert _nan_eq(poller.history("node", "n1", "util"), [20.0, math.nan, 50.0])
    assert _nan_eq(poller.history("node", "n1", "power"), [400.0, 400.0, 400.0])
    assert _nan_eq(poller.history("endpoint", "ml/llm", "qps"), [2.0, math.nan, 4.0])
    assert poller.history("gpu", "GPU-none", "util") == []
    assert poller.history("gpu", "GPU-n1-0", "no_such_metric") == []
    assert poller.history("rack", "r1", "util") == []

    # A GPU that appears later has NaN for the fetches before it.
    src.data = SourceData(gpus=(gpu("n1", 0, 1.0), gpu("n1", 2, 2.0)))
    await poller.refresh()
    assert _nan_eq(poller.history("gpu", "GPU-n1-2", "util"), [math.nan, math.nan, 2.0])


async def test_history_is_delegated_to_a_history_provider() -> None:
    prom = FakeHistorySource(
        "prom", SourceData(gpus=(gpu("n1", 0, 50.0),), nodes=(node("n1", "prom"),)), interval=15.0
    )
    other = FakeSource("other", SourceData(gpus=(gpu("n9", 0, 5.0),)))
    poller = Poller([prom, other], history_points=4)
    assert poller.history("gpu", "GPU-n1-0", "util") == []  # nothing fetched yet
    await poller.refresh()

    assert poller.history("gpu", "GPU-n1-0", "util") == [0.0, 1.0, 2.0, 3.0]
    assert poller.history("node", "n1", "util", points=2) == [0.0, 1.0]
    assert prom.asked == [("gpu", "GPU-n1-0", "util", 4, 15.0), ("node", "n1", "util", 2, 15.0)]
    # An object the provider did not report comes from the other source's ring buffer.
    assert poller.history("gpu", "GPU-n9-0", "util") == [5.0]
    assert len(prom.asked) == 2


def _nan_eq(got: Sequence[float], want: Sequence[float]) -> bool:
    return len(got) == len(want) and all(
        (math.isnan(g) and math.isnan(w)) or math.isclose(g, w, rel_tol=1e-6)
        for g, w in zip(got, want, strict=True)
    )


async def test_a_cloud_instance_joins_its_kubernetes_node_by_provider_id() -> None:
    pid = "aws:///us-east-1a/i-0abc"
    k8s_node = Node(name="ip-10-0-1-11.ec2.internal", source="k8s", pool="gpu", zone="us-east-1a",
                    instance_type="p5.48xlarge", provider_id=pid, ready=True, cordoned=True)  # fmt: skip
    k8s = FakeSource("k8s", SourceData(nodes=(k8s_node,)))
    instance = Node(name="i-0abc", source="aws", pool="asg-p5", zone="us-east-1a",
                    instance_type="p5.48xlarge", provider_id=pid, ready=False, price_per_hour=55.04,
                    lifecycle="spot", launched_at=1.7e9, instance_state="running")  # fmt: skip
    lonely = Node(name="i-0def", source="aws", pool="asg-p5", zone="us-east-1b", instance_type="p5.48xlarge",
                  provider_id="aws:///us-east-1b/i-0def", ready=False)  # fmt: skip
    aws = FakeSource(
        "aws", SourceData(nodes=(instance, lonely), problems=("eks:ListNodegroups: access denied",))
    )
    snap = await Poller([k8s, aws]).refresh()
    joined, alone = snap.nodes
    # The cluster's node, with what the cloud adds; its readiness and cordon stay the cluster's.
    assert (joined.name, joined.source, joined.pool, joined.ready, joined.cordoned) == (
        "ip-10-0-1-11.ec2.internal", "k8s", "gpu", True, True,
    )  # fmt: skip
    assert (joined.price_per_hour, joined.lifecycle, joined.launched_at, joined.instance_state) == (
        55.04, "spot", 1.7e9, "running",
    )  # fmt: skip
    assert (alone.name, alone.source, alone.ready) == (
        "i-0def",
        "aws",
        False,
    )  # joined no cluster: its own row
    k8s_health, aws_health = snap.sources
    assert k8s_health.state is SourceState.OK
    assert (aws_health.state, aws_health.error) == (SourceState.PARTIAL, "eks:ListNodegroups: access denied")


# --- lost, not gone --------------------------------------------------------------------------------------


class FakeTelemetry(FakeSource):
    """A source that cannot tell a removed machine from one it no longer reads (like Prometheus)."""

    keeps_lost = True


def _exporter(*names: str, xid: int = 0) -> SourceData:
    return SourceData(
        nodes=tuple(node(n, "prom") for n in names),
        gpus=tuple(Gpu(node=n, index=0, uuid=f"GPU-{n}", model="H100", util=90.0, xid=xid) for n in names),
    )


async def test_what_a_telemetry_source_stops_reporting_stays_lost_until_read_again() -> None:
    clock = FakeClock()
    src = FakeTelemetry("prom", _exporter("a", "b", xid=79), kind="prometheus")
    poller = Poller([src], clock=clock)
    await poller.refresh()
    read_at = clock.now
    clock.now += 30
    src.data = _exporter("a")  # b's exporter stopped
    snap = await poller.refresh()
    [lost_node] = [n for n in snap.nodes if n.lost_since]
    assert (lost_node.name, lost_node.lost_since) == ("b", read_at)
    [lost_gpu] = [g for g in snap.gpus if g.lost]
    assert lost_gpu.uuid == "GPU-b" and lost_gpu.util == 90.0  # its last reading, kept
    assert not lost_node.schedulable
    assert snap.totals.nodes_ready == 1 and snap.totals.gpus_used == 0
    assert snap.totals.avg_util == 90.0  # the lost GPU's old reading is out of the mean: only a's counts
    assert lost_gpu in snap.sick_gpus  # XID 79 keeps it on the health list while it is lost
    assert snap.sources[0].state is SourceState.PARTIAL
    assert "1 node no longer reported, kept as lost (e.g. b)" in snap.sources[0].error
    clock.now += 30
    snap = await poller.refresh()
    assert [n.lost_since for n in snap.nodes if n.name == "b"] == [read_at]  # still since its last reading
    src.data = _exporter("a", "b")  # back
    snap = await poller.refresh()
    assert not any(n.lost_since for n in snap.nodes) and not any(g.lost for g in snap.gpus)
    assert snap.sources[0].state is SourceState.OK


async def test_lost_objects_are_dropped_after_the_ttl_and_authoritative_sources_are_believed() -> None:
    clock = FakeClock()
    src = FakeTelemetry("prom", _exporter("a", "b"), kind="prometheus")
    cluster = FakeSource("k8s", SourceData(nodes=(node("c", "k8s"), node("d", "k8s"))), kind="kubernetes")
    poller = Poller([src, cluster], clock=clock, lost_ttl=100.0)
    await poller.refresh()
    src.data = _exporter("a")
    cluster.data = SourceData(nodes=(node("c", "k8s"),))  # d was deleted: the API says so
    clock.now += 50
    snap = await poller.refresh()
    assert sorted(n.name for n in snap.nodes) == ["a", "b", "c"]
    clock.now += 60  # b last read 110 s ago: past the ttl
    snap = await poller.refresh()
    assert sorted(n.name for n in snap.nodes) == ["a", "c"]


async def test_a_node_a_source_cannot_join_by_name_is_kept_apart() -> None:
    """The same host name from an SSH host and the cluster: two machines, not one."""
    cluster = FakeSource("k8s", SourceData(nodes=(node("box", "k8s"),), gpus=(gpu("box", 0, 10.0),)))
    ssh = FakeSource(
        "ssh",
        SourceData(
            nodes=(node("box", "ssh"), node("solo", "ssh")),
            gpus=(gpu("box", 0, 99.0), gpu("solo", 0, 50.0)),
            separate=frozenset({"box", "solo"}),
        ),
    )
    snap = await Poller([cluster, ssh]).refresh()
    assert sorted(n.name for n in snap.nodes) == ["box", "box@ssh", "solo"]  # no clash, no rename
    utils = {g.slot: g.util for g in snap.gpus}
    assert utils == {"box/gpu0": 10.0, "box@ssh/gpu0": 99.0, "solo/gpu0": 50.0}
    ssh.data = SourceData(nodes=(node("box", "ssh"),), gpus=(gpu("box", 0, 99.0),))  # tied to the node
    snap = await Poller([cluster, ssh]).refresh()
    assert [n.name for n in snap.nodes] == ["box"] and len(snap.gpus) == 1


async def test_the_health_says_when_the_next_try_is_and_keeps_the_last_error() -> None:
    clock = FakeClock()
    src = FakeSource("s", SourceData(nodes=(node("a", "s"),)), interval=10.0)
    poller = Poller([src], clock=clock, max_backoff=60.0)
    src.fail = ConnectionRefusedError("connect to 10.0.0.1:443 refused")
    poller.start()
    try:
        async for snap in poller.updates():
            health = snap.sources[0]
            if health.failures:
                break
    finally:
        await poller.stop()
    assert health.next_try == clock.now + 20.0  # the back-off: 2 × the interval after one failure
    assert health.last_error == "connection refused (connect to 10.0.0.1:443 refused)"
    assert health.last_error_at == clock.now


@pytest.mark.parametrize("order", ["k8s first", "prom first"])
async def test_replica_counts_stay_known_whichever_source_comes_first(order: str) -> None:
    # Kubernetes knows the Deployment's replicas; Prometheus sees traffic only (its 0/0 means unknown).
    k8s = Endpoint(namespace="ml", name="llm", source="k8s", replicas_desired=3, replicas_ready=3)
    prom = Endpoint(namespace="ml", name="llm", source="prom", qps=12.5, replicas_known=False)
    sources = [
        FakeSource("k8s", SourceData(endpoints=(k8s,))),
        FakeSource("prom", SourceData(endpoints=(prom,))),
    ]
    if order == "prom first":
        sources.reverse()
    snap = await Poller(sources).refresh()
    (e,) = snap.endpoints
    assert (e.replicas_known, e.replicas_desired, e.replicas_ready, e.qps) == (True, 3, 3, 12.5)


async def test_fetches_within_a_step_fold_into_the_newest_point() -> None:
    """Three points over 30 s: a point per 10 s, fetches inside one step replace its value (the newest point
    is always the latest reading), the next step starts a new point."""
    src = FakeSource("a")
    clock = FakeClock(1000.0)
    poller = Poller([src], clock=clock, history_points=3, history_window=30.0)
    for t, util in ((0, 10.0), (4, 11.0), (9, 12.0), (10, 20.0), (25, 30.0), (31, 40.0), (33, 41.0)):
        clock.now = 1000.0 + t
        src.data = SourceData(nodes=(node("n1", "a"),), gpus=(gpu("n1", 0, util),))
        await poller.refresh()
    series = poller.history("gpu", "GPU-n1-0", "util")
    # Points started at 0 (10, 11, 12), 10 (20) and 25 (30, 40, 41): the last three kept.
    assert series == [12.0, 20.0, 41.0] and series.step == 10.0  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("k8s_pid", "cloud_pid", "joins"),
    [
        # AKS writes the node resource group in lower case; ARM answers it as created.
        (
            "azure:///subscriptions/0000/resourceGroups/mc_rg_aks_eastus/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/aks-gpu-1-vmss/virtualMachines/3",
            "azure:///subscriptions/0000/resourceGroups/MC_rg_aks_eastus/providers/Microsoft.Compute/"
            "virtualMachineScaleSets/aks-gpu-1-vmss/virtualMachines/3",
            True,
        ),
        ("gce://proj/us-central1-a/gke-a3-pool-1", "gce://proj/us-central1-a/gke-a3-pool-1", True),
        # Other clouds' IDs are compared as written: an instance id differs in case only when it is another.
        ("aws:///us-east-1a/i-0ABC", "aws:///us-east-1a/i-0abc", False),
    ],
)
async def test_provider_ids_join_as_each_cloud_compares_them(
    k8s_pid: str, cloud_pid: str, joins: bool
) -> None:
    def node(name: str, source: str, pid: str) -> Node:
        return Node(name=name, source=source, pool="gpu", zone="", instance_type="", provider_id=pid)

    k8s = FakeSource("k8s", SourceData(nodes=(node("node-1", "k8s", k8s_pid),)))
    cloud = FakeSource("cloud", SourceData(nodes=(node("vm-1", "cloud", cloud_pid),)))
    snap = await Poller([k8s, cloud]).refresh()
    assert [n.name for n in snap.nodes] == (["node-1"] if joins else ["node-1", "vm-1"])


async def test_two_machines_of_one_name_in_two_sources_are_two_rows() -> None:
    """A name joins two sources' nodes only where one of them has no provider ID: a VM named like another
    source's node, with another provider ID, is another machine, shown under a name that says its source."""

    def node(source: str, pid: str) -> Node:
        return Node(name="gpu-vm", source=source, pool="p", zone="", instance_type="", provider_id=pid)

    k8s = FakeSource("k8s", SourceData(nodes=(node("k8s", "gce://proj/us-central1-a/gpu-vm"),)))
    azure = FakeSource("azure", SourceData(nodes=(node("azure", "azure:///subscriptions/s/x/gpu-vm"),)))
    bare = FakeSource("ssh", SourceData(nodes=(node("ssh", ""),)))  # no provider ID: joins by name
    snap = await Poller([k8s, azure, bare]).refresh()
    assert [(n.name, n.source) for n in snap.nodes] == [("gpu-vm", "k8s"), ("gpu-vm (azure)", "azure")]
