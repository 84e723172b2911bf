"""AWS as a :class:`~aios_tui.sources.clouds.base.CloudProvider`: EC2 GPU instances, Auto Scaling groups and
EKS managed node groups, spot prices, and setting a pool's desired capacity (boto3).

One provider is one profile (or the standard credential chain: ``AWS_PROFILE``, the environment, the config
files) in several regions. Every client has explicit connect/read timeouts and botocore's ``standard``
retry mode with ``max_attempts`` tries in all (3; the first counts, as in the AWS config files), which backs
off with jitter on throttling; throttling that outlasts the retries, and expired or invalid credentials, fail
the whole fetch with a :class:`SourceError` (the poller keeps the last data and backs off). Access denied on
one API (``eks:ListNodegroups``, say), or a region that does not answer, is a problem sentence and the rest
still shows. Messages are built here from the error code, followed by AWS's own message (a
``ValidationError`` says why) made one line, with anything like a credential masked
(:func:`~aios_tui.domain.errors.redact`) and escapes removed; nothing from the credentials reaches a message
or a log line; botocore's and boto3's loggers are held at WARNING, since at DEBUG they log signed request
headers.

Scaling notes: an Auto Scaling group's suspended processes (``Launch``, ``Terminate``) and its terminate
lifecycle hooks (``DescribeLifecycleHooks``, one call per GPU group) are read with the pools, so that a plan
can warn that the change would not take effect or that instances would wait in ``Terminating:Wait``.

Instances: those whose type has GPUs (the bundled table, else ``DescribeInstanceTypes``' ``GpuInfo``, asked
once per unknown type), terminated ones left out. Their pool is the EKS node group
(``<cluster>/<nodegroup>``, from the ``eks:nodegroup-name`` tag) or the Auto Scaling group
(``aws:autoscaling:groupName``); the cluster comes from ``eks:cluster-name``, ``aws:eks:cluster-name`` or
``kubernetes.io/cluster/<name>``. Pools: GPU ASGs (not those that back an EKS node group: the node group is
shown instead) and GPU EKS managed node groups of every cluster.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import datetime
from typing import Any, TypeVar

import boto3
import botocore.exceptions as bex
from botocore.config import Config
from botocore.parsers import ResponseParserError

from aios_tui.domain import NA
from aios_tui.domain.clock import now_utc
from aios_tui.domain.text import clean
from aios_tui.sources.base import SourceError
from aios_tui.sources.clouds.aws.prices import CATALOGUE
from aios_tui.sources.clouds.base import (
    MALFORMED,
    CloudInstance,
    CloudPool,
    Listing,
    Problems,
    SpotPrice,
    quiet,
    remote_message,
)

__all__ = ["AwsProvider"]

log = logging.getLogger("aios_tui.sources.aws")

T = TypeVar("T")

_EXPIRED = frozenset(
    {
        "ExpiredToken",
        "ExpiredTokenException",
        "RequestExpired",
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "AuthFailure",
        "SignatureDoesNotMatch",
        "InvalidSignatureException",
    }
)
_THROTTLED = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestLimitExceeded",
        "TooManyRequestsException",
        "RequestThrottled",
        "RequestThrottledException",
        "SlowDown",
    }
)
_DENIED = frozenset(
    {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "UnauthorizedException", "Forbidden"}
)
_UNREACHABLE = (
    bex.EndpointConnectionError,
    bex.ConnectTimeoutError,
    bex.ReadTimeoutError,
    bex.ConnectionClosedError,
)
_CLUSTER_TAGS = ("eks:cluster-name", "aws:eks:cluster-name")
_LIFECYCLE = {"ON_DEMAND": "on-demand", "SPOT": "spot", "CAPACITY_BLOCK": "capacity-block"}


class AwsProvider:
    """One AWS profile in some regions."""

    kind = "aws"
    machine = "EC2 instance"
    unpooled = "ec2"
    catalogue = CATALOGUE

    def __init__(
        self,
        *,
        profile: str = "",
        regions: Iterable[str] = ("us-east-1",),
        endpoint_url: str = "",
        timeout: float = 10.0,
        max_attempts: int = 3,
        session_factory: Callable[..., Any] | None = None,
    ) -> None:
        quiet("botocore", "boto3")  # at DEBUG they log signed request headers
        self.regions = tuple(regions)
        self.scopes = self.regions
        self._endpoint = endpoint_url or None
        try:
            self._session = (session_factory or boto3.session.Session)(profile_name=profile or None)
        except bex.ProfileNotFound as exc:
            raise SourceError(_no_profile(profile, exc)) from None
        except bex.BotoCoreError as exc:
            raise SourceError(f"AWS profile {profile or '(default)'}: {type(exc).__name__}") from None
        # With no profile named, AWS_PROFILE (or "default") is the one the chain uses.
        self.profile = profile or str(self._session.profile_name or "default")
        self._who = f"profile {profile}" if profile else "the default credential chain"
        self._refuse_prompts()
        self.context = f"aws {self.profile} · {', '.join(self.regions)}"
        # ``total_max_attempts`` counts the first try, as ``max_attempts`` does in the AWS config files; the
        # ``max_attempts`` key of botocore's Config counts retries only (3 would be 4 tries).
        self._config = Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"mode": "standard", "total_max_attempts": max(1, int(max_attempts))},
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._resolved = False
        self._gpu_info: dict[str, tuple[str, int]] = {
            t.name: (t.gpu_model, t.gpus) for t in CATALOGUE.types.values()
        }

    # --- plumbing ----------------------------------------------------------------------------------------

    def _refuse_prompts(self) -> None:
        """A profile with ``mfa_serial`` makes botocore ask for a code on the terminal (``getpass``), from a
        worker thread holding the client lock — over the console, or failing with EOFError without one. Make
        it fail at once with what to do instead."""
        who = self._who

        def refuse(_prompt: str) -> str:
            raise SourceError(
                f"{who} asks for an MFA code, which aios-tui cannot prompt for: get session credentials "
                "first (aws sts get-session-token, or aws sso login) and use them"
            )

        try:
            resolver = self._session._session.get_component("credential_provider")
            provider = resolver.get_provider("assume-role")
        except Exception:  # another botocore, or a test's session: nothing to refuse
            return
        if provider is not None and hasattr(provider, "_prompter"):
            provider._prompter = refuse

    def begin(self) -> None:
        """Before each fetch, once: find the credentials (the chain: environment, config files, SSO, then
        instance metadata), which every client of the session then shares. Without it each new client ran the
        chain again, instance metadata included (a second or more each where there is none), one after
        another under the lock. Found credentials are kept (botocore refreshes them); none found fails the
        fetch at once, saying where the chain looked, and the next poll looks again."""
        if self._resolved:
            return
        with self._lock:
            if self._resolved:
                return
            try:
                found = self._session.get_credentials()
            except bex.ProfileNotFound as exc:
                raise SourceError(_no_profile(self.profile, exc)) from None
            except (bex.TokenRetrievalError, bex.SSOTokenLoadError, bex.UnauthorizedSSOTokenError):
                raise SourceError(self._expired("SSO")) from None
            except bex.BotoCoreError as exc:  # the class only: a message could quote a config value
                raise SourceError(f"AWS credentials for {self._who}: {type(exc).__name__}") from None
            if found is None:
                raise SourceError(
                    f"no AWS credentials found for {self._who} (looked in the environment, the AWS config "
                    "and credentials files, and instance metadata): set AWS_PROFILE or keys, or run "
                    "aws sso login"
                )
            self._resolved = True

    def _client(self, service: str, region: str) -> Any:
        with self._lock:  # a boto3 Session is not thread-safe; its clients are
            c = self._clients.get((service, region))
            if c is None:
                c = self._session.client(
                    service, region_name=region, endpoint_url=self._endpoint, config=self._config
                )
                self._clients[(service, region)] = c
            return c

    def _call(
        self, service: str, op: str, region: str, problems: Problems | None, fn: Callable[[], T]
    ) -> T | None:
        """``fn()``; a problem (None back) for what spoils only this call, SourceError for the rest."""
        where = f"{service} {op} in {region}"
        try:
            return fn()
        except bex.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "")) or "error"
            if code in _EXPIRED:
                raise SourceError(self._expired(code)) from None
            if code in _THROTTLED:
                raise SourceError(f"AWS is throttling {where} ({code}) after retries: backing off") from None
            why = "access denied" if code in _DENIED else code
            said = remote_message(error.get("Message"))
            if said:
                why += f" ({said})"
            if problems is None:
                raise SourceError(f"{where}: {why}") from None
            problems.add(f"{where}: {why}")
        except (bex.NoCredentialsError, bex.PartialCredentialsError):
            raise SourceError(f"no AWS credentials found for {self._who}") from None
        except (bex.TokenRetrievalError, bex.SSOTokenLoadError, bex.UnauthorizedSSOTokenError):
            raise SourceError(self._expired("SSO")) from None
        except bex.ProfileNotFound as exc:
            raise SourceError(_no_profile(self.profile, exc)) from None
        except _UNREACHABLE as exc:
            if problems is None:
                raise SourceError(f"{where}: unreachable ({type(exc).__name__})") from None
            problems.add(f"{where}: unreachable ({type(exc).__name__})")
        except bex.BotoCoreError as exc:  # the class only: a message could quote a config value
            if problems is None:
                raise SourceError(f"{where}: {type(exc).__name__}") from None
            problems.add(f"{where}: {type(exc).__name__}")
        except (ResponseParserError, ValueError, TypeError) as exc:  # botocore could not parse the answer
            why = f"{where}: the answer could not be read ({type(exc).__name__})"
            if problems is None:
                raise SourceError(why) from None
            problems.add(why)
        return None

    def _expired(self, code: str) -> str:
        login = f"aws sso login --profile {self.profile}, or new keys in the environment"
        return (
            f"AWS credentials for {self._who} have expired or are not valid ({code}): refresh them ({login})"
        )

    def _pages(
        self, service: str, op: str, region: str, problems: Problems, key: str, **kw: Any
    ) -> list[Any] | None:
        def run() -> list[Any]:
            paginator = self._client(service, region).get_paginator(_snake(op))
            return [item for page in paginator.paginate(**kw) for item in page.get(key, [])]

        return self._call(service, op, region, problems, run)

    def _gpus(self, region: str, types: Collection[str], problems: Problems) -> None:
        """Fill the accelerator model and count of types the table lacks (``DescribeInstanceTypes``, 100 a
        call): :func:`_accelerators` reads NVIDIA GPUs, fractional GPUs and Neuron devices."""
        unknown = sorted(t for t in types if t not in self._gpu_info)
        for start in range(0, len(unknown), 100):
            batch = unknown[start : start + 100]
            found = self._pages(
                "ec2", "DescribeInstanceTypes", region, problems, "InstanceTypes", InstanceTypes=batch
            )
            if found is None:
                return
            for t in found:
                try:
                    self._gpu_info[str(t["InstanceType"])] = _accelerators(t)
                except MALFORMED as exc:
                    problems.skip("instance type", exc)
            for name in batch:
                self._gpu_info.setdefault(name, ("", 0))

    def _is_gpu(self, instance_type: str) -> bool:
        return self._gpu_info.get(instance_type, ("", 0))[1] > 0

    # --- CloudProvider -----------------------------------------------------------------------------------

    def instances(self, region: str) -> Listing[CloudInstance]:
        problems = Problems(log, "aws")
        reservations = self._pages(
            "ec2",
            "DescribeInstances",
            region,
            problems,
            "Reservations",
            Filters=[
                {
                    "Name": "instance-state-name",
                    "Values": ["pending", "running", "stopping", "stopped", "shutting-down"],
                }
            ],
        )
        raw: list[dict[str, Any]] = []
        for r in reservations or []:
            try:
                raw.extend(i for i in r.get("Instances", []) if isinstance(i, dict))
            except MALFORMED as exc:
                problems.skip("reservation", exc)
        self._gpus(region, {str(i.get("InstanceType", "")) for i in raw}, problems)
        out = []
        for i in raw:
            try:
                instance = self._instance(i, region)
            except MALFORMED as exc:
                problems.skip("instance", exc)
                continue
            if instance is not None:
                out.append(instance)
        return Listing(tuple(out), tuple(problems.items))

    def _instance(self, i: Mapping[str, Any], region: str) -> CloudInstance | None:
        """One ``DescribeInstances`` instance; None when its type has no GPU."""
        itype = str(i.get("InstanceType", ""))
        if not self._is_gpu(itype):
            return None
        tags = {str(t.get("Key")): str(t.get("Value", "")) for t in i.get("Tags", [])}
        zone = str(i.get("Placement", {}).get("AvailabilityZone", ""))
        iid = str(i["InstanceId"])
        cluster = _cluster(tags)
        model, gpus = self._gpu_info[itype]
        launched = i.get("LaunchTime")
        return CloudInstance(
            id=iid,
            provider_id=f"aws:///{zone}/{iid}",
            instance_type=itype,
            region=region,
            zone=zone,
            state=str(i.get("State", {}).get("Name", "")),
            gpu_model=model,
            gpus=gpus,
            lifecycle=str(i.get("InstanceLifecycle") or "on-demand"),
            launched_at=launched.timestamp() if launched is not None else NA,
            pool=_pool_of(tags, cluster),
            cluster=cluster,
        )

    def pools(self, region: str) -> Listing[CloudPool]:
        problems = Problems(log, "aws")
        nodegroups = self._nodegroups(region, problems)
        backing = {asg for ng in nodegroups for asg in ng[1]}
        groups = self._pages(
            "autoscaling", "DescribeAutoScalingGroups", region, problems, "AutoScalingGroups"
        )
        out: list[CloudPool] = []
        asgs: list[tuple[dict[str, Any], tuple[str, ...]]] = []
        suspended: dict[str, tuple[str, ...]] = {}
        asg_zones: dict[str, tuple[str, ...]] = {}
        for g in groups or []:
            try:
                suspended[str(g["AutoScalingGroupName"])] = _suspended(g)
                asg_zones[str(g["AutoScalingGroupName"])] = _zones(g)
                tags = {str(t.get("Key")): str(t.get("Value", "")) for t in g.get("Tags", [])}
                if g["AutoScalingGroupName"] in backing or "eks:nodegroup-name" in tags:
                    continue
                asgs.append((g, self._asg_types(g, region, problems)))
            except MALFORMED as exc:
                problems.skip("Auto Scaling group", exc)
        self._gpus(region, {t for _, types in asgs for t in types}, problems)
        self._gpus(region, {t for ng in nodegroups for t in ng[0].instance_types}, problems)
        for g, types in asgs:
            if not any(self._is_gpu(t) for t in types):
                continue
            try:
                pool = self._asg(g, types, region)
            except MALFORMED as exc:
                problems.skip("Auto Scaling group", exc)
                continue
            hooks = self._terminate_hooks(pool.ref, region, problems)
            out.append(dataclasses.replace(pool, terminate_hooks=hooks))
        gpu_groups = [ng for ng in nodegroups if any(self._is_gpu(t) for t in ng[0].instance_types)]
        # A node group's zones: its Auto Scaling group's, else its subnets' (one call for them all), so that
        # one with no node up still says where it launches.
        subnet_zones = self._subnet_zones(
            region,
            {n for ng, a, subnets in gpu_groups if not any(asg_zones.get(x) for x in a) for n in subnets},
            problems,
        )
        for ng, backing_asgs, subnets in gpu_groups:
            model, gpus, most = self._shape(ng.instance_types)
            zones = {z for a in backing_asgs for z in asg_zones.get(a, ())}
            zones = zones or {subnet_zones[n] for n in subnets if n in subnet_zones}
            # The node group's own Auto Scaling group does the launching and terminating: what is
            # suspended there holds the node group too. (Its terminate hook is EKS's own, which drains.)
            held = tuple(dict.fromkeys(p for a in backing_asgs for p in suspended.get(a, ())))
            out.append(
                dataclasses.replace(
                    ng,
                    gpu_model=model,
                    gpus_per_node=gpus,
                    gpus_per_node_max=most,
                    suspended=held,
                    zones=tuple(sorted(zones)),
                )
            )
        return Listing(tuple(out), tuple(problems.items))

    def _asg(self, g: Mapping[str, Any], types: tuple[str, ...], region: str) -> CloudPool:
        """One GPU Auto Scaling group as a pool."""
        model, gpus, most = self._shape(types)
        # A mixed-instances policy says; without one the launch template does (the source then goes by the
        # instances it has).
        mixed = g.get("MixedInstancesPolicy") or {}
        lifecycle = _mixed_lifecycle(mixed.get("InstancesDistribution") or {}) if mixed else ""
        overrides = (mixed.get("LaunchTemplate") or {}).get("Overrides") or []
        weights = tuple(
            f"{o['InstanceType']}={int(o['WeightedCapacity'])}"
            for o in overrides
            if o.get("InstanceType") and o.get("WeightedCapacity") not in (None, "")
        )
        if all(w.endswith("=1") for w in weights):  # every type one unit: desired counts machines
            weights = ()
        return CloudPool(
            name=str(g["AutoScalingGroupName"]),
            kind="asg",
            region=region,
            instance_types=types,
            min_size=int(g.get("MinSize", 0)),
            max_size=int(g.get("MaxSize", 0)),
            desired=int(g.get("DesiredCapacity", -1)),
            gpu_model=model,
            gpus_per_node=gpus,
            gpus_per_node_max=most,
            zones=_zones(g),
            lifecycle=lifecycle,
            capacity_weights=weights,
            ref=str(g["AutoScalingGroupName"]),
            suspended=_suspended(g),
        )

    def _shape(self, types: Iterable[str]) -> tuple[str, int, int]:
        """The GPU model and the fewest and most GPUs per machine of the types a pool may launch (a mixed
        group's, ``g5.xlarge`` and ``g5.12xlarge``: 1 and 4); models that differ joined by ``|``."""
        shapes = [self._gpu_info[t] for t in types if self._is_gpu(t)]
        model = "|".join(dict.fromkeys(m for m, _ in shapes))
        counts = [n for _, n in shapes]
        return model, min(counts), max(counts)

    def _subnet_zones(self, region: str, subnets: Collection[str], problems: Problems) -> dict[str, str]:
        """Subnet id → its Availability Zone (``DescribeSubnets``)."""
        if not subnets:
            return {}
        found = self._pages("ec2", "DescribeSubnets", region, problems, "Subnets", SubnetIds=sorted(subnets))
        out = {}
        for n in found or []:
            try:
                out[str(n["SubnetId"])] = str(n["AvailabilityZone"])
            except MALFORMED as exc:
                problems.skip("subnet", exc)
        return out

    def _terminate_hooks(self, asg: str, region: str, problems: Problems) -> tuple[str, ...]:
        """The group's lifecycle hooks on termination, ``name (heartbeat N s)`` each."""
        hooks = self._call(
            "autoscaling",
            "DescribeLifecycleHooks",
            region,
            problems,
            lambda: (
                self._client("autoscaling", region)
                .describe_lifecycle_hooks(AutoScalingGroupName=asg)
                .get("LifecycleHooks", [])
            ),
        )
        out = []
        for h in hooks or []:
            try:
                if h.get("LifecycleTransition") == "autoscaling:EC2_INSTANCE_TERMINATING":
                    beat = h.get("HeartbeatTimeout")
                    out.append(f"{h['LifecycleHookName']}" + (f" (heartbeat {int(beat)} s)" if beat else ""))
            except MALFORMED as exc:
                problems.skip("lifecycle hook", exc)
        return tuple(out)

    def spot_prices(self, region: str, instance_types: Collection[str]) -> Listing[SpotPrice]:
        problems = Problems(log, "aws")
        if not instance_types:
            return Listing()
        history = self._call(
            "ec2",
            "DescribeSpotPriceHistory",
            region,
            problems,
            lambda: (
                self._client("ec2", region)
                .describe_spot_price_history(
                    InstanceTypes=sorted(instance_types),
                    ProductDescriptions=["Linux/UNIX", "Linux/UNIX (Amazon VPC)"],
                    StartTime=_now(),
                )
                .get("SpotPriceHistory", [])
            ),
        )
        latest: dict[tuple[str, str], tuple[Any, float]] = {}
        for h in history or []:
            try:
                k = (str(h["InstanceType"]), str(h["AvailabilityZone"]))
                at, price = h.get("Timestamp"), float(h["SpotPrice"])
                if k not in latest or (at is not None and at > latest[k][0]):
                    latest[k] = (at, price)
            except MALFORMED as exc:
                problems.skip("spot price", exc)
        items = tuple(SpotPrice(t, z, p) for (t, z), (_, p) in sorted(latest.items()))
        return Listing(items, tuple(problems.items))

    def scale_pool(self, pool: CloudPool, desired: int) -> None:
        if pool.kind == "asg":
            self._call(
                "autoscaling",
                "SetDesiredCapacity",
                pool.region,
                None,
                lambda: self._client("autoscaling", pool.region).set_desired_capacity(
                    AutoScalingGroupName=pool.ref, DesiredCapacity=desired, HonorCooldown=False
                ),
            )
        elif pool.kind == "eks-nodegroup":
            self._call(
                "eks",
                "UpdateNodegroupConfig",
                pool.region,
                None,
                lambda: self._client("eks", pool.region).update_nodegroup_config(
                    clusterName=pool.cluster, nodegroupName=pool.ref, scalingConfig={"desiredSize": desired}
                ),
            )
        else:
            raise SourceError(f"cannot scale {pool.name}: unknown pool kind {pool.kind!r}")

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()

    # --- helpers -----------------------------------------------------------------------------------------

    def _nodegroups(
        self, region: str, problems: Problems
    ) -> list[tuple[CloudPool, tuple[str, ...], tuple[str, ...]]]:
        """EKS managed node groups of every cluster, each with the Auto Scaling groups behind it and its
        subnets. Its instance types are ``instanceTypes``, else its launch template's (``launchTemplate``:
        the usual way for p5 node groups, which then have no ``instanceTypes``)."""
        clusters = self._pages("eks", "ListClusters", region, problems, "clusters")
        out = []
        for cluster in clusters or []:
            names = self._pages("eks", "ListNodegroups", region, problems, "nodegroups", clusterName=cluster)
            for ng_name in names or []:

                def describe(c: str = cluster, n: str = ng_name) -> Any:
                    eks = self._client("eks", region)
                    return eks.describe_nodegroup(clusterName=c, nodegroupName=n)["nodegroup"]

                ng = self._call("eks", "DescribeNodegroup", region, problems, describe)
                if ng is None:
                    continue
                try:
                    scaling = ng.get("scalingConfig", {})
                    asgs = tuple(
                        str(a["name"])
                        for a in (ng.get("resources") or {}).get("autoScalingGroups", [])
                        if "name" in a
                    )
                    types = [str(t) for t in ng.get("instanceTypes") or ()]
                    template = ng.get("launchTemplate") or {}
                    if not types and template:  # the launch template names the type (p5 node groups do)
                        types = self._template_types(
                            template.get("id"),
                            template.get("name"),
                            template.get("version"),
                            region,
                            problems,
                        )
                    subnets = tuple(str(n) for n in ng.get("subnets") or ())
                    pool = CloudPool(
                        name=f"{cluster}/{ng_name}",
                        kind="eks-nodegroup",
                        region=region,
                        instance_types=tuple(dict.fromkeys(types)),
                        min_size=int(scaling.get("minSize", 0)),
                        max_size=int(scaling.get("maxSize", 0)),
                        desired=int(scaling.get("desiredSize", -1)),
                        lifecycle=_LIFECYCLE.get(str(ng.get("capacityType", "")), ""),
                        cluster=str(cluster),
                        ref=str(ng_name),
                    )
                except MALFORMED as exc:
                    problems.skip("EKS node group", exc)
                    continue
                out.append((pool, asgs, subnets))
        return out

    def _asg_types(self, g: Mapping[str, Any], region: str, problems: Problems) -> tuple[str, ...]:
        """The instance types an ASG launches: its mixed-instances overrides, else its instances' types, else
        its launch template's."""
        mixed = g.get("MixedInstancesPolicy") or {}
        overrides = (mixed.get("LaunchTemplate") or {}).get("Overrides") or []
        types = [str(o["InstanceType"]) for o in overrides if o.get("InstanceType")]
        if not types:
            types = [str(m["InstanceType"]) for m in g.get("Instances", []) if m.get("InstanceType")]
        template = g.get("LaunchTemplate") or (mixed.get("LaunchTemplate") or {}).get(
            "LaunchTemplateSpecification"
        )
        if not types and template:
            types = self._template_types(
                template.get("LaunchTemplateId"),
                template.get("LaunchTemplateName"),
                template.get("Version"),
                region,
                problems,
            )
        return tuple(dict.fromkeys(types))

    def _template_types(
        self, template_id: object, name: object, version: object, region: str, problems: Problems
    ) -> list[str]:
        """The instance type a launch template's version sets (``DescribeLaunchTemplateVersions``), by id or
        name; its default version when none is named."""
        ref = (
            {"LaunchTemplateId": str(template_id)} if template_id else {"LaunchTemplateName": str(name or "")}
        )
        versions = self._call(
            "ec2",
            "DescribeLaunchTemplateVersions",
            region,
            problems,
            lambda: (
                self._client("ec2", region)
                .describe_launch_template_versions(**ref, Versions=[str(version or "$Default")])
                .get("LaunchTemplateVersions", [])
            ),
        )
        out = []
        for v in versions or []:
            t = (v.get("LaunchTemplateData") or {}).get("InstanceType")
            if t:
                out.append(str(t))
        return out


def _cluster(tags: Mapping[str, str]) -> str:
    for key in _CLUSTER_TAGS:
        if tags.get(key):
            return tags[key]
    for key in tags:
        if key.startswith("kubernetes.io/cluster/"):
            return key.removeprefix("kubernetes.io/cluster/")
    return ""


def _pool_of(tags: Mapping[str, str], cluster: str) -> str:
    ng = tags.get("eks:nodegroup-name", "")
    if ng and cluster:
        return f"{cluster}/{ng}"
    return tags.get("aws:autoscaling:groupName", "")


def _no_profile(profile: str, exc: bex.ProfileNotFound) -> str:
    """``AWS profile prdo is not defined in the AWS config or credentials files (profiles there: prod)``: the
    profile named, whether by the settings or by ``AWS_PROFILE``."""
    name = clean(str(exc.kwargs.get("profile") or profile), 80)
    try:
        import botocore.session

        known = sorted(botocore.session.Session().available_profiles)
    except Exception:  # the files could not be read: say nothing of them
        known = []
    there = f" (profiles there: {clean(', '.join(known), 200)})" if known else " (none defines a profile)"
    return f"AWS profile {name} is not defined in the AWS config or credentials files{there}"


def _mixed_lifecycle(dist: Mapping[str, Any]) -> str:
    """A mixed-instances group's purchase option (``InstancesDistribution``): AWS's defaults are a base of 0
    on-demand machines and 100 % on-demand above it. All on-demand, all spot, or ``mixed`` (on-demand for
    the first ``OnDemandBaseCapacity``, spot above it, or a share of each)."""
    base = int(dist.get("OnDemandBaseCapacity") or 0)
    above = dist.get("OnDemandPercentageAboveBaseCapacity")
    above = 100 if above is None else int(above)
    if above >= 100:
        return "on-demand"
    return "spot" if above <= 0 and base <= 0 else "mixed"


def _zones(g: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(sorted(str(z) for z in g.get("AvailabilityZones") or ()))


def _suspended(g: Mapping[str, Any]) -> tuple[str, ...]:
    return tuple(str(p["ProcessName"]) for p in g.get("SuspendedProcesses") or () if p.get("ProcessName"))


def _accelerators(t: Mapping[str, Any]) -> tuple[str, int]:
    """An instance type's accelerators as (model, count), from ``DescribeInstanceTypes``: its NVIDIA GPUs
    (``GpuInfo``); a fraction of one (g6f: ``Count`` 0, ``LogicalGpuCount`` 1, ``GpuPartitionSize`` 0.125)
    as that many GPUs of model ``L4 (1/8 GPU)``; else its Neuron devices (``NeuronInfo``: trn1, trn2, inf2)
    by AWS's name (``Trainium``, ``Inferentia2``), which is no NVIDIA model, so nothing asking for one
    matches them. ("", 0) for none."""
    gpus = [g for g in (t.get("GpuInfo") or {}).get("Gpus") or [] if isinstance(g, Mapping)]
    count = sum(int(g.get("Count") or 0) for g in gpus)
    if count:
        return str(gpus[0].get("Name", "")), count
    for g in gpus:
        logical, size = int(g.get("LogicalGpuCount") or 0), float(g.get("GpuPartitionSize") or 0)
        if logical > 0 and 0 < size < 1:
            return f"{g.get('Name', '')} ({_fraction(size)} GPU)", logical
    devices = [d for d in (t.get("NeuronInfo") or {}).get("NeuronDevices") or [] if isinstance(d, Mapping)]
    count = sum(int(d.get("Count") or 0) for d in devices)
    if count:
        return str(devices[0].get("Name", "") or "Neuron"), count
    return "", 0


def _fraction(size: float) -> str:
    """0.125 → ``1/8``; a share that is no unit fraction as itself (0.75 → ``0.75``)."""
    whole = round(1 / size)
    return f"1/{whole}" if abs(1 / whole - size) < 1e-6 else f"{size:g}"


def _snake(op: str) -> str:
    out = []
    for i, ch in enumerate(op):
        if ch.isupper() and i:
            out.append("_")
        out.append(ch.lower())
    return "".join(out)


def _now() -> datetime:
    return now_utc()
