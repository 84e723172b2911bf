"""A real moto server on 127.0.0.1 (``ThreadedMotoServer``), reached by boto3 over HTTP, seeded with a small
GPU fleet; and a fault-injecting proxy in front of it that answers chosen API actions with AWS's own error
bodies (throttling, expired credentials, access denied)."""

from __future__ import annotations

import html
import http.client
import http.server
import json
import os
import threading
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest

# Distinctive fake credentials: the no-leak asserts look for each of them (and for the parts a signer uses).
FAKE_KEY_ID = "AKIAAIOSTUIFAKE7KEY9"
FAKE_SECRET = "aiosTuiFakeSecret+DoNotLeak/0123456789abcdefXYZ"
FAKE_TOKEN = "aiosTuiFakeSessionTokenDoNotLeak0123456789"
SECRETS = (FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN, FAKE_SECRET[:20], FAKE_TOKEN[:20])


def require_moto() -> Any:
    """moto's server; when it is not installed the test skips, or fails under ``CI=true``."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        why = f"moto[server] is not installed ({exc})"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true: scripts/test.sh installs the test extra)")
        pytest.skip(f"{why}: pip install -e '.[test]'")
    return ThreadedMotoServer


@pytest.fixture(scope="session")
def moto_url() -> Iterator[str]:
    server_cls = require_moto()
    server = server_cls(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    assert host == "127.0.0.1"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Fake credentials in the environment, no real config files, no profile; returns the config file path
    (empty) for tests that write a profile into it."""
    for var in list(os.environ):
        if var.startswith("AWS_"):
            monkeypatch.delenv(var)
    config = tmp_path / "aws-config"
    config.write_text("")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", FAKE_KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", FAKE_SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", FAKE_TOKEN)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return config


# --- the scene -------------------------------------------------------------------------------------------


@dataclass
class Scene:
    """What :func:`seed` created: instance ids by role, and the pools."""

    url: str
    ids: dict[str, str] = field(default_factory=dict)
    zones: dict[str, str] = field(default_factory=dict)

    def client(self, service: str, region: str = "us-east-1") -> Any:
        return boto3.client(service, region_name=region, endpoint_url=self.url)

    def provider_id(self, role: str) -> str:
        return f"aws:///{self.zones[role]}/{self.ids[role]}"


def _run(ec2: Any, ami: str, subnet: str, itype: str, tags: dict[str, str], **kw: Any) -> str:
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    extra = {"TagSpecifications": spec} if tags else {}
    out = ec2.run_instances(
        ImageId=ami, MinCount=1, MaxCount=1, InstanceType=itype, SubnetId=subnet, **extra, **kw
    )
    return str(out["Instances"][0]["InstanceId"])


def _ami(ec2: Any) -> str:
    """One of moto's Amazon Linux images (a filter: the full list of 1,300 images takes a second)."""
    name = [{"Name": "name", "Values": ["amzn2-ami-hvm*"]}]
    return str(ec2.describe_images(Owners=["amazon"], Filters=name)["Images"][0]["ImageId"])


def seed(url: str) -> Scene:
    """Reset moto and create, through boto3: subnets in three zones, GPU instances of several types (one
    spot, one stopped, one joined to cluster prod, one tagged for prod that joined nothing, one untagged), a
    CPU instance, an ASG of g5.12xlarge and one of CPUs (launch templates), an EKS cluster with a managed
    node group, and a g6.12xlarge in a second region."""
    urllib.request.urlopen(urllib.request.Request(f"{url}/moto-api/reset", method="POST"), timeout=10).close()
    scene = Scene(url)
    ec2 = scene.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = {}
    for i, zone in enumerate(("us-east-1a", "us-east-1b", "us-east-1c"), start=1):
        sn = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)
        subnets[zone] = sn["Subnet"]["SubnetId"]
    ami = _ami(ec2)

    def add(role: str, zone: str, itype: str, tags: dict[str, str], **kw: Any) -> None:
        scene.ids[role] = _run(ec2, ami, subnets[zone], itype, tags, **kw)
        scene.zones[role] = zone

    add("joined", "us-east-1a", "p5.48xlarge", {"eks:cluster-name": "prod"})
    add("orphan", "us-east-1b", "p5.48xlarge", {"kubernetes.io/cluster/prod": "owned"},
        InstanceMarketOptions={"MarketType": "spot"})  # fmt: skip
    add("plain", "us-east-1c", "p4d.24xlarge", {})
    add("stopped", "us-east-1a", "g6e.xlarge", {"team": "ml"})
    add("cpu", "us-east-1a", "m7i.4xlarge", {})
    ec2.stop_instances(InstanceIds=[scene.ids["stopped"]])

    asg = scene.client("autoscaling")
    for name, itype in (("g5-pool", "g5.12xlarge"), ("cpu-pool", "m7i.4xlarge")):
        ec2.create_launch_template(
            LaunchTemplateName=f"{name}-lt", LaunchTemplateData={"ImageId": ami, "InstanceType": itype}
        )
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
            MinSize=0,
            MaxSize=4,
            DesiredCapacity=2 if name == "g5-pool" else 1,
            VPCZoneIdentifier=f"{subnets['us-east-1a']},{subnets['us-east-1b']}",
        )

    eks = scene.client("eks")
    eks.create_cluster(
        name="prod",
        roleArn="arn:aws:iam::123456789012:role/eks",
        resourcesVpcConfig={"subnetIds": list(subnets.values())},
    )
    eks.create_nodegroup(
        clusterName="prod",
        nodegroupName="h100",
        scalingConfig={"minSize": 0, "maxSize": 8, "desiredSize": 1},
        subnets=[subnets["us-east-1a"]],
        instanceTypes=["p5.48xlarge"],
        nodeRole="arn:aws:iam::123456789012:role/node",
        capacityType="ON_DEMAND",
    )

    west = scene.client("ec2", "us-west-2")
    wvpc = west.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    wsn = west.create_subnet(VpcId=wvpc, CidrBlock="10.1.1.0/24", AvailabilityZone="us-west-2a")["Subnet"]
    wami = _ami(west)
    scene.ids["west"] = _run(west, wami, wsn["SubnetId"], "g6.12xlarge", {})
    scene.zones["west"] = "us-west-2a"
    return scene


