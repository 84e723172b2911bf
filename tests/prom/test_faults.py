"""The Prometheus source facing hostile, broken and missing data, each against a real peer: Debian's
``prometheus`` (TLS and basic auth from its own web config, two scrape jobs, stopped exporters) and, for
what a reverse proxy in front of it may answer, the slow proxy's own answers."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aios_tui.config import PrometheusSettings, PromQuerySettings
from aios_tui.domain import NA, SourcePart, SourceState
from aios_tui.domain.text import is_clean
from aios_tui.poll import Poller
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.prometheus import PrometheusSource
from tests.prom.exporter import DcgmGpu, FleetExporter, ServedEndpoint, default_fleet
from tests.prom.promserver import (
    BASIC_AUTH_HASH,
    BASIC_AUTH_PASSWORD,
    BASIC_AUTH_USER,
    PromServer,
    free_port,
    self_signed,
)
from tests.prom.slowproxy import SlowProxy, http_response
from tests.prom.test_source import eventually, history_until, known, settings


@contextlib.contextmanager
def serving(binary: str, root: Path, targets: list[str], **kw: Any) -> Iterator[PromServer]:
    """A ``prometheus`` of the test's own (its first scrape comes ~5 s after the start)."""
    server = PromServer(binary, root, targets, **kw)
    server.start()
    try:
        yield server
    finally:
        server.stop()


async def fetch_error(src: PrometheusSource) -> str:
    try:
        with pytest.raises(SourceError) as info:
            await src.fetch()
    finally:
        await src.close()
    return str(info.value)


def strings(data: SourceData) -> list[str]:
    """Every string of every object the source gave."""
    out: list[str] = []
    for obj in (*data.nodes, *data.gpus, *data.endpoints, *data.parts):
        out.extend(v for f in dataclasses.fields(obj) if isinstance(v := getattr(obj, f.name), str))
    return [*out, *data.problems]


# --- 1. remote text is cleaned ------------------------------------------------------------------------------


