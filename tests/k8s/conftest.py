"""Fixtures for the Kubernetes tests: a `FakeApiServer` with the captured scene, and a real client for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.k8s.apiserver import FakeApiServer, fixture_scene


def api_client_for(kubeconfig: Path, context: str | None = None) -> client.ApiClient:
    """A real `kubernetes` ApiClient configured from a kubeconfig file (no global state touched)."""
    configuration = client.Configuration()
    config.load_kube_config(config_file=str(kubeconfig), context=context, client_configuration=configuration)
    return client.ApiClient(configuration)


@pytest.fixture
def apiserver() -> Iterator[FakeApiServer]:
    """The captured scene served on 127.0.0.1, with bookmarks every 0.1 s."""
    with FakeApiServer(fixture_scene(), bookmark_interval=0.1) as server:
        yield server


@pytest.fixture
def kubeconfig(apiserver: FakeApiServer, tmp_path: Path) -> Path:
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    with api_client_for(kubeconfig) as api:
        yield api
