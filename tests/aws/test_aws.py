"""The AWS source against a real moto server on 127.0.0.1, reached by boto3 over HTTP (``endpoint_url``),
nothing patched: instances → nodes, ASGs and EKS node groups → pools, prices, scaling, the join with
Kubernetes nodes, and the errors that matter on call (throttling, expired credentials, access denied)."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from aios_tui.config import AwsSettings, CloudPriceSettings, ConfigError, KubernetesSettings, Settings
from aios_tui.domain import NA, NodePool, SourceState
from aios_tui.domain.text import is_clean
from aios_tui.ops import Actor, Ops, Role
from aios_tui.ops.audit import AuditEntry, AuditLog
from aios_tui.poll import Poller
from aios_tui.sources import build_sources
from aios_tui.sources.base import PermissionChecker, PoolScaler, SourceData, SourceError
from aios_tui.sources.clouds.aws.prices import CATALOGUE
from aios_tui.sources.clouds.aws.provider import AwsProvider
from aios_tui.sources.clouds.base import CloudSource
from aios_tui.sources.kubernetes import sources_from_settings
from tests.aws.conftest import FAKE_KEY_ID, FAKE_SECRET, SECRETS, FaultProxy, Scene
from tests.k8s.apiserver import FakeApiServer, fixture_scene

REGIONS = ("us-east-1", "us-west-2")


def aws_source(url: str, **kw: object) -> CloudSource:
    settings = AwsSettings(enabled=True, regions=REGIONS, endpoint_url=url, timeout=5.0)
    settings = dataclasses.replace(settings, **kw)  # type: ignore[arg-type]
    (src,) = build_sources(Settings(aws=settings))
    assert isinstance(src, CloudSource)
    return src


@pytest.fixture
def source(scene: Scene) -> Iterator[CloudSource]:
    src = aws_source(scene.url)
    yield src
    src._provider.close()


def no_secret_in(*texts: str) -> None:
    for text in texts:
        for secret in SECRETS:
            assert secret not in text, "a credential leaked"


def pool(data: SourceData, name: str) -> NodePool:
    (found,) = [p for p in data.pools if p.name == name]
    return found


# --- what it shows ---------------------------------------------------------------------------------------


async def test_gpu_instances_become_nodes(scene: Scene, source: CloudSource) -> None:
    data = await source.fetch()
    by = {n.name: n for n in data.nodes}
    assert scene.ids["cpu"] not in by, "CPU-only instances are left out"
    assert set(by) == {scene.ids[r] for r in ("joined", "orphan", "plain", "stopped", "west")} | {
        n.name for n in data.nodes if n.pool == "g5-pool"
    }
    assert data.problems == ()
    assert data.context == "aws default · us-east-1, us-west-2"

    plain = by[scene.ids["plain"]]
    assert (plain.instance_type, plain.gpu_model, plain.gpus_total, plain.gpus_allocatable) == (
        "p4d.24xlarge",
        "A100",
        8,
        8,
    )
    assert (plain.zone, plain.lifecycle, plain.instance_state, plain.ready, plain.pool) == (
        "us-east-1c",
        "on-demand",
        "running",
        True,
        "ec2",
    )
    assert plain.provider_id == scene.provider_id("plain")
    assert plain.price_per_hour == CATALOGUE.types["p4d.24xlarge"].price_per_hour
    assert abs(plain.launched_at - time.time()) < 600
    assert plain.conditions == ()

    orphan = by[scene.ids["orphan"]]
    assert (orphan.lifecycle, orphan.ready, orphan.gpu_model, orphan.gpus_total) == ("spot", False, "H100", 8)
    (cond,) = orphan.conditions
    assert (cond.type, cond.status, cond.reason) == ("Ready", "False", "NotInCluster")
    assert "not a node of cluster prod" in cond.message
    # moto's spot price history answers 0.00001 for every type and zone: the node takes the API's figure.
    assert orphan.price_per_hour == pytest.approx(0.00001)

    stopped = by[scene.ids["stopped"]]
    assert (stopped.instance_state, stopped.ready, stopped.gpu_model, stopped.gpus_total) == (
        "stopped",
        False,
        "L40S",
        1,
    )
    assert (stopped.price_per_hour, stopped.gpus_allocatable) == (0.0, 0)

    west = by[scene.ids["west"]]
    assert (west.zone, west.gpu_model, west.gpus_total) == ("us-west-2a", "L4", 4)


async def test_pools_are_asgs_and_eks_node_groups(scene: Scene, source: CloudSource) -> None:
    data = await source.fetch()
    assert {p.name for p in data.pools} == {"g5-pool", "prod/h100"}, "CPU pools and backing ASGs left out"
    g5 = pool(data, "g5-pool")
    assert (g5.kind, g5.region, g5.instance_type, g5.instance_types) == (
        "asg",
        "us-east-1",
        "g5.12xlarge",
        ("g5.12xlarge",),
    )
    assert (g5.min_size, g5.desired, g5.max_size, g5.nodes) == (0, 2, 4, 2)
    assert (g5.gpu_model, g5.gpus_per_node, g5.lifecycle) == ("A10G", 4, "on-demand")
    assert g5.price_per_hour == CATALOGUE.types["g5.12xlarge"].price_per_hour
    assert set(g5.zones) == {"us-east-1a", "us-east-1b"}
    ng = pool(data, "prod/h100")
    assert (ng.kind, ng.region, ng.instance_types, ng.lifecycle) == (
        "eks-nodegroup",
        "us-east-1",
        ("p5.48xlarge",),
        "on-demand",
    )
    assert (ng.min_size, ng.desired, ng.max_size, ng.gpu_model, ng.gpus_per_node) == (0, 1, 8, "H100", 8)
    assert ng.price_per_hour == CATALOGUE.types["p5.48xlarge"].price_per_hour


async def test_config_prices_override_the_table(scene: Scene) -> None:
    src = aws_source(scene.url, prices=(CloudPriceSettings(instance_type="p4d.24xlarge", price=21.5),))
    data = await src.fetch()
    (plain,) = [n for n in data.nodes if n.name == scene.ids["plain"]]
    assert plain.price_per_hour == 21.5
    g5 = pool(data, "g5-pool")
    assert g5.price_per_hour == CATALOGUE.types["g5.12xlarge"].price_per_hour


@pytest.fixture
def two_profiles(aws_env: Path) -> None:
    """Profiles ops and dev in the AWS config file (an explicit profile skips the environment's keys)."""
    keys = f"aws_access_key_id = {FAKE_KEY_ID}\naws_secret_access_key = {FAKE_SECRET}\n"
    aws_env.write_text(f"[profile ops]\n{keys}[profile dev]\n{keys}", encoding="utf-8")


@pytest.mark.usefixtures("two_profiles")
async def test_several_profiles_are_several_sources(scene: Scene) -> None:
    settings = AwsSettings(enabled=True, profiles=("ops", "dev"), endpoint_url=scene.url, timeout=5.0)
    srcs = build_sources(Settings(aws=settings))
    assert [s.name for s in srcs] == ["aws:ops", "aws:dev"]
    data = await srcs[0].fetch()
    assert data.context == "aws ops · us-east-1"
    assert scene.ids["plain"] in {n.name for n in data.nodes}
    with pytest.raises(
        ConfigError,
        match=r"\[aws\] profiles: AWS profile nope is not defined in the AWS config or credentials files "
        r"\(profiles there: dev, ops\)",
    ):
        build_sources(Settings(aws=dataclasses.replace(settings, profiles=("nope",))))


# --- scaling ---------------------------------------------------------------------------------------------


async def test_scale_pool_changes_desired_capacity_on_the_server(scene: Scene, source: CloudSource) -> None:
    assert isinstance(source, PoolScaler) and isinstance(source, PermissionChecker)
    await source.fetch()
    assert source.permission("scale-pool", "g5-pool") is None
    await source.scale_pool("g5-pool", 3)
    (g,) = scene.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["g5-pool"])[
        "AutoScalingGroups"
    ]
    assert g["DesiredCapacity"] == 3
    await source.scale_pool("prod/h100", 4)
    ng = scene.client("eks").describe_nodegroup(clusterName="prod", nodegroupName="h100")["nodegroup"]
    assert ng["scalingConfig"]["desiredSize"] == 4
    data = await source.fetch()
    assert pool(data, "prod/h100").desired == 4
    with pytest.raises(SourceError, match=r"desired 9 is outside its size limits 0\.\.8"):
        await source.scale_pool("prod/h100", 9)
    assert source.permission("scale-pool", "nope") == "aws has no node pool nope"
    with pytest.raises(SourceError, match="no node pool nope"):
        await source.scale_pool("nope", 1)