@pytest.fixture
def scene(moto_url: str, aws_env: Path) -> Scene:
    return seed(moto_url)


# --- faults ----------------------------------------------------------------------------------------------

# (HTTP status, body) per error code, per protocol, as AWS answers them.
_STATUS = {
    "Throttling": 400,
    "RequestLimitExceeded": 503,
    "ThrottlingException": 429,
    "ExpiredToken": 403,
    "RequestExpired": 400,
    "ExpiredTokenException": 403,
    "AccessDenied": 403,
    "UnauthorizedOperation": 403,
    "AccessDeniedException": 403,
}


def _error(service: str, code: str, message: str = "") -> tuple[int, dict[str, str], bytes]:
    status = _STATUS.get(code, 400)
    message = message or f"injected {code}"
    if service == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
            f"<Code>{code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>0c6d1a9e-aios-tui-test</RequestID></Response>"
        )
        return status, {"Content-Type": "text/xml;charset=UTF-8"}, body.encode()
    if service == "eks":
        headers = {
            "Content-Type": "application/json",
            "x-amzn-ErrorType": f"{code}:http://internal.amazon.com/",
        }
        return status, headers, json.dumps({"message": message}).encode()
    body = (
        '<ErrorResponse xmlns="https://autoscaling.amazonaws.com/doc/2011-01-01/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>0c6d1a9e-aios-tui-test</RequestId></ErrorResponse>"
    )
    return status, {"Content-Type": "text/xml"}, body.encode()


def _eks_action(method: str, path: str) -> str:
    parts = [p for p in urllib.parse.urlsplit(path).path.split("/") if p]
    if parts[:1] != ["clusters"]:
        return ""
    if len(parts) == 1:
        return "ListClusters" if method == "GET" else "CreateCluster"
    if len(parts) == 3 and parts[2] == "node-groups":
        return "ListNodegroups" if method == "GET" else "CreateNodegroup"
    if len(parts) == 4 and parts[2] == "node-groups":
        return "DescribeNodegroup"
    if len(parts) == 5 and parts[4] == "update-config":
        return "UpdateNodegroupConfig"
    return "DescribeCluster" if len(parts) == 2 else ""


class FaultProxy:
    """HTTP proxy on 127.0.0.1 in front of moto: ``faults[action] = code`` answers that API action with
    AWS's error for ``code``; ``rewrites[action]`` changes moto's real answer on its way back (an object of
    a shape AWS never sends); everything else goes through. ``seen`` counts requests per action."""

    def __init__(self, upstream: str) -> None:
        self.upstream = urllib.parse.urlsplit(upstream)
        self.faults: dict[str, str] = {}
        self.messages: dict[str, str] = {}
        """The message AWS's error body carries, per action (XML-escaped here); "injected <code>" without."""
        self.rewrites: dict[str, Callable[[bytes], bytes]] = {}
        self.seen: Counter[str] = Counter()
        self.headers_seen: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the client's delayed ACK holds the second
            # for ~40 ms on every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                auth = self.headers.get("Authorization", "")
                scope = auth.partition("Credential=")[2].split(",")[0].split("/")
                service = scope[3] if len(scope) > 3 else ""
                form = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if service != "eks" else {}
                action = form.get("Action", [""])[0] or _eks_action(self.command, self.path)
                proxy.seen[action] += 1
                code = proxy.faults.get(action)
                if code:
                    status, headers, out = _error(service, code, html.escape(proxy.messages.get(action, "")))
                else:
                    conn = http.client.HTTPConnection(
                        proxy.upstream.hostname, proxy.upstream.port, timeout=30
                    )
                    fwd = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                    conn.request(self.command, self.path, body=body, headers=fwd)
                    resp = conn.getresponse()
                    status, out = resp.status, resp.read()
                    if action in proxy.rewrites:
                        out = proxy.rewrites[action](out)
                    headers = {
                        k: v
                        for k, v in resp.getheaders()
                        if k.lower() not in ("transfer-encoding", "connection", "content-length")
                    }
                    conn.close()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="aws-faults")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def faults(moto_url: str) -> Iterator[FaultProxy]:
    with FaultProxy(moto_url) as proxy:
        yield proxy
