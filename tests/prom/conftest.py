"""Fixtures: a fleet exporter and a real ``prometheus`` scraping it every second (one of each per test).

``prometheus`` comes from :class:`~tests.prom.promserver.WarmPrometheus`: a server started one test ahead,
so that Prometheus's 5 s target-sync tick has mostly passed when the test begins.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import pytest

from tests.prom.exporter import FleetExporter, default_fleet
from tests.prom.promserver import PromServer, WarmPrometheus, prometheus_binary, require_prometheus


@pytest.fixture(scope="session")
def prometheus_bin() -> str:
    return require_prometheus()


@pytest.fixture(scope="session")
def warm_prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WarmPrometheus | None]:
    binary = prometheus_binary()
    if binary is None:
        yield None
        return
    pool = WarmPrometheus(binary, tmp_path_factory.mktemp("prometheus"))
    try:
        yield pool
    finally:
        pool.close()


@pytest.fixture
def _prometheus_pair(
    prometheus_bin: str, warm_prometheus: WarmPrometheus | None
) -> Iterator[tuple[PromServer, socket.socket]]:
    assert warm_prometheus is not None  # prometheus_bin skipped or failed already
    server, sock = warm_prometheus.take()
    try:
        yield server, sock
    finally:
        server.stop()
        with contextlib.suppress(OSError):
            sock.close()


@pytest.fixture
def fleet_exporter(request: pytest.FixtureRequest) -> Iterator[FleetExporter]:
    """:func:`tests.prom.exporter.default_fleet`, served on 127.0.0.1 (on the port the ``prometheus``
    fixture's server scrapes, when the test uses it)."""
    exporter = FleetExporter(*default_fleet())
    if "prometheus" in request.fixturenames:
        _, sock = request.getfixturevalue("_prometheus_pair")
        exporter.start(sock=sock)
    else:
        exporter.start()
    try:
        yield exporter
    finally:
        exporter.stop()


@pytest.fixture
def prometheus(
    fleet_exporter: FleetExporter, _prometheus_pair: tuple[PromServer, socket.socket]
) -> Iterator[PromServer]:
    """A started ``prometheus`` scraping ``fleet_exporter`` every second, after its first good scrape."""
    server, _ = _prometheus_pair
    assert server.targets == [fleet_exporter.target]
    server.wait_for('up{job="fleet"} == 1')
    yield server