@pytest.mark.parametrize("where", ["aws", "global"])
async def test_read_only_refuses_scaling_in_the_backend(scene: Scene, where: str) -> None:
    aws = AwsSettings(enabled=True, endpoint_url=scene.url, read_only=where == "aws")
    (src,) = build_sources(Settings(aws=aws, read_only=where == "global"))
    assert isinstance(src, CloudSource)
    await src.fetch()
    why = src.permission("scale-pool", "g5-pool")
    assert why is not None and why.startswith("aws is read-only")
    with pytest.raises(SourceError, match="read-only"):
        await src.scale_pool("g5-pool", 3)
    (g,) = scene.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["g5-pool"])[
        "AutoScalingGroups"
    ]
    assert g["DesiredCapacity"] == 2


# --- the join with Kubernetes ----------------------------------------------------------------------------


async def test_one_row_per_machine_with_both_views(scene: Scene, tmp_path: Path) -> None:
    objects = fixture_scene()
    h100 = "ip-10-0-1-11.ec2.internal"
    for obj in objects:  # the cluster's p5 node is the moto instance tagged for prod
        if obj["kind"] == "Node" and obj["metadata"]["name"] == h100:
            obj["spec"]["providerID"] = scene.provider_id("joined")
    with FakeApiServer(objects) as api:
        kubeconfig = api.write_kubeconfig(tmp_path / "kubeconfig")
        (k8s,) = sources_from_settings(KubernetesSettings(enabled=True, kubeconfig=kubeconfig), env={})
        poller = Poller([k8s, aws_source(scene.url)])
        try:
            snap = await poller.refresh()
        finally:
            await poller.stop()
    names = {n.name for n in snap.nodes}
    assert scene.ids["joined"] not in names, "the instance merged into its Kubernetes node"
    node = snap.node_by_name[h100]
    assert node.ready and node.source.startswith("k8s")
    assert (node.instance_state, node.lifecycle, node.provider_id) == (
        "running",
        "on-demand",
        scene.provider_id("joined"),
    )
    assert abs(node.launched_at - time.time()) < 600
    orphan = snap.node_by_name[scene.ids["orphan"]]
    assert not orphan.ready and orphan.conditions[0].reason == "NotInCluster"
    assert {s.name: s.state for s in snap.sources} == {"k8s:test": SourceState.OK, "aws": SourceState.OK}


