"""The Google Cloud test server (tests/gcp/server.py) on 127.0.0.1, seeded with a small GPU fleet in two
projects, and real Application Default Credentials files for google-auth to load: a service account key
with a freshly generated RSA key (the SDK signs its own JWTs with it, which the server verifies) and a
workload identity federation config whose token exchange goes to the server's token endpoint."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from tests.gcp.server import COMPUTE, GoogleCloud, Project

JSON = dict[str, Any]

SA_EMAIL = "aios-tui-test@alpha.iam.gserviceaccount.com"
SUBJECT_TOKEN = "aiosTuiFakeSubjectTokenDoNotLeak0123456789abcdef"
"""The workload identity federation subject token (what an OIDC provider would have issued)."""


def require_google() -> None:
    """The official libraries; without them the tests skip, or fail under ``CI=true``."""
    try:
        import google.cloud.compute_v1
        import google.cloud.container_v1  # noqa: F401
    except ImportError as exc:
        why = f"google-cloud-compute / google-cloud-container are not installed ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true: scripts/test.sh installs the gcp extra)", pytrace=False)
        pytest.skip(f"{why}: pip install -e '.[gcp]'", allow_module_level=True)


@pytest.fixture(scope="session")
def cloud() -> Iterator[GoogleCloud]:
    require_google()
    server = GoogleCloud().start()
    try:
        yield server
    finally:
        server.stop()


@dataclass(frozen=True)
class Key:
    pem: str
    public: rsa.RSAPublicKey

    def secrets(self) -> tuple[str, ...]:
        """Pieces of the private key a leak would show (its base64 body, a line of it)."""
        body = "".join(line for line in self.pem.splitlines() if "-----" not in line)
        return (body[100:160], body[-120:-70], self.pem.splitlines()[3])


@pytest.fixture(scope="session")
def key() -> Key:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return Key(pem, private.public_key())


def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Google or gcloud settings of the machine running the tests: an empty gcloud config folder."""
    for var in list(os.environ):
        if var.startswith(("GOOGLE_", "CLOUDSDK_", "GCE_", "GCLOUD_")):
            monkeypatch.delenv(var)
    (tmp_path / "gcloud").mkdir(exist_ok=True)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))


@pytest.fixture
def adc_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cloud: GoogleCloud, key: Key) -> Path:
    """A service account key file as ``GOOGLE_APPLICATION_CREDENTIALS`` (project_id ``alpha``)."""
    _clean_env(monkeypatch, tmp_path)
    cloud.register_key(SA_EMAIL, key.public)
    path = tmp_path / "sa.json"
    path.write_text(json.dumps(service_account(cloud.url, key.pem)), encoding="utf-8")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    return path


def service_account(url: str, pem: str, project: str | None = "alpha") -> JSON:
    info = {
        "type": "service_account",
        "private_key_id": "0123456789abcdef0123456789abcdef01234567",
        "private_key": pem,
        "client_email": SA_EMAIL,
        "client_id": "109876543210987654321",
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": f"{url}/token",
        "universe_domain": "googleapis.com",
    }
    if project:
        info["project_id"] = project
    return info


@pytest.fixture
def adc_federated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, cloud: GoogleCloud) -> Path:
    """Workload identity federation (``external_account``): google-auth exchanges the subject token at the
    server's token endpoint (STS) for an access token, over HTTP. ``GOOGLE_CLOUD_PROJECT`` names the
    project, as it must for these credentials."""
    _clean_env(monkeypatch, tmp_path)
    subject = tmp_path / "subject-token"
    subject.write_text(SUBJECT_TOKEN, encoding="utf-8")
    path = tmp_path / "federated.json"
    info = {
        "type": "external_account",
        "audience": "//iam.googleapis.com/projects/111111111111/locations/global/workloadIdentityPools/ci"
        "/providers/gh",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": f"{cloud.url}/token",
        "credential_source": {"file": str(subject)},
    }
    path.write_text(json.dumps(info), encoding="utf-8")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(path))
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "alpha")
    return path


# --- the scene ---------------------------------------------------------------------------------------------


def _zone_link(project: str, zone: str) -> str:
    return f"{COMPUTE}projects/{project}/zones/{zone}"