async def test_label_values_with_terminal_escapes_are_cleaned(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    evil_host = "gpu-\x1b[2Jevil\u202e"  # clear the screen; right-to-left override
    fleet_exporter.set_gpus([
        DcgmGpu(host=evil_host, gpu=0, uuid="GPU-\x1b]0;pwned\x07x1", model="NVIDIA \x1b[31mH200",
                pod="llm\u200b-0", namespace="ml\x1b[0m-prod", util=50.0),
    ])  # fmt: skip
    fleet_exporter.set_endpoints(
        [ServedEndpoint("vllm", "ml\x1b[0m-prod", "llm\x9b5m-serve", "model\x1b]52;c;Zm9v\x07-x", qps=10.0)]
    )
    src = PrometheusSource(settings=settings(prometheus, servers=("vllm",)))
    try:
        data = await eventually(src.fetch, lambda d: len(d.gpus) == 1 and len(d.endpoints) == 1)
        # The series are still selected by the label values as stored.
        node = await history_until(src, ("node", "gpu-evil", "util", 10, 1.0), lambda v: bool(known(v)))
        gpu = await history_until(src, ("gpu", "GPU-x1", "util", 10, 1.0), lambda v: bool(known(v)))
    finally:
        await src.close()
    (g,) = data.gpus
    (e,) = data.endpoints
    assert (g.node, g.uuid, g.model, g.pod) == ("gpu-evil", "GPU-x1", "H200", "ml-prod/llm-0")
    assert (e.key, e.model) == ("ml-prod/llm-serve", "model-x")
    assert [n.name for n in data.nodes] == ["gpu-evil"]
    assert all(is_clean(text) for text in strings(data)), strings(data)
    assert set(known(node)) == {50.0} and set(known(gpu)) == {50.0}


# --- 2. bounded reads ---------------------------------------------------------------------------------------


async def test_an_answer_over_the_limit_is_refused_naming_the_query(prometheus: PromServer) -> None:
    # Every DCGM series with all its labels: ~17 kB (gzip-compressed on the wire) against a 10 kB limit.
    whole = PromQuerySettings(metric="qps", query='{__name__=~"DCGM_.+"}')
    src = PrometheusSource(settings=settings(prometheus, queries=(whole,), max_answer_mb=0.01))
    assert await fetch_error(src) == (
        f"{prometheus.url} ([[prometheus.queries]] #1 qps query): the answer is over 0.01 MB "
        "([prometheus] max_answer_mb): narrow the query or raise the limit"
    )


def big_vector(mb: int) -> Iterator[bytes]:
    """A valid instant-vector answer of about ``mb`` MB, in 16 kB pieces made as they are read."""
    item = b'{"metric":{"UUID":"GPU-%08d","Hostname":"node"},"value":[1,"1"]},'
    block = b"".join(item % i for i in range(16384 // len(item % 0)))
    yield b'{"status":"success","data":{"resultType":"vector","result":['
    for _ in range(mb * 2**20 // len(block)):
        yield block
    yield b'{"metric":{},"value":[1,"1"]}]}}'


@pytest.mark.parametrize("how", ["chunked", "content-length", "gzip"])
async def test_a_100_mb_answer_is_refused_without_reading_it_whole(how: str) -> None:
    with SlowProxy(9) as proxy:
        proxy.answer = lambda: http_response(
            200,
            "application/json",
            big_vector(100),
            length=100 * 2**20 if how == "content-length" else None,
            gzip=how == "gzip",
        )
        url = proxy.url
        s = PrometheusSettings(enabled=True, url=url, timeout=20.0, max_answer_mb=1, servers=())
        error = await fetch_error(PrometheusSource(settings=s))
        await asyncio.sleep(0.2)  # the proxy notices the clients have gone
    assert error == (
        f"{url} (GPUs query): the answer is over 1 MB ([prometheus] max_answer_mb): "
        "narrow the query or raise the limit"
    )
    # Each of the fetch's queries got its own 100 MB answer. Read until over the limit (or refused at the
    # headers): what was sent is the limit and the sockets' buffers. Compressed, a 1000:1 bomb is sent
    # whole (~0.3 MB), and inflated only to the limit.
    per_answer = proxy.sent / proxy.connections
    assert per_answer < (2**20 if how == "gzip" else 12 * 2**20), (proxy.connections, proxy.sent)


# --- 3. one replica counted once ----------------------------------------------------------------------------


async def test_two_scrape_jobs_of_one_server_do_not_double_its_traffic(
    prometheus_bin: str, tmp_path: Path
) -> None:
    with (
        FleetExporter(*default_fleet()) as exporter,
        serving(prometheus_bin, tmp_path, [exporter.target], jobs={"fleet-again": [exporter.target]}) as prom,
    ):
        prom.wait_for(f'count(up{{instance="{exporter.target}"}} == 1) == 2', timeout=30)
        prom.wait_for_scrapes(5)
        assert len(prom.query("vllm:num_requests_waiting")) == 2  # the peer holds each series twice
        src = PrometheusSource(settings=settings(prom))
        try:
            data = await eventually(
                src.fetch, lambda d: len(d.endpoints) == 4 and all(e.qps is not NA for e in d.endpoints)
            )
        finally:
            await src.close()
    eps = {e.name: e for e in data.endpoints}
    target = prom.targets[0]
    for name, qps in (("llm-serve", 12.0), ("ranker", 50.0), ("wide-deep", 30.0), ("resnet", 20.0)):
        assert eps[name].qps == pytest.approx(qps, rel=0.2), name
    assert eps["llm-serve"].queue == 3 and eps["ranker"].queue == 1  # gauges too
    assert len(data.gpus) == 4
    assert [(p.name, p.state) for p in data.parts] == [
        (f"{target} (fleet)", SourceState.OK),
        (f"{target} (fleet-again)", SourceState.OK),
    ]


# --- 5. per-target health -----------------------------------------------------------------------------------


async def test_a_stopped_exporter_is_a_target_down_since_its_last_scrape(
    prometheus_bin: str, tmp_path: Path
) -> None:
    a = FleetExporter([DcgmGpu(host="host-a", gpu=0, uuid="GPU-a")])
    b = FleetExporter([DcgmGpu(host="host-b", gpu=0, uuid="GPU-b")])
    a.start()
    b.start()
    a_target, b_target = a.target, b.target
    try:
        with serving(prometheus_bin, tmp_path, [a_target, b_target]) as prom:
            prom.wait_for("count(DCGM_FI_DEV_GPU_UTIL) == 2", timeout=30)
            src = PrometheusSource(settings=settings(prom, servers=()))
            poller = Poller([src])
            try:
                snap = await poller.refresh()
                assert snap.sources[0].state is SourceState.OK
                assert [p.state for p in snap.sources[0].parts] == [SourceState.OK] * 2
                b.stop()
                stopped = time.time()
                prom.wait_for(f'up{{instance="{b_target}"}} == 0')
                data = await src.fetch()
                snap = await poller.refresh()
            finally:
                await poller.stop()
    finally:
        a.stop()
    assert [g.node for g in data.gpus] == ["host-a"]  # b's GPU is not read any more (the poller keeps it)
    down = next(p for p in data.parts if p.state is SourceState.ERROR)
    assert stopped - 1.5 < down.last_ok <= stopped  # its last good scrape, from `up`'s history
    since = time.strftime("%H:%M:%S UTC", time.gmtime(down.last_ok))
    up = next(p for p in data.parts if p.state is SourceState.OK)
    want = [
        SourcePart(f"{a_target} (fleet)", SourceState.OK, last_ok=up.last_ok),
        SourcePart(
            f"{b_target} (fleet)", SourceState.ERROR, last_ok=down.last_ok, error=f"down since {since}"
        ),
    ]
    assert data.parts == tuple(sorted(want, key=lambda p: p.name))
    assert data.problems == (f"1 of 2 scrape targets down: {b_target} (fleet) down since {since}",)
    (health,) = snap.sources
    assert health.state is SourceState.PARTIAL and f"{b_target} (fleet) down since {since}" in health.error


# --- 6. both spellings; 7. what Prometheus alone can and cannot say ----------------------------------------


async def test_names_a_prometheus_client_server_gives_over_openmetrics(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    _, endpoints = default_fleet()
    # Triton in its default setup: no latency summary, only the duration counter.
    served = [dataclasses.replace(e, summary=False) for e in endpoints if e.server != "tfserving"]
    fleet_exporter.set_endpoints(served)
    fleet_exporter.openmetrics = True
    prometheus.wait_for("vllm_num_requests_waiting")
    prometheus.wait_for_scrapes(6)  # the old spellings out of the 4 s rate window
    assert prometheus.query("vllm:num_requests_waiting") == []
    assert prometheus.query("nv_inference_request_success") == []
    assert len(prometheus.query("nv_inference_request_success_total")) == 1
    src = PrometheusSource(settings=settings(prometheus, servers=("vllm", "triton", "torchserve")))
    try:
        data = await eventually(
            src.fetch, lambda d: len(d.endpoints) == 3 and all(e.qps is not NA for e in d.endpoints)
        )
    finally:
        await src.close()
    eps = {e.name: e for e in data.endpoints}
    llm, ranker, resnet = eps["llm-serve"], eps["ranker"], eps["resnet"]
    assert (llm.model, llm.queue) == ("meta-llama/Llama-3.1-8B-Instruct", 3)
    assert llm.qps == pytest.approx(12.0, rel=0.2) and llm.error_rate == pytest.approx(0.05, rel=0.2)
    assert (llm.p50_ms, llm.p99_ms) == (pytest.approx(650.0), pytest.approx(4000.0))
    assert (ranker.model, ranker.queue) == ("ranker-onnx", 1)
    assert ranker.qps == pytest.approx(50.0, rel=0.2) and ranker.error_rate == pytest.approx(0.02, rel=0.2)
    assert (ranker.p50_ms, ranker.p99_ms, ranker.mean_ms) == (NA, NA, pytest.approx(8.0))
    assert resnet.mean_ms == pytest.approx(15.0) and resnet.qps == pytest.approx(20.0, rel=0.2)


async def test_model_server_series_without_the_endpoint_label_say_so(
    fleet_exporter: FleetExporter, prometheus: PromServer
) -> None:
    fleet_exporter.set_endpoints([
        ServedEndpoint("vllm", "ml-prod", "", "llama"),  # the relabelling that adds `service` missed it
        ServedEndpoint("triton", "ml-prod", "ranker", "ranker-onnx"),
    ])  # fmt: skip
    prometheus.wait_for('vllm:num_requests_running{model_name="llama"}')
    assert "service" not in prometheus.query('vllm:num_requests_running{model_name="llama"}')[0]["metric"]

    async def read(**kw: object) -> SourceData:
        src = PrometheusSource(settings=settings(prometheus, servers=("vllm", "triton"), **kw))
        try:
            return await eventually(
                src.fetch, lambda d: len(d.endpoints) == 1 and d.endpoints[0].qps is not NA
            )
        finally:
            await src.close()

    data = await read()
    assert [e.key for e in data.endpoints] == ["ml-prod/ranker"]
    assert data.problems == (
        "1 vllm series have no 'service' label, so no endpoint: set [prometheus] endpoint_label to the "
        "label that names the endpoint",
    )
    # Named by another label, the vLLM series give an endpoint; now Triton's lack that label.
    data = await read(endpoint_label="model_name")
    assert [e.key for e in data.endpoints] == ["ml-prod/llama"]
    assert data.problems == (
        "1 triton series have no 'model_name' label, so no endpoint: set [prometheus] endpoint_label to "
        "the label that names the endpoint",
    )


# --- 4. errors in words -------------------------------------------------------------------------------------

LOGIN = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>SSO</body></html>\n"


@pytest.mark.parametrize(
    ("status", "content_type", "body", "said"),
    [
        (200, "text/html", LOGIN,
         "an HTML page came back, not JSON: is the URL the API's (not a login page or a proxy)?"),
        (403, "text/html", LOGIN,
         "HTTP 403 forbidden: an HTML page came back, not Prometheus' JSON (a proxy or a login page?)"),
        (502, "text/plain", b"upstream connect error or disconnect/reset before headers\n",
         "HTTP 502 bad gateway: upstream connect error or disconnect/reset before headers"),
        (422, "application/json", b'{"status":"error","errorType":"execution","error":"\\u001b[2Jboom"}',
         "HTTP 422 unprocessable entity: execution: boom"),
        (200, "application/json", b'{"status":"success","data":',
         "the answer is not valid JSON (Expecting value at character 27)"),
        (200, "application/json", b'{"hello":"world"}', "the answer is not a Prometheus API answer"),
        (200, "application/json", b'{"status":"success","data":{"resultType":"vector","result":"x"}}',
         "the answer is not a list of series"),
    ],
)  # fmt: skip
async def test_what_a_proxy_answers_is_said_in_words(
    status: int, content_type: str, body: bytes, said: str
) -> None:
    with SlowProxy(9) as proxy:
        proxy.answer = lambda: http_response(status, content_type, [body])
        url = proxy.url
        s = PrometheusSettings(enabled=True, url=url, timeout=2.0, servers=())
        assert await fetch_error(PrometheusSource(settings=s)) == f"{url} (GPUs query): {said}"


async def test_a_name_that_does_not_resolve_says_dns() -> None:
    s = PrometheusSettings(enabled=True, url="http://prometheus.invalid:9090", timeout=2.0, servers=())
    error = await fetch_error(PrometheusSource(settings=s))
    assert error.startswith(
        "http://prometheus.invalid:9090 (GPUs query): DNS: cannot resolve the host name ("
    ), error


@pytest.fixture
def secured(prometheus_bin: str, tmp_path: Path) -> Iterator[PromServer]:
    """A ``prometheus`` with a self-signed certificate and basic auth (its one target never answers)."""
    cert, key = self_signed(tmp_path)
    web = (
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  {BASIC_AUTH_USER}: {BASIC_AUTH_HASH}\n"
    )
    with serving(prometheus_bin, tmp_path / "prom", [f"127.0.0.1:{free_port()}"], web_config=web) as prom:
        yield prom


async def test_tls_and_basic_auth_failures_in_words(
    secured: PromServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="urllib3")  # the kubernetes client sets it to WARNING
    host = f"127.0.0.1:{secured.port}"
    good = f"https://{BASIC_AUTH_USER}:{BASIC_AUTH_PASSWORD}@{host}"

    async def error(url: str, verify: bool = False) -> str:
        s = PrometheusSettings(enabled=True, url=url, timeout=2.0, verify_tls=verify, servers=())
        return await fetch_error(PrometheusSource(settings=s))

    untrusted = await error(good, verify=True)
    assert untrusted.startswith(
        f"https://{host} (GPUs query): TLS: the server's certificate is not trusted ("
    ), untrusted
    assert await error(f"https://{host}") == (
        f"https://{host} (GPUs query): HTTP 401 unauthorized: the server wants credentials "
        "([prometheus] bearer_token_env, or user:password in the URL)"
    )
    assert await error(f"https://{BASIC_AUTH_USER}:wrong-9f1e@{host}") == (
        f"https://{host} (GPUs query): HTTP 401 unauthorized: the URL's user and password refused"
    )
    assert await error(f"http://{host}") == (
        f"http://{host} (GPUs query): HTTP 400 bad request: Client sent an HTTP request to an HTTPS server."
    )
    s = PrometheusSettings(enabled=True, url=good, timeout=2.0, verify_tls=False, servers=())
    src = PrometheusSource(settings=s)
    try:
        data = await src.fetch()
    finally:
        await src.close()
    assert data.context == f"https://{host}" and data.problems == ()
    assert "/api/v1/query" in caplog.text  # urllib3's DEBUG lines were captured …
    assert BASIC_AUTH_PASSWORD not in caplog.text + repr(data)  # … and none holds the password