# --- errors ----------------------------------------------------------------------------------------------


async def test_throttling_is_retried_then_fails_and_the_poller_keeps_the_last_data(
    scene: Scene, faults: FaultProxy
) -> None:
    src = aws_source(faults.url)
    poller = Poller([src], max_backoff=5.0)
    try:
        first = await poller.refresh()
        assert first.sources[0].state is SourceState.OK
        count = len(first.nodes)
        faults.faults["DescribeInstances"] = "RequestLimitExceeded"
        faults.faults["DescribeAutoScalingGroups"] = "Throttling"
        faults.seen.clear()
        second = await poller.refresh()
    finally:
        await poller.stop()
    health = second.sources[0]
    assert health.state is SourceState.STALE
    assert "throttling" in health.error and "backing off" in health.error
    assert len(second.nodes) == count, "the last good data stays"
    # Both calls run in parallel and either may give up first, ending the fetch: the one the error names
    # was tried max_attempts (3) times before giving up.
    named = [a for a in ("DescribeInstances", "DescribeAutoScalingGroups") if a in health.error]
    assert len(named) == 1 and faults.seen[named[0]] >= 3, (health.error, faults.seen)


async def test_expired_credentials_say_so(scene: Scene, faults: FaultProxy) -> None:
    src = aws_source(faults.url)
    faults.faults["DescribeInstances"] = "RequestExpired"
    faults.faults["DescribeAutoScalingGroups"] = "ExpiredToken"
    with pytest.raises(SourceError) as err:
        await src.fetch()
    msg = str(err.value)
    assert "AWS credentials for the default credential chain have expired or are not valid" in msg
    assert "refresh them" in msg
    # At most once per region and call, never the retries that throttling gets. The calls run in parallel:
    # the first refusal (either one) may end the fetch before the others are made, so only their sum is >= 1.
    seen = [faults.seen[a] for a in ("DescribeInstances", "DescribeAutoScalingGroups")]
    assert all(n <= len(REGIONS) for n in seen) and sum(seen) >= 1, seen
    no_secret_in(msg, repr(err.value))


async def test_access_denied_on_eks_only_is_partial(scene: Scene, faults: FaultProxy) -> None:
    src = aws_source(faults.url)
    faults.faults["ListClusters"] = "AccessDeniedException"
    poller = Poller([src])
    try:
        snap = await poller.refresh()
    finally:
        await poller.stop()
    health = snap.sources[0]
    assert health.state is SourceState.PARTIAL
    assert "eks ListClusters in us-east-1: access denied" in health.error
    assert scene.ids["plain"] in snap.node_by_name
    assert {p.name for p in snap.pools} == {"g5-pool"}


async def test_access_denied_everywhere_fails(scene: Scene, faults: FaultProxy) -> None:
    src = aws_source(faults.url)
    for action, code in (
        ("DescribeInstances", "UnauthorizedOperation"),
        ("DescribeAutoScalingGroups", "AccessDenied"),
        ("ListClusters", "AccessDeniedException"),
    ):
        faults.faults[action] = code
    with pytest.raises(SourceError, match="ec2 DescribeInstances in us-east-1: access denied"):
        await src.fetch()