def instance(
    project: Project,
    zone: str,
    name: str,
    machine: str,
    *,
    status: str = "RUNNING",
    gpus: tuple[str, int] | None = None,
    labels: dict[str, str] | None = None,
    created_by: str = "",
    scheduling: JSON | None = None,
    created: str = "2026-11-29T08:15:00.000-08:00",
) -> JSON:
    """A Compute Engine instance as ``instances.aggregatedList`` sends it."""
    zl = _zone_link(project.id, zone)
    out: JSON = {
        "kind": "compute#instance",
        "id": str(7000000000000000000 + len(project.instances)),
        "creationTimestamp": created,
        "name": name,
        "machineType": f"{zl}/machineTypes/{machine}",
        "status": status,
        "zone": zl,
        "networkInterfaces": [{"network": f"{COMPUTE}projects/{project.id}/global/networks/default"}],
        "scheduling": scheduling
        or {
            "onHostMaintenance": "TERMINATE",
            "automaticRestart": True,
            "preemptible": False,
            "provisioningModel": "STANDARD",
        },
        "selfLink": f"{zl}/instances/{name}",
        "labels": labels or {},
        "fingerprint": "tA2IUv8zq2Q=",
    }
    if gpus:
        out["guestAccelerators"] = [
            {"acceleratorType": f"{zl}/acceleratorTypes/{gpus[0]}", "acceleratorCount": gpus[1]}
        ]
    if created_by:
        out["metadata"] = {
            "kind": "compute#metadata",
            "fingerprint": "Bf1tcY4SqaE=",
            "items": [{"key": "created-by", "value": created_by}, {"key": "instance-template", "value": "x"}],
        }
    return out


def template(
    project: Project,
    name: str,
    machine: str,
    *,
    region: str = "",
    gpus: tuple[str, int] | None = None,
    spot: bool = False,
    labels: dict[str, str] | None = None,
) -> JSON:
    where = f"regions/{region}" if region else "global"
    props: JSON = {
        "machineType": machine,
        "scheduling": {"provisioningModel": "SPOT", "preemptible": False}
        if spot
        else {"provisioningModel": "STANDARD"},
        "labels": labels or {},
    }
    if gpus:
        props["guestAccelerators"] = [{"acceleratorType": gpus[0], "acceleratorCount": gpus[1]}]
    out: JSON = {
        "kind": "compute#instanceTemplate",
        "id": str(8000000000000000000 + len(project.templates)),
        "name": name,
        "properties": props,
        "selfLink": f"{COMPUTE}projects/{project.id}/{where}/instanceTemplates/{name}",
        "creationTimestamp": "2026-10-01T00:00:00.000-07:00",
    }
    if region:
        out["region"] = f"{COMPUTE}projects/{project.id}/regions/{region}"
    return out


def mig(
    project: Project,
    name: str,
    tmpl: JSON,
    size: int,
    *,
    zone: str = "",
    region: str = "",
    zones: tuple[str, ...] = (),
) -> JSON:
    where = f"zones/{zone}" if zone else f"regions/{region}"
    out: JSON = {
        "kind": "compute#instanceGroupManager",
        "id": str(9000000000000000000 + len(project.migs)),
        "name": name,
        "baseInstanceName": name,
        "instanceTemplate": tmpl["selfLink"],
        "versions": [{"instanceTemplate": tmpl["selfLink"]}],
        "targetSize": size,
        "selfLink": f"{COMPUTE}projects/{project.id}/{where}/instanceGroupManagers/{name}",
        "status": {"isStable": True},
        "currentActions": {"none": size},
    }
    if zone:
        out["zone"] = _zone_link(project.id, zone)
    else:
        out["region"] = f"{COMPUTE}projects/{project.id}/regions/{region}"
        out["distributionPolicy"] = {"zones": [{"zone": _zone_link(project.id, z)} for z in zones]}
    return out


def created_by(project: Project, zone: str, name: str) -> str:
    """The ``created-by`` metadata Compute Engine sets: the group's path, with the project's number."""
    return f"projects/{project.number}/zones/{zone}/instanceGroupManagers/{name}"


