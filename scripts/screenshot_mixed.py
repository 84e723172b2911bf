"""Render the README's mixed-fleet screenshots: the console on real sources of every kind at once.

    .venv/bin/python scripts/screenshot_mixed.py

Every source is the real one, talking to the test suite's peers on 127.0.0.1 (nothing is drawn by hand and
no source is faked): Kubernetes through the protocol-level API server with the captured cluster, AWS
through a moto server, Google Cloud and Azure through their protocol-level API servers, and a bare-metal
host over SSH replaying the recorded H200. It needs the test extra and the cloud extras
(``pip install -e '.[test,gcp,azure]'``). Pictures: the nodes (every source's machines in one list, the
header's sources) and the node pools (EKS, ASG, MIG, GKE, VMSS and AKS pools side by side), at 120x40.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the peers live in the test suite

import asyncssh  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: E402

from aios_tui.config import (  # noqa: E402
    AwsSettings,
    AzureSettings,
    GcpSettings,
    KubernetesSettings,
    Settings,
    SshHostSettings,
    SshSettings,
)
from aios_tui.domain import clock  # noqa: E402
from aios_tui.ui.harness import FakeClock  # noqa: E402

OUT = ROOT / "screenshots"
SIZE = (120, 40)

Steps = Callable[[Any], Awaitable[None]]


@contextlib.asynccontextmanager
async def peers(tmp: Path) -> AsyncIterator[Settings]:
    """Every peer started, and the settings that point the console at them."""
    from moto.server import ThreadedMotoServer

    from tests.aws.conftest import FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN, seed
    from tests.azure import conftest as azure
    from tests.azure.armserver import ArmServer
    from tests.gcp import conftest as gcp
    from tests.gcp.server import GoogleCloud
    from tests.k8s.apiserver import FakeApiServer, fixture_scene
    from tests.ssh import sshd

    for var in list(os.environ):
        if var.startswith(("AWS_", "KUBECONFIG", "GOOGLE_", "CLOUDSDK_", "AZURE_", "REQUESTS_CA_BUNDLE")):
            del os.environ[var]
    google = GoogleCloud().start()
    gcp.seed(google)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    google.register_key(gcp.SA_EMAIL, private.public_key())
    (tmp / "gcloud").mkdir()
    (tmp / "sa.json").write_text(json.dumps(gcp.service_account(google.url, pem)), encoding="utf-8")
    (tmp / "arm").mkdir()
    arm = ArmServer(
        tmp / "arm",
        tenant=azure.TENANT,
        client_id=azure.CLIENT_ID,
        client_secret=azure.FAKE_SECRET,
        token=azure.FAKE_TOKEN,
    )
    arm.__enter__()
    azure.seed(arm)
    (tmp / "azure-config").mkdir()
    os.environ.update(
        GOOGLE_APPLICATION_CREDENTIALS=str(tmp / "sa.json"),
        CLOUDSDK_CONFIG=str(tmp / "gcloud"),
        AZURE_CONFIG_DIR=str(tmp / "azure-config"),
        AZURE_TENANT_ID=azure.TENANT,
        AZURE_CLIENT_ID=azure.CLIENT_ID,
        AZURE_CLIENT_SECRET=azure.FAKE_SECRET,
        AZURE_AUTHORITY_HOST=arm.url,
        REQUESTS_CA_BUNDLE=str(arm.ca_file),
    )
    os.environ.update(
        AWS_ACCESS_KEY_ID=FAKE_KEY_ID,
        AWS_SECRET_ACCESS_KEY=FAKE_SECRET,
        AWS_SESSION_TOKEN=FAKE_TOKEN,
        AWS_CONFIG_FILE=str(tmp / "aws-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(tmp / "aws-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
    )
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    client_key = asyncssh.generate_private_key("ssh-ed25519")
    key_file = tmp / "id_ed25519"
    client_key.write_private_key(str(key_file))
    host = await sshd.start(client_key)
    known_hosts = tmp / "known_hosts"
    known_hosts.write_text(host.known_hosts_line())
    (tmp / "ssh_config").write_text("")
    try:
        _, port = moto.get_host_and_port()
        aws_url = f"http://127.0.0.1:{port}"
        seed(aws_url)
        with FakeApiServer(fixture_scene(), bookmark_interval=0.1) as api:
            kubeconfig = api.write_kubeconfig(tmp / "kubeconfig", context="prod")
            yield Settings(
                user="oncall",
                audit_path=tmp / "audit.jsonl",
                kubernetes=KubernetesSettings(enabled=True, kubeconfig=kubeconfig),
                aws=AwsSettings(
                    enabled=True, regions=("us-east-1", "us-west-2"), endpoint_url=aws_url, spot_prices=False
                ),
                gcp=GcpSettings(enabled=True, projects=("alpha", "beta"), endpoint_url=google.url),
                azure=AzureSettings(
                    enabled=True, subscriptions=(azure.SUB_A, azure.SUB_B), endpoint_url=arm.url
                ),
                ssh=SshSettings(config=tmp / "ssh_config"),
                ssh_hosts=(
                    SshHostSettings(
                        name="dgx-lab-01",
                        host="127.0.0.1",
                        port=host.port,
                        user="gpu",
                        known_hosts=known_hosts,
                        identity_file=key_file,
                    ),
                ),
            )
    finally:
        await host.close()
        moto.stop()
        arm.__exit__(None, None, None)
        google.stop()


async def _nodes(pilot: Any) -> None:
    await pilot.press("1", "z")  # the nodes pane alone: every source's machines, with their $/h


async def _pools(pilot: Any) -> None:
    await pilot.press("p")


SHOTS: list[tuple[str, Steps]] = [
    ("mixed-fleet-nodes-120x40", _nodes),
    ("mixed-fleet-pools-120x40", _pools),
]


async def main() -> int:
    from aios_tui.cli import build_ops, make_poller
    from aios_tui.ui.app import AiosApp

    wanted = set(sys.argv[1:])
    OUT.mkdir(exist_ok=True)
    frozen = FakeClock()
    with tempfile.TemporaryDirectory() as name, clock.use(frozen):
        tmp = Path(name)
        async with peers(tmp) as settings:
            for shot, steps in SHOTS:
                if wanted and shot not in wanted:
                    continue
                poller = make_poller(settings)
                app = AiosApp(poller, build_ops(settings, poller), settings, live=False, clock=frozen)
                try:
                    await poller.refresh()
                    async with app.run_test(size=SIZE) as pilot:
                        await app.workers.wait_for_complete()
                        await pilot.pause()
                        await steps(pilot)
                        await app.workers.wait_for_complete()
                        await pilot.pause()
                        path = app.save_screenshot(f"{shot}.svg", str(OUT))
                finally:
                    await poller.stop()
                print(Path(path).relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