async def test_no_credential_in_any_output_or_log(
    scene: Scene, faults: FaultProxy, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    caplog.set_level(logging.DEBUG)
    src = aws_source(faults.url)
    poller = Poller([src])
    texts: list[str] = []
    try:
        snap = await poller.refresh()
        await src.scale_pool("g5-pool", 1)
        for action, code in (
            ("DescribeInstances", "RequestLimitExceeded"),
            ("DescribeInstances", "ExpiredToken"),
            ("ListClusters", "AccessDeniedException"),
        ):
            faults.faults = {action: code}
            snap = await poller.refresh()
            texts.extend(f"{h.state} {h.error}" for h in snap.sources)
            faults.faults = {"SetDesiredCapacity": code}
            try:
                await src.scale_pool("g5-pool", 2)
            except SourceError as exc:
                texts.append(str(exc))
                audit = AuditLog(tmp_path / "audit.jsonl")
                audit.append(
                    AuditEntry(
                        ts="2026-11-30T00:00:00Z",
                        user="oncall",
                        host="h",
                        role="admin",
                        action="scale-pool",
                        target="g5-pool",
                        source=src.name,
                        title="scale g5-pool to 2",
                        outcome="failed",
                        message=str(exc),
                    )
                )
    finally:
        await poller.stop()
    assert any("throttling" in t for t in texts) and any("expired" in t for t in texts)
    assert any("access denied" in t for t in texts)
    texts.append(repr(src._provider.__dict__.get("context")))
    texts.append(repr(snap))
    texts.append(caplog.text)
    texts.append((tmp_path / "audit.jsonl").read_text(encoding="utf-8"))
    assert caplog.records, "something was logged at DEBUG"
    no_secret_in(*texts)


def test_provider_context_and_repr_hold_no_credential(aws_env: Path) -> None:
    p = AwsProvider(regions=REGIONS, endpoint_url="http://127.0.0.1:9")
    no_secret_in(p.context, repr(p), repr(vars(p)))
    assert logging.getLogger("botocore").getEffectiveLevel() >= logging.WARNING


async def _admin_ops(source: CloudSource, tmp_path: Path) -> Ops:
    """An admin's actions over ``source``, after one refresh."""
    poller = Poller([source])
    ops = Ops(
        {source.name: source},
        lambda: poller.snapshot,
        AuditLog(tmp_path / "a.jsonl"),
        actor=Actor("o", Role.ADMIN),
    )
    await poller.refresh()
    return ops


async def test_scale_pool_action_end_to_end_through_ops(
    scene: Scene, source: CloudSource, tmp_path: Path
) -> None:
    """The console's path: plan over the merged snapshot (cost, limits), confirm, execute on moto, audit."""
    poller = Poller([source])
    audit = tmp_path / "audit.jsonl"
    ops = Ops(
        {source.name: source}, lambda: poller.snapshot, AuditLog(audit), actor=Actor("oncall", Role.OPERATOR)
    )
    await poller.refresh()
    g5 = poller.snapshot.pools_by_name["g5-pool"]
    plan = ops.plan("scale-pool", pool="g5-pool", desired=g5.desired_capacity + 1)
    assert not plan.blockers, plan.blockers
    text = "\n".join(f"{k} {v}" for k, v in plan.lines)
    assert f"{g5.desired_capacity} → {g5.desired_capacity + 1}" in text
    assert f"+${CATALOGUE.types['g5.12xlarge'].price_per_hour:,.2f}/h" in text
    result = await ops.execute(plan)
    assert result.ok, result.message
    (g,) = scene.client("autoscaling").describe_auto_scaling_groups(AutoScalingGroupNames=["g5-pool"])[
        "AutoScalingGroups"
    ]
    assert g["DesiredCapacity"] == g5.desired_capacity + 1
    # Shrinking needs an admin: the operator's plan is refused before anything reaches AWS.
    down = ops.plan("scale-pool", pool="g5-pool", desired=0)
    assert down.blockers and "admin" in " ".join(down.blockers)
    line = audit.read_text(encoding="utf-8")
    assert "scale-pool" in line and "g5-pool" in line
    no_secret_in(line)


def _write(path: Path, text: str, mode: int = 0o600) -> None:
    path.write_text(text)
    path.chmod(mode)


async def test_a_profile_that_wants_an_mfa_code_fails_with_what_to_do(aws_env: Path, moto_url: str) -> None:
    """botocore used to prompt "Enter MFA code" on the terminal from a worker thread (EOF without one)."""
    _write(
        aws_env,
        "[profile base]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = x\n"
        "[profile mfa]\nrole_arn = arn:aws:iam::123456789012:role/ops\nsource_profile = base\n"
        "mfa_serial = arn:aws:iam::123456789012:mfa/ops\n",
    )
    src = aws_source(moto_url, profiles=("mfa",))
    snap = await Poller([src]).refresh()
    [health] = snap.sources
    assert health.state is SourceState.ERROR
    assert "asks for an MFA code, which aios-tui cannot prompt for" in health.error


async def test_a_failing_credential_process_leaks_nothing_to_the_log(
    aws_env: Path, moto_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Its stderr (a token, here) used to reach aios-tui.log whole, in a traceback."""
    script = tmp_path / "creds.sh"
    _write(script, "#!/bin/sh\necho 'refresh failed: token=s3cr3t-from-process' >&2\nexit 1\n", 0o755)
    _write(aws_env, f"[profile proc]\ncredential_process = {script}\n")
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    caplog.set_level(logging.DEBUG)
    src = aws_source(moto_url, profiles=("proc",))
    snap = await Poller([src]).refresh()
    [health] = snap.sources
    assert health.state is SourceState.ERROR and "CredentialRetrievalError" in health.error
    assert "s3cr3t-from-process" not in health.error
    from aios_tui.cli import _CleanFormatter

    formatted = "\n".join(_CleanFormatter("%(message)s").format(r) for r in caplog.records)
    assert "s3cr3t-from-process" not in formatted


# --- hostile and malformed answers ----------------------------------------------------------------------

HOSTILE = "\x9d0;pwned\x9c\x9b2J\u202e\u200b\n"
"""A title change (8-bit OSC 0), a screen wipe (8-bit CSI), a bidi override, a zero-width space and a line
break: what an XML answer can carry (XML 1.0 has no way to send ESC or other C0 controls but tab and line
breaks; the C1 controls it allows are the 8-bit forms of the same escapes)."""


def _all_strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _all_strings(getattr(value, f.name))
    elif isinstance(value, tuple | list):
        for v in value:
            yield from _all_strings(v)


async def test_tags_and_group_names_tenants_write_come_out_clean(scene: Scene, source: CloudSource) -> None:
    ec2 = scene.client("ec2")
    subnet = ec2.describe_subnets()["Subnets"][0]["SubnetId"]
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm*"]}])
    tags = {"eks:cluster-name": f"prod{HOSTILE}", "aws:autoscaling:groupName": f"pool{HOSTILE}" + "x" * 5000}
    spec = [{"ResourceType": "instance", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]
    hostile = ec2.run_instances(ImageId=ami["Images"][0]["ImageId"], MinCount=1, MaxCount=1,
                                InstanceType="p5.48xlarge", SubnetId=subnet,
                                TagSpecifications=spec)["Instances"][0]["InstanceId"]  # fmt: skip
    data = await source.fetch()
    texts = [t for kind in (data.nodes, data.pools) for t in _all_strings(kind)]
    assert len(texts) > 50
    for text in texts:
        assert is_clean(text) and len(text) <= 256, repr(text[:80])
        assert not any(c in text for c in "\x1b\x9b\x9d\x9c\u202e\u200b\n"), repr(text[:80])
    node = next(n for n in data.nodes if n.name == hostile)
    (cond,) = node.conditions
    assert cond.message.rstrip().endswith("not a node of cluster prod")  # the escapes went, their payload too
    assert node.pool.startswith("pool xxx") and node.pool.endswith("…")  # the line break a space


def _without_first(tag: bytes) -> Callable[[bytes], bytes]:
    """Drop the first ``<tag>…</tag>`` of an XML answer: an object missing a field AWS always sends."""

    def rewrite(body: bytes) -> bytes:
        start = body.index(b"<" + tag + b">")
        end = body.index(b"</" + tag + b">", start) + len(tag) + 3
        return body[:start] + body[end:]

    return rewrite


async def test_one_malformed_object_is_skipped_and_counted_and_the_rest_shows(
    scene: Scene, faults: FaultProxy
) -> None:
    faults.rewrites["DescribeInstances"] = _without_first(b"instanceId")
    faults.rewrites["DescribeNodegroup"] = lambda body: body.replace(
        b'"desiredSize": 1', b'"desiredSize": "one"'
    )
    faults.rewrites["DescribeAutoScalingGroups"] = lambda body: body.replace(
        b"<AutoScalingGroupName>cpu-pool</AutoScalingGroupName>", b""
    )
    src = aws_source(faults.url)
    poller = Poller([src])
    try:
        snap = await poller.refresh()
    finally:
        await poller.stop()
    health = snap.sources[0]
    assert health.state is SourceState.PARTIAL
    assert "1 instance skipped: the answer lacks InstanceId" in health.error
    assert "eks DescribeNodegroup in us-east-1: the answer could not be read (ValueError)" in health.error
    assert "1 Auto Scaling group skipped: the answer lacks AutoScalingGroupName" in health.error
    ec2_nodes = [n for n in snap.nodes if n.source.startswith("aws")]
    assert len(ec2_nodes) >= 5, "the other instances still show"
    assert {p.name for p in snap.pools} == {"g5-pool"}, "the GPU ASG, read whole, still shows"


# --- what AWS does beyond the call -----------------------------------------------------------------------


async def test_suspended_processes_and_a_terminate_hook_warn_in_the_plan(
    scene: Scene, source: CloudSource, tmp_path: Path
) -> None:
    """Scaling an ASG whose Launch or Terminate is suspended, or with a terminate lifecycle hook, used to
    say ``done`` with no warning: the change would not take effect, or instances would wait."""
    asg = scene.client("autoscaling")
    asg.suspend_processes(AutoScalingGroupName="g5-pool", ScalingProcesses=["Launch", "Terminate"])
    asg.put_lifecycle_hook(
        LifecycleHookName="drain-first",
        AutoScalingGroupName="g5-pool",
        LifecycleTransition="autoscaling:EC2_INSTANCE_TERMINATING",
        HeartbeatTimeout=3600,
    )
    ops = await _admin_ops(source, tmp_path)
    up = ops.plan("scale-pool", pool="g5-pool", desired=3)
    assert any("Launch process suspended" in w and "no instance launches" in w for w in up.warnings), (
        up.warnings
    )
    assert not any("Terminat" in w for w in up.warnings)
    down = ops.plan("scale-pool", pool="g5-pool", desired=1)
    text = " ".join(down.warnings)
    assert "Terminate process suspended" in text and "no instance is terminated" in text
    assert "terminate lifecycle hook (drain-first (heartbeat 3600 s))" in text and "Terminating:Wait" in text
    assert "Launch" not in text
    eks = ops.plan("scale-pool", pool="prod/h100", desired=2)
    assert not any("suspended" in w or "hook" in w for w in eks.warnings)


async def test_aws_own_error_message_is_kept_with_secrets_masked(scene: Scene, faults: FaultProxy) -> None:
    src = aws_source(faults.url)
    await src.fetch()
    faults.faults["SetDesiredCapacity"] = "ValidationError"
    faults.messages["SetDesiredCapacity"] = (
        "New SetDesiredCapacity value 3 is above max value 2 for the AutoScalingGroup. "
        "token=abc123secret\n\x9b2J"
    )
    with pytest.raises(SourceError) as err:
        await src.scale_pool("g5-pool", 3)
    msg = str(err.value)
    assert msg.startswith(
        "autoscaling SetDesiredCapacity in us-east-1: ValidationError (New SetDesiredCapacity"
    )
    assert "is above max value 2 for the AutoScalingGroup" in msg
    assert "abc123secret" not in msg and "token=***" in msg
    assert is_clean(msg) and "\n" not in msg and "\x9b" not in msg
    no_secret_in(msg)


def test_max_attempts_counts_the_first_try(scene: Scene, faults: FaultProxy) -> None:
    """``max_attempts = 3`` used to make 4 requests: botocore's Config ``max_attempts`` counts retries."""
    faults.faults["DescribeInstances"] = "RequestLimitExceeded"
    for attempts in (3, 1):
        faults.seen.clear()
        p = AwsProvider(regions=("us-east-1",), endpoint_url=faults.url, timeout=5.0, max_attempts=attempts)
        try:
            with pytest.raises(SourceError, match="throttling"):
                p.instances("us-east-1")
        finally:
            p.close()
        assert faults.seen["DescribeInstances"] == attempts


# --- credentials and regions -----------------------------------------------------------------------------


async def test_no_credentials_are_looked_for_once_per_poll(aws_env: Path, moto_url: str) -> None:
    """Each client used to run the credential chain again, instance metadata included, one after another."""
    import botocore.credentials

    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        os.environ.pop(var, None)
    calls = []
    real = botocore.credentials.CredentialResolver.load_credentials

    def counted(self: object) -> object:
        calls.append(1)
        return real(self)  # type: ignore[arg-type]

    botocore.credentials.CredentialResolver.load_credentials = counted  # type: ignore[method-assign]
    try:
        src = aws_source(moto_url, regions=("us-east-1", "us-west-2", "eu-west-1"))
        for _ in range(2):
            with pytest.raises(
                SourceError, match="no AWS credentials found for the default credential chain"
            ):
                await src.fetch()
    finally:
        botocore.credentials.CredentialResolver.load_credentials = real  # type: ignore[method-assign]
    assert len(calls) == 2, "once per poll, not once per client"


def test_aws_profile_from_the_environment_is_named(aws_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    aws_env.write_text("[profile prod]\nregion = us-east-1\n")
    monkeypatch.setenv("AWS_PROFILE", "prdo")
    with pytest.raises(ConfigError) as err:
        build_sources(Settings(aws=AwsSettings(enabled=True)))
    assert str(err.value) == (
        "AWS_PROFILE: AWS profile prdo is not defined in the AWS config or credentials files "
        "(profiles there: prod)"
    )


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("regions", ["us-east-1", "eu-west-1 "]),
        ("regions", ["us-east-1a"]),
        ("endpoint_url", "localhost:5000"),
    ],
)
def test_bad_regions_and_endpoints_are_config_errors(tmp_path: Path, key: str, value: object) -> None:
    import json as _json

    from aios_tui.config import load_settings

    config = tmp_path / "config.toml"
    config.write_text(f"[aws]\nenabled = true\n{key} = {_json.dumps(value)}\n")
    with pytest.raises(ConfigError, match=rf"^{config}: \[aws\] {key}: expected "):
        load_settings(config, env={})


async def test_one_bad_region_at_runtime_leaves_the_others(scene: Scene) -> None:
    provider = AwsProvider(regions=("us-east-1", "eu-west-1 "), endpoint_url=scene.url, timeout=5.0)
    data = await CloudSource(provider, name="aws").fetch()  # past the config's checks
    assert scene.ids["plain"] in {n.name for n in data.nodes}
    assert any("eu-west-1" in p and "InvalidRegionError" in p for p in data.problems)


# --- pools and instances as AWS reports them -------------------------------------------------------------


def _subnets(scene: Scene) -> dict[str, str]:
    ec2 = scene.client("ec2")
    return {s["AvailabilityZone"]: s["SubnetId"] for s in ec2.describe_subnets()["Subnets"]}


def _as_aws_answers_a_launch_template_node_group(body: bytes) -> bytes:
    """moto fills ``instanceTypes`` (t3.medium) for a node group made from a launch template; AWS leaves it
    out (null) when the template names the type."""
    doc = json.loads(body)
    if (doc.get("nodegroup") or {}).get("launchTemplate"):
        doc["nodegroup"].pop("instanceTypes", None)
    return json.dumps(doc, default=str).encode()


async def test_a_node_group_from_a_launch_template_shows_with_its_zones(
    scene: Scene, faults: FaultProxy
) -> None:
    """A p5 node group names its type in a launch template, not ``instanceTypes``: it used to vanish; one
    with no node up said no zone."""
    faults.rewrites["DescribeNodegroup"] = _as_aws_answers_a_launch_template_node_group
    source = aws_source(faults.url)
    ec2, subnets = scene.client("ec2"), _subnets(scene)
    ec2.create_launch_template(LaunchTemplateName="p5-lt", LaunchTemplateData={"InstanceType": "p5.48xlarge"})
    scene.client("eks").create_nodegroup(
        clusterName="prod",
        nodegroupName="p5-lt",
        scalingConfig={"minSize": 0, "maxSize": 4, "desiredSize": 2},
        subnets=[subnets["us-east-1b"], subnets["us-east-1c"]],
        launchTemplate={"name": "p5-lt", "version": "1"},
        nodeRole="arn:aws:iam::123456789012:role/node",
    )
    data = await source.fetch()
    ng = pool(data, "prod/p5-lt")
    assert (ng.instance_types, ng.gpu_model, ng.gpus_per_node, ng.desired, ng.nodes) == (
        ("p5.48xlarge",),
        "H100",
        8,
        2,
        0,
    )
    assert ng.zones == ("us-east-1b", "us-east-1c"), "no node up: the zones of its subnets"
    assert ng.price_per_hour == CATALOGUE.types["p5.48xlarge"].price_per_hour
    assert pool(data, "prod/h100").zones == ("us-east-1a",)
    assert data.problems == ()


async def test_a_mixed_instances_group_shows_every_type_its_weights_and_its_purchase_options(
    scene: Scene, source: CloudSource, tmp_path: Path
) -> None:
    ec2, subnets = scene.client("ec2"), _subnets(scene)
    ec2.create_launch_template(
        LaunchTemplateName="mixed-lt", LaunchTemplateData={"InstanceType": "g5.xlarge"}
    )
    asg = scene.client("autoscaling")
    for name, dist, weights in (
        ("mixed", {"OnDemandBaseCapacity": 2, "OnDemandPercentageAboveBaseCapacity": 0}, ("1", "4")),
        ("all-spot", {"OnDemandBaseCapacity": 0, "OnDemandPercentageAboveBaseCapacity": 0}, None),
        ("all-od", {"OnDemandBaseCapacity": 1, "OnDemandPercentageAboveBaseCapacity": 100}, None),
    ):
        overrides = [{"InstanceType": t} for t in ("g5.xlarge", "g5.12xlarge")]
        if weights:
            for o, w in zip(overrides, weights, strict=True):
                o["WeightedCapacity"] = w
        asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MixedInstancesPolicy={
                "LaunchTemplate": {
                    "LaunchTemplateSpecification": {"LaunchTemplateName": "mixed-lt", "Version": "$Latest"},
                    "Overrides": overrides,
                },
                "InstancesDistribution": dist,
            },
            MinSize=0,
            MaxSize=16,
            DesiredCapacity=0,
            VPCZoneIdentifier=subnets["us-east-1a"],
        )
    data = await source.fetch()
    mixed = pool(data, "mixed")
    assert mixed.instance_types == ("g5.xlarge", "g5.12xlarge")
    assert (mixed.gpu_model, mixed.gpus_per_node, mixed.gpus_per_node_max) == ("A10G", 1, 4)
    assert mixed.lifecycle == "mixed", "on-demand for the first 2, spot above: not 'spot'"
    assert mixed.capacity_weights == ("g5.xlarge=1", "g5.12xlarge=4")
    assert (pool(data, "all-spot").lifecycle, pool(data, "all-od").lifecycle) == ("spot", "on-demand")
    assert pool(data, "all-spot").capacity_weights == ()

    from aios_tui.render.views import POOLS

    shape = next(c for c in POOLS.columns if c.key == "gpus")
    assert str(shape.cell(mixed, None)) == "1–4×A10G"  # type: ignore[arg-type]
    assert str(shape.cell(pool(data, "g5-pool"), None)) == "4×A10G"  # type: ignore[arg-type]

    ops = await _admin_ops(source, tmp_path)
    plan = ops.plan("scale-pool", pool="mixed", desired=8)
    assert any("weighted units (g5.xlarge=1, g5.12xlarge=4)" in w for w in plan.warnings), plan.warnings
    assert not any("weighted" in w for w in ops.plan("scale-pool", pool="g5-pool", desired=3).warnings)