def seed(cloud: GoogleCloud) -> None:
    """Two projects.

    alpha: an a3-highgpu-8g on its own, an N1 with 2 spot T4s, a stopped g2 (its GPU from the machine
    type), a CPU machine, a g4-standard-48 the bundled table lacks (machineTypes.get says: 1 RTX PRO 6000),
    a preemptible a2-ultragpu-1g being provisioned; a zonal MIG of 2 a2-highgpu-1g, a CPU MIG, a regional
    spot T4 MIG with an autoscaler (0..6), and GKE cluster ``prod`` (regional, us-central1) with a CPU
    node pool and node pool ``gpu-l4`` (g2-standard-24 with 2 L4, autoscaling 0..4 per zone over two
    zones, one node in each, its two groups).

    beta: zonal GKE cluster ``train`` (us-east1-b) with spot node pool ``h100`` (one a3-highgpu-8g node;
    its group's template unlabelled) and an a3-highgpu-8g in asia-southeast1."""
    cloud.reset()
    a = Project("alpha", "111111111111")
    b = Project("beta", "222222222222")
    cloud.projects = {"alpha": a, "beta": b}

    a2_tpl = template(a, "a2-tpl", "a2-highgpu-1g")
    cpu_tpl = template(a, "cpu-tpl", "e2-standard-4")
    t4_tpl = template(
        a, "t4-tpl", "n1-standard-4", region="us-central1", gpus=("nvidia-tesla-t4", 1), spot=True
    )
    gke_labels = {"goog-k8s-cluster-name": "prod", "goog-k8s-node-pool-name": "gpu-l4"}
    l4_tpl = template(a, "gke-prod-gpu-l4-1a2b3c4d", "g2-standard-24", labels=gke_labels)
    a.templates = [a2_tpl, cpu_tpl, t4_tpl, l4_tpl]
    a2_mig = mig(a, "a2-pool", a2_tpl, 2, zone="us-central1-c")
    t4_mig = mig(a, "t4-regional", t4_tpl, 0, region="us-central1", zones=("us-central1-a", "us-central1-b"))
    l4_migs = [
        mig(a, "gke-prod-gpu-l4-1a2b3c4d-grp", l4_tpl, 1, zone=z) for z in ("us-central1-a", "us-central1-b")
    ]
    a.migs = [a2_mig, mig(a, "cpu-pool", cpu_tpl, 1, zone="us-central1-c"), t4_mig, *l4_migs]
    a.autoscalers = [
        {
            "kind": "compute#autoscaler",
            "id": "5000000000000000001",
            "name": "t4-regional-as",
            "target": t4_mig["selfLink"],
            "autoscalingPolicy": {
                "minNumReplicas": 0,
                "maxNumReplicas": 6,
                "mode": "ON",
                "coolDownPeriodSec": 60,
            },
            "region": f"{COMPUTE}projects/alpha/regions/us-central1",
            "selfLink": f"{COMPUTE}projects/alpha/regions/us-central1/autoscalers/t4-regional-as",
            "status": "ACTIVE",
        }
    ]
    a.machine_types = {
        "g4-standard-48": {
            "kind": "compute#machineType",
            "id": "1000048",
            "name": "g4-standard-48",
            "guestCpus": 48,
            "memoryMb": 184320,
            "accelerators": [{"guestAcceleratorType": "nvidia-rtx-pro-6000", "guestAcceleratorCount": 1}],
        }
    }
    spot = {"provisioningModel": "SPOT", "preemptible": False, "instanceTerminationAction": "STOP"}
    a.instances = [
        instance(a, "us-central1-a", "h100-solo", "a3-highgpu-8g", gpus=("nvidia-h100-80gb", 8)),
        instance(
            a, "us-central1-b", "t4-spot", "n1-standard-8", gpus=("nvidia-tesla-t4", 2), scheduling=spot
        ),
        instance(a, "europe-west4-a", "l4-stopped", "g2-standard-8", status="TERMINATED"),
        instance(a, "us-central1-a", "cpu-only", "n2-standard-4"),
        instance(a, "us-central1-f", "rtx-new", "g4-standard-48"),
        instance(
            a,
            "us-west1-b",
            "a100-pending",
            "a2-ultragpu-1g",
            status="PROVISIONING",
            gpus=("nvidia-a100-80gb", 1),
            scheduling={"preemptible": True},
        ),
        *(
            instance(
                a,
                "us-central1-c",
                f"a2-pool-{s}",
                "a2-highgpu-1g",
                gpus=("nvidia-tesla-a100", 1),
                created_by=created_by(a, "us-central1-c", "a2-pool"),
            )
            for s in ("x1z2", "q9w8")
        ),
        *(
            instance(
                a,
                z,
                f"gke-prod-gpu-l4-1a2b3c4d-{s}",
                "g2-standard-24",
                gpus=("nvidia-l4", 2),
                labels={**gke_labels, "goog-gke-node": ""},
                created_by=created_by(a, z, "gke-prod-gpu-l4-1a2b3c4d-grp"),
            )
            for z, s in (("us-central1-a", "7h2k"), ("us-central1-b", "m3n4"))
        ),
    ]
    node_pool = {
        "name": "gpu-l4",
        "config": {
            "machineType": "g2-standard-24",
            "diskSizeGb": 100,
            "accelerators": [{"acceleratorType": "nvidia-l4", "acceleratorCount": "2"}],
            "labels": {"team": "ml"},
            "spot": False,
        },
        "initialNodeCount": 1,
        "autoscaling": {"enabled": True, "minNodeCount": 0, "maxNodeCount": 4, "locationPolicy": "BALANCED"},
        "locations": ["us-central1-a", "us-central1-b"],
        "instanceGroupUrls": [m["selfLink"] for m in l4_migs],
        "status": "RUNNING",
        "selfLink": "https://container.googleapis.com/v1/projects/alpha/locations/us-central1/clusters/prod/nodePools/gpu-l4",
        "version": "1.33.5-gke.1201000",
    }
    a.clusters = [
        {
            "name": "prod",
            "location": "us-central1",
            "locations": ["us-central1-a", "us-central1-b", "us-central1-c"],
            "status": "RUNNING",
            "currentNodeCount": 3,
            "nodePools": [
                {
                    "name": "default-pool",
                    "config": {"machineType": "e2-standard-4"},
                    "initialNodeCount": 1,
                    "locations": ["us-central1-c"],
                    "instanceGroupUrls": [],
                    "status": "RUNNING",
                },
                node_pool,
            ],
            "selfLink": "https://container.googleapis.com/v1/projects/alpha/locations/us-central1/clusters/prod",
        }
    ]

    # No GKE label on this one: only the node pool's instanceGroupUrls say the group is GKE's.
    h100_tpl = template(b, "gke-train-h100-aaaa1111", "a3-highgpu-8g", spot=True)
    b.templates = [h100_tpl]
    b_mig = mig(b, "gke-train-h100-aaaa1111-grp", h100_tpl, 1, zone="us-east1-b")
    b.migs = [b_mig]
    b.instances = [
        instance(
            b,
            "us-east1-b",
            "gke-train-h100-aaaa1111-zz01",
            "a3-highgpu-8g",
            gpus=("nvidia-h100-80gb", 8),
            labels={"goog-k8s-cluster-name": "train", "goog-k8s-node-pool-name": "h100"},
            scheduling=spot,
            created_by=created_by(b, "us-east1-b", b_mig["name"]),
        ),
        instance(b, "asia-southeast1-b", "h100-sg", "a3-highgpu-8g", gpus=("nvidia-h100-80gb", 8)),
    ]
    b.clusters = [
        {
            "name": "train",
            "location": "us-east1-b",
            "locations": ["us-east1-b"],
            "status": "RUNNING",
            "nodePools": [
                {
                    "name": "h100",
                    "config": {
                        "machineType": "a3-highgpu-8g",
                        "accelerators": [{"acceleratorType": "nvidia-h100-80gb", "acceleratorCount": "8"}],
                        "spot": True,
                    },
                    "initialNodeCount": 1,
                    "locations": ["us-east1-b"],
                    "instanceGroupUrls": [b_mig["selfLink"]],
                    "status": "RUNNING",
                }
            ],
        }
    ]


@pytest.fixture
def scene(cloud: GoogleCloud, adc_key: Path) -> GoogleCloud:
    seed(cloud)
    return cloud