async def test_neuron_fractional_and_unpriced_accelerators_show(scene: Scene, source: CloudSource) -> None:
    """Trainium and Inferentia (``NeuronInfo``, no ``GpuInfo``) and g6f (an eighth of an L4) used to vanish;
    p6-b200, which the bundled table lacks, shows with AWS's GPUs and no price."""
    ec2, subnets = scene.client("ec2"), _subnets(scene)
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm*"]}])
    ids = {}
    for itype in ("trn1.32xlarge", "inf2.48xlarge", "g6f.xlarge", "p6-b200.48xlarge"):
        out = ec2.run_instances(
            ImageId=ami["Images"][0]["ImageId"],
            MinCount=1,
            MaxCount=1,
            InstanceType=itype,
            SubnetId=subnets["us-east-1a"],
        )
        ids[itype] = out["Instances"][0]["InstanceId"]
    data = await source.fetch()
    by = {n.name: n for n in data.nodes}
    shown = {t: (by[i].gpu_model, by[i].gpus_total) for t, i in ids.items()}
    assert shown == {
        "trn1.32xlarge": ("Trainium", 16),
        "inf2.48xlarge": ("Inferentia2", 12),
        "g6f.xlarge": ("L4 (1/8 GPU)", 1),
        "p6-b200.48xlarge": ("B200", 8),
    }
    assert by[ids["p6-b200.48xlarge"]].price_per_hour is NA
    assert data.problems == ()


async def test_the_fleet_total_says_it_leaves_unpriced_nodes_out(scene: Scene, source: CloudSource) -> None:
    """A p6-b200 (no bundled price) used to be left out of the fleet's $/h silently."""
    import io

    from aios_tui.render.header import header_lines
    from aios_tui.render.jsonout import snapshot_to_json
    from aios_tui.render.text import write_summary
    from aios_tui.render.views import pools_summary

    ec2, subnets = scene.client("ec2"), _subnets(scene)
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm*"]}])
    ec2.run_instances(
        ImageId=ami["Images"][0]["ImageId"],
        MinCount=1,
        MaxCount=1,
        InstanceType="p6-b200.48xlarge",
        SubnetId=subnets["us-east-1a"],
    )
    poller = Poller([source])
    try:
        snap = await poller.refresh()
    finally:
        await poller.stop()
    t = snap.totals
    assert t.nodes_unpriced == 1 and not isinstance(t.cost_per_hour, type(NA))
    assert t.cost_text().startswith("≥ $") and t.cost_text().endswith(", 1 node unpriced")
    out = io.StringIO()
    write_summary(snap, out)
    assert f"cost       {t.cost_text()}" in out.getvalue()
    assert snapshot_to_json(snap)["totals"]["nodes_unpriced"] == 1
    assert "1 node unpriced" in header_lines(snap, 0.0, 200)[1].plain
    assert "unpriced" not in pools_summary(snap, snap.pools).plain, "every pool here has a price"


async def test_the_console_shows_the_aws_pools(scene: Scene, tmp_path: Path) -> None:
    from tests.cloud_paths import pools_view

    screen = await pools_view(aws_source(scene.url), tmp_path)
    for text in ("g5-pool", "asg", "prod/h100", "eks", "4×A10G"):
        assert text in screen, text
