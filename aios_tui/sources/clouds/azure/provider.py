"""Azure as a :class:`~aios_tui.sources.clouds.base.CloudProvider`: virtual machines with GPUs, VM scale sets
and AKS agent pools as node pools, and setting a pool's size (azure-identity, azure-mgmt-compute,
azure-mgmt-containerservice).

One provider is one credential chain over some subscriptions, each listed on a thread of its own. The
credential is ``DefaultAzureCredential`` with nothing interactive: the environment (``AZURE_TENANT_ID``,
``AZURE_CLIENT_ID`` and a secret or certificate), workload identity, managed identity, then the az CLI,
Azure PowerShell and azd logins, as the library orders them. :meth:`AzureProvider.begin` asks it for a token
once per fetch, so that a missing or refused login fails the fetch at once, saying where it looked and what
to do (``az login``). With no subscription in the settings, the provider lists ``AZURE_SUBSCRIPTION_ID``,
else the default subscription of ``az login`` (``isDefault`` in ``azureProfile.json`` under
``AZURE_CONFIG_DIR``, else ``~/.azure``), as az itself would, and the header names subscriptions as az
knows them. Where ``AZURE_AUTHORITY_HOST`` names a sign-in host that is not Microsoft's (a private cloud,
Azure Stack, a test server), MSAL's instance discovery, which asks login.microsoftonline.com about it, is
turned off (``disable_instance_discovery``, documented for that case); the token's audience is the
endpoint's own (``<endpoint_url>/.default``).

Every client has explicit connect and read timeouts and azure-core's retry policy with ``max_attempts``
tries in all (the first counts), backing off on 429 and 503 as ``Retry-After`` says; a wait longer than one
call's timeout is not waited for. Throttling that outlasts the retries, and credentials ARM refuses
(``ExpiredAuthenticationToken``, ``InvalidAuthenticationToken``), fail the whole fetch with a
:class:`SourceError`; access denied on one API (``AuthorizationFailed`` on AKS, say) or a subscription ARM
does not know, or one of another tenant (``InvalidAuthenticationTokenTenant``), is a problem sentence, and
the rest still shows. Messages are built here from ARM's error
code, followed by ARM's own message made one line, with anything like a credential masked
(:func:`~aios_tui.domain.errors.redact`) and escapes removed; no token or secret reaches a message or a log
line: the ``azure``, ``msal`` and ``urllib3`` loggers are held at WARNING (azure-core's HTTP logging policy
logs request headers at INFO and DEBUG).

What is read, per subscription:

- Instances: ``virtualMachines`` list (the model) and the same list with ``statusOnly=true`` (the power
  state, joined by resource ID), and the VMs of every GPU scale set in Uniform orchestration (with their
  instance view). Only sizes with GPUs: the bundled table, else the ``GPUs`` capability of the size in
  ``Microsoft.Compute/skus`` (asked once per region for sizes the table lacks; the model then comes from
  the size's name, ``Standard_ND128isr_NDR_GB200_v6`` → ``GB200``). Power state: ``running`` → running,
  ``starting`` → pending, ``stopping`` and ``deallocating`` → stopping, ``stopped`` and ``deallocated`` →
  stopped. The zone is ``<region>-<zone>`` as AKS labels nodes (``eastus-1``); Spot priority is
  lifecycle ``spot``. ``provider_id`` is what cloud-provider-azure writes into ``spec.providerID``:
  ``azure://`` and the resource ID with its resource group in lower case (it does so for scale set VMs and
  plain VMs alike). A scale set VM is named by its computer name (a Kubernetes node's name), a plain VM by
  its name.
- Pools: GPU scale sets (``vmss``; min 0, max the scale set's documented limit: 100 VMs in a single
  placement group, else 1,000; Azure Monitor autoscale is not read) and GPU agent pools of every AKS
  cluster (``aks-agentpool``, named ``<cluster>/<pool>``; ``minCount``..``maxCount`` when the cluster
  autoscaler is on, else 0..1,000). The scale set behind an agent pool (``aks-managed-poolName`` tag, or in
  a cluster's node resource group) is not shown as a pool of its own, and its VMs belong to the agent pool.
- Scaling: a scale set's ``sku.capacity`` (read, then ``PATCH``), an agent pool's ``count`` (read, then
  ``PUT``, as ``az aks nodepool scale`` does; refused, as az refuses, when the cluster autoscaler is on).
  Both are long-running operations: the call returns once Azure accepted the change, without waiting for
  the machines, and an immediate refusal is raised.

Spot prices: the ARM SDKs quote none, so :meth:`AzureProvider.spot_prices` answers nothing and a spot VM is
priced by the settings' ``[[azure.prices]]`` or not at all.
"""

from __future__ import annotations

import concurrent.futures
import json
import logging
import os
import re
import threading
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    DeserializationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import CredentialUnavailableError, DefaultAzureCredential
from azure.mgmt.compute import ComputeManagementClient
from azure.mgmt.containerservice import ContainerServiceClient

from aios_tui.domain import NA
from aios_tui.domain.text import clean
from aios_tui.domain.units import Metric
from aios_tui.sources.base import SourceError
from aios_tui.sources.clouds.azure.prices import CATALOGUE
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

__all__ = ["AzureProvider"]

log = logging.getLogger("aios_tui.sources.azure")

T = TypeVar("T")

ARM = "https://management.azure.com"
"""Azure Resource Manager in the public cloud, the default endpoint."""

_COMPUTE = "Microsoft.Compute"
_AKS = "Microsoft.ContainerService"

_EXPIRED = frozenset(
    {
        "ExpiredAuthenticationToken",
        "InvalidAuthenticationTokenTokenExpired",
        "InvalidAuthenticationToken",
        "InvalidAuthenticationTokenAudience",
        "AuthenticationFailed",
        "AuthenticationFailedMissingToken",
    }
)
_OTHER_TENANT = "InvalidAuthenticationTokenTenant"
"""ARM's 401 for a token of a tenant the subscription is not in: a problem of that subscription alone."""
_THROTTLED = frozenset({"SubscriptionRequestsThrottled", "TooManyRequests", "ResourceRequestsThrottled"})
_DENIED = frozenset(
    {"AuthorizationFailed", "LinkedAuthorizationFailed", "Forbidden", "RequestDisallowedByPolicy"}
)
_NO_SUBSCRIPTION = frozenset({"SubscriptionNotFound", "InvalidSubscriptionId", "SubscriptionNotRegistered"})

_POWER = {
    "running": "running",
    "starting": "pending",
    "stopping": "stopping",
    "deallocating": "stopping",
    "stopped": "stopped",
    "deallocated": "stopped",
}
"""``PowerState/<x>`` to the source's instance states. A ``stopped`` VM (not deallocated) is still billed by
Azure for its cores: it keeps its price (:func:`_billed`); a deallocated one costs 0."""

_SPOT = frozenset({"spot", "low"})
"""VM priorities that Azure may evict (``Low`` is the old name of ``Spot``)."""

_POOL_TAG = "aks-managed-poolName"
_CLUSTER_TAG = "aks-managed-cluster-name"

_GPU_MODELS = frozenset(
    {
        "GB300",
        "GB200",
        "B200",
        "H200",
        "H100",
        "A100",
        "A10",
        "L40S",
        "L4",
        "T4",
        "V100",
        "P100",
        "P40",
        "M60",
    }
    | {"MI300X", "MI200", "MI25"}
)
"""Accelerator names as Azure writes them between underscores in a size's name."""

_SCALE_SET_MAX = 1000
"""VMs in a scale set (Flexible, or Uniform spread over placement groups), per Azure's documented limits."""
_PLACEMENT_GROUP_MAX = 100
"""VMs in a Uniform scale set confined to a single placement group."""
_AKS_POOL_MAX = 1000
"""Nodes in one AKS agent pool (Azure's documented limit)."""


_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


class _Retry(RetryPolicy[Any, Any]):
    """azure-core's retry policy with ``attempts`` tries in all, the first included (its ``retry_total``
    counts retries; every other counter is set the same, or ``retry_status``'s default of 3 would stop it
    sooner), which backs off exponentially or as ``Retry-After`` says; but a ``Retry-After`` longer than
    ``longest_wait`` seconds is not waited for (azure-core would sleep as long as asked): the answer then
    stands, and the fetch fails as throttled at once."""

    def __init__(self, attempts: int, longest_wait: float) -> None:
        retries = max(0, attempts - 1)
        super().__init__(retry_total=retries, retry_connect=retries, retry_read=retries, retry_status=retries)
        self._longest_wait = longest_wait

    def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
        wait = self.get_retry_after(response)
        return bool(super().is_retry(settings, response)) and (wait is None or wait <= self._longest_wait)


class AzureProvider:
    """One Azure credential chain over some subscriptions."""

    kind = "azure"
    machine = "Azure VM"
    unpooled = "azure-vm"
    catalogue = CATALOGUE

    def __init__(
        self,
        *,
        subscriptions: Iterable[str] = (),
        regions: Iterable[str] = (),
        endpoint_url: str = "",
        timeout: float = 10.0,
        max_attempts: int = 3,
    ) -> None:
        quiet("azure", "msal", "urllib3")  # azure-core logs request headers at INFO and DEBUG
        profile = _az_profile()
        self.scopes = tuple(subscriptions) or _default_subscription(profile)
        self.regions = frozenset(_region(r) for r in regions)
        self._endpoint = (endpoint_url or ARM).rstrip("/")
        self._token_scope = f"{self._endpoint}/.default"
        self._timeout = timeout
        self._attempts = max(1, int(max_attempts))
        names = _subscription_names(profile)
        shown = ", ".join(clean(names.get(s.lower(), s), 60) for s in self.scopes) or "no subscription"
        self.context = f"azure {shown} · {', '.join(sorted(self.regions)) or 'all regions'}"
        self._credential = DefaultAzureCredential(
            exclude_interactive_browser_credential=True,
            disable_instance_discovery=_private_authority() or None,
        )
        self._lock = threading.Lock()
        self._clients: dict[tuple[str, str], Any] = {}
        self._gpu_info: dict[str, tuple[str, int]] = {
            t.name: (t.gpu_model, t.gpus) for t in CATALOGUE.types.values()
        }
        self._skus_read: set[str] = set()
        self._sizes_lock = threading.Lock()
        # One fetch's listings that instances() and pools() both read (scale sets, clusters), listed once.
        self._shared: dict[tuple[str, str], concurrent.futures.Future[list[Any] | None]] = {}
        # The VMs of a subscription's scale sets, one call each, side by side rather than one after another.
        self._fanout = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="azure-vmss")

    # --- plumbing ----------------------------------------------------------------------------------------

    def begin(self) -> None:
        """Before each fetch, once: a token for ARM from the credential chain, which every client then
        shares (the chain caches it and refreshes it when it expires). None found, or one refused, fails the
        fetch at once, saying where the chain looked; the next poll asks again."""
        if not self.scopes:
            raise SourceError(
                "no Azure subscription to list: set [azure] subscriptions in the settings, or "
                "AZURE_SUBSCRIPTION_ID, or choose one with az account set"
            )
        with self._lock:
            self._shared = {}
        try:
            self._credential.get_token(self._token_scope)
        except CredentialUnavailableError:
            raise SourceError(_NO_CREDENTIAL) from None
        except ClientAuthenticationError as exc:
            raise SourceError(_refused(exc)) from None
        except AzureError as exc:  # the class only: a message could quote a response
            raise SourceError(f"Azure sign-in failed ({type(exc).__name__})") from None

    def _client(self, api: str, subscription: str) -> Any:
        """The ``compute`` or ``aks`` client of a subscription, made once, with this provider's timeouts and
        retries, and the token scope of its endpoint (a sovereign cloud's, a test server's)."""
        with self._lock:
            c = self._clients.get((api, subscription))
            if c is None:
                cls = ComputeManagementClient if api == "compute" else ContainerServiceClient
                c = cls(
                    self._credential,
                    subscription,
                    base_url=self._endpoint,
                    credential_scopes=[self._token_scope],
                    retry_policy=_Retry(self._attempts, longest_wait=self._timeout),
                    connection_timeout=self._timeout,
                    read_timeout=self._timeout,
                )
                self._clients[(api, subscription)] = c
            return c

    def _call(
        self, where: str, problems: Problems | None, fn: Callable[[], T], subscription: str = ""
    ) -> T | None:
        """``fn()``; a problem (None back) for what spoils only this call, SourceError for the rest (and for
        everything when ``problems`` is None: an action)."""
        try:
            return fn()
        except ClientAuthenticationError as exc:
            if exc.response is None:  # the credential failed inside the pipeline
                raise SourceError(_refused(exc)) from None
            code = _code(exc)
            if code != _OTHER_TENANT or not subscription:
                raise SourceError(_expired(code or "401")) from None
            why = (
                f"subscription {subscription} belongs to another tenant than the credential's ({code}): "
                "sign in to its tenant (az login --tenant …, or AZURE_TENANT_ID)"
            )
        except DecodeError as exc:
            why = f"{where}: the answer could not be read ({type(exc).__name__})"
        except HttpResponseError as exc:
            code, status = _code(exc), exc.status_code
            label = code or f"HTTP {status}"
            if status in (429, 503) or code in _THROTTLED:
                raise SourceError(self._throttled(where, label, exc)) from None
            if status == 401 or code in _EXPIRED:
                raise SourceError(_expired(label)) from None
            if status == 403 or code in _DENIED:
                why = f"{where}: access denied: {label}"
            elif code in _NO_SUBSCRIPTION and subscription:
                why = f"subscription {subscription}: {label}"  # one sentence for all its calls
            else:
                why = f"{where}: {label}"
            said = remote_message(exc.error.message if exc.error is not None else "")
            if said:
                why += f" ({said})"
        except (ServiceRequestError, ServiceResponseError) as exc:
            why = f"{where}: unreachable ({type(exc).__name__})"
        except (DeserializationError, *MALFORMED) as exc:  # the SDK (or an action here) could not read it
            why = f"{where}: the answer could not be read ({type(exc).__name__})"
        except AzureError as exc:  # the class only: a message could quote a response
            why = f"{where}: {type(exc).__name__}"
        if problems is None:
            raise SourceError(why)
        problems.add(why)
        return None

    def _throttled(self, where: str, label: str, exc: HttpResponseError) -> str:
        """Why the fetch stops: throttled after every try, or asked to wait longer than a call may take."""
        wait = _retry_after(exc)
        if wait is not None and wait > self._timeout:
            return (
                f"Azure is throttling {where} ({label}) and asks to wait {wait:g} s, longer than a call's "
                f"timeout ({self._timeout:g} s): backing off"
            )
        return f"Azure is throttling {where} ({label}) after {self._attempts} tries: backing off"

    def _list(
        self, api: str, op: str, subscription: str, problems: Problems, fn: Callable[[Any], Any]
    ) -> list[Any] | None:
        """Every page of ``fn(client)`` (a pager), or None with a problem."""
        service = _COMPUTE if api == "compute" else _AKS
        where = f"{service} {op} in subscription {subscription}"
        client = self._client(api, subscription)
        return self._call(where, problems, lambda: list(fn(client)), subscription)

    def _once(
        self, api: str, op: str, subscription: str, problems: Problems, fn: Callable[[Any], Any]
    ) -> list[Any]:
        """:meth:`_list`, asked once per fetch whichever of instances() and pools() asks first; the other
        waits for that answer (a problem is said by the first; an error fails both)."""
        with self._lock:
            future = self._shared.get((op, subscription))
            first = future is None
            if future is None:
                future = self._shared[(op, subscription)] = concurrent.futures.Future()
        if first:
            try:
                future.set_result(self._list(api, op, subscription, problems, fn))
            except BaseException as exc:
                future.set_exception(exc)
        return list(future.result() or ())

    def _scale_sets(self, subscription: str, problems: Problems) -> list[Any]:
        return self._once("compute", "virtualMachineScaleSets list", subscription, problems, _all_scale_sets)

    def _clusters(self, subscription: str, problems: Problems) -> list[Any]:
        return self._once("aks", "managedClusters list", subscription, problems, _all_clusters)

    def _in_regions(self, location: object) -> bool:
        return not self.regions or _region(location) in self.regions

    # --- GPUs --------------------------------------------------------------------------------------------

    def _learn_sizes(self, subscription: str, sizes: Collection[tuple[str, str]], problems: Problems) -> None:
        """The GPUs of sizes the bundled table lacks, from ``Microsoft.Compute/skus`` (one call per region,
        once: its answer is every size and disk of the region), its ``GPUs`` capability; a size with none is
        remembered as having none."""
        with self._sizes_lock:  # one thread asks; the others, listing beside it, wait for its answer
            self._learn_sizes_now(subscription, sizes, problems)

    def _learn_sizes_now(
        self, subscription: str, sizes: Collection[tuple[str, str]], problems: Problems
    ) -> None:
        unknown = {(size, _region(loc)) for size, loc in sizes if size not in self._gpu_info}
        for region in sorted({r for _, r in unknown} - self._skus_read):
            found = self._list(
                "compute",
                "skus list",
                subscription,
                problems,
                partial(_skus, region),
            )
            if found is None:
                continue  # not read: asked again next time
            for sku in found:
                try:
                    if str(sku.resource_type).lower() != "virtualmachines":
                        continue
                    caps = {str(c.name): str(c.value) for c in sku.capabilities or ()}
                    gpus = int(float(caps.get("GPUs", "0")))
                    self._gpu_info.setdefault(str(sku.name), (_model_of(str(sku.name)), gpus))
                except MALFORMED as exc:
                    problems.skip("VM size", exc)
            self._skus_read.add(region)
        for size, _ in unknown:
            self._gpu_info.setdefault(size, ("", 0))

    def _is_gpu(self, size: str) -> bool:
        return self._gpu_info.get(size, ("", 0))[1] > 0

    # --- CloudProvider -----------------------------------------------------------------------------------

    def instances(self, subscription: str) -> Listing[CloudInstance]:
        problems = Problems(log, "azure")
        vms = self._list("compute", "virtualMachines list", subscription, problems, _all_vms) or []
        statuses = self._list("compute", "virtualMachines status list", subscription, problems, _vm_statuses)
        power: dict[str, str] = {}
        for v in statuses or ():
            try:
                power[str(v.id).lower()] = _power_state(v.instance_view)
            except MALFORMED as exc:
                problems.skip("VM status", exc)
        scale_sets = self._scale_sets(subscription, problems)
        clusters = _NodeGroups(self._clusters(subscription, problems))
        vms = [v for v in vms if self._in_regions(getattr(v, "location", ""))]
        scale_sets = [s for s in scale_sets if self._in_regions(getattr(s, "location", ""))]
        self._learn_sizes(
            subscription,
            {(_vm_size(v), str(v.location)) for v in vms if _vm_size(v)}
            | {(_scale_set_size(s), str(s.location)) for s in scale_sets if _scale_set_size(s)},
            problems,
        )
        out: list[CloudInstance] = []
        for v in vms:
            try:
                instance = self._vm(v, power.get(str(v.id).lower(), ""), clusters)
            except MALFORMED as exc:
                problems.skip("VM", exc)
                continue
            if instance is not None:
                out.append(instance)
        uniform: list[
            tuple[Any, str, str]
        ] = []  # GPU scale sets of Uniform orchestration: (set, size, group)
        for s in scale_sets:
            try:
                size = _scale_set_size(s)
                if not self._is_gpu(size) or str(s.orchestration_mode or "Uniform") == "Flexible":
                    continue  # a Flexible scale set's VMs are in the VM list, with their scale set named
                uniform.append((s, size, _resource_group(str(s.id))))
            except MALFORMED as exc:
                problems.skip("scale set", exc)
        listings = self._fanout.map(
            lambda one: self._list(
                "compute",
                "virtualMachineScaleSets virtualMachines list",
                subscription,
                problems,
                partial(_scale_set_vms, one[2], str(one[0].name)),
            ),
            uniform,
        )
        for (s, size, _), members in zip(uniform, listings, strict=True):
            for m in members or ():
                try:
                    out.append(self._scale_set_vm(m, s, size, clusters))
                except MALFORMED as exc:
                    problems.skip("scale set VM", exc)
        return Listing(tuple(out), problems.items)

    def _vm(self, v: Any, power: str, clusters: _NodeGroups) -> CloudInstance | None:
        """One plain VM (or a VM of a Flexible scale set); None when its size has no GPU."""
        size = _need(_vm_size(v) or None, "hardwareProfile.vmSize")
        if not self._is_gpu(size):
            return None
        rid, location = str(_need(v.id, "id")), str(_need(v.location, "location"))
        tags = _tags(v.tags)
        scale_set = v.virtual_machine_scale_set.id if v.virtual_machine_scale_set is not None else ""
        pool, cluster = clusters.place(rid, tags, _last(scale_set) if scale_set else "")
        model, gpus = self._gpu_info[size]
        return CloudInstance(
            id=str(_need(v.name, "name")),
            provider_id=_provider_id(rid),
            instance_type=size,
            region=location,
            zone=_zone(location, v.zones),
            state=_POWER.get(power, "unknown"),
            billed=_billed(power),
            qualified=f"{_resource_group(rid)}/{v.name}",
            gpu_model=model,
            gpus=gpus,
            lifecycle="spot" if str(v.priority or "").lower() in _SPOT else "on-demand",
            launched_at=_when(v.time_created),
            pool=pool,
            cluster=cluster,
        )

    def _scale_set_vm(self, m: Any, s: Any, size: str, clusters: _NodeGroups) -> CloudInstance:
        """One VM of a Uniform scale set, named by its computer name (the Kubernetes node's, on AKS)."""
        rid, location = str(_need(m.id, "id")), str(m.location or s.location)
        pool, cluster = clusters.place(rid, _tags(s.tags), str(s.name))
        computer = m.os_profile.computer_name if m.os_profile is not None else None
        power = _power_state(m.instance_view)
        model, gpus = self._gpu_info[size]
        return CloudInstance(
            id=str(computer or _need(m.name, "name")),
            provider_id=_provider_id(rid),
            instance_type=size,
            region=location,
            zone=_zone(location, m.zones),
            state=_POWER.get(power, "unknown"),
            billed=_billed(power),
            qualified=f"{_resource_group(rid)}/{computer or m.name}",
            gpu_model=model,
            gpus=gpus,
            lifecycle=_scale_set_lifecycle(s),
            launched_at=_when(m.time_created),
            pool=pool,
            cluster=cluster,
        )

    def pools(self, subscription: str) -> Listing[CloudPool]:
        problems = Problems(log, "azure")
        scale_sets = self._scale_sets(subscription, problems)
        cluster_list = self._clusters(subscription, problems)
        clusters = _NodeGroups(cluster_list)
        scale_sets = [s for s in scale_sets if self._in_regions(getattr(s, "location", ""))]
        agent_pools: list[tuple[Any, Any]] = []
        for c in cluster_list:
            try:
                if not self._in_regions(c.location):
                    continue
                rg, name = _resource_group(str(c.id)), str(_need(c.name, "name"))
            except MALFORMED as exc:
                problems.skip("AKS cluster", exc)
                continue
            found = self._list(
                "aks",
                "agentPools list",
                subscription,
                problems,
                partial(_agent_pools, rg, name),
            )
            agent_pools.extend((c, p) for p in found or ())
        self._learn_sizes(
            subscription,
            {(_scale_set_size(s), str(s.location)) for s in scale_sets if _scale_set_size(s)}
            | {(str(p.vm_size), str(c.location)) for c, p in agent_pools if p.vm_size},
            problems,
        )
        out: list[CloudPool] = []
        for s in scale_sets:
            try:
                pool = self._scale_set_pool(s, clusters)
            except MALFORMED as exc:
                problems.skip("scale set", exc)
                continue
            if pool is not None:
                out.append(pool)
        for c, p in agent_pools:
            try:
                pool = self._agent_pool(c, p)
            except MALFORMED as exc:
                problems.skip("AKS agent pool", exc)
                continue
            if pool is not None:
                out.append(pool)
        return Listing(tuple(out), problems.items)

    def _scale_set_pool(self, s: Any, clusters: _NodeGroups) -> CloudPool | None:
        """A GPU scale set as a pool; None for one without GPUs or one behind an AKS agent pool."""
        size = _scale_set_size(s)
        rid = str(_need(s.id, "id"))
        if not self._is_gpu(size) or clusters.owns(rid, _tags(s.tags)):
            return None
        model, gpus = self._gpu_info[size]
        location = str(_need(s.location, "location"))
        single = s.single_placement_group is not False and str(s.orchestration_mode or "Uniform") == "Uniform"
        return CloudPool(
            name=str(_need(s.name, "name")),
            kind="vmss",
            region=location,
            instance_types=(size,),
            min_size=0,
            max_size=_PLACEMENT_GROUP_MAX if single else _SCALE_SET_MAX,
            desired=int(_need(s.sku.capacity, "sku.capacity")),
            gpu_model=model,
            gpus_per_node=gpus,
            zones=tuple(_zone(location, [z]) for z in s.zones or ()),
            lifecycle=_scale_set_lifecycle(s),
            ref=rid,
        )

    def _agent_pool(self, c: Any, p: Any) -> CloudPool | None:
        """A GPU agent pool of an AKS cluster as ``<cluster>/<pool>``; None for one without GPUs."""
        size = str(_need(p.vm_size, "vmSize"))
        if not self._is_gpu(size):
            return None
        model, gpus = self._gpu_info[size]
        location, cluster = str(_need(c.location, "location")), str(c.name)
        auto = bool(p.enable_auto_scaling)
        return CloudPool(
            name=f"{cluster}/{_need(p.name, 'name')}",
            kind="aks-agentpool",
            region=location,
            instance_types=(size,),
            min_size=int(p.min_count or 0) if auto else 0,
            max_size=int(_need(p.max_count, "maxCount")) if auto else _AKS_POOL_MAX,
            desired=int(_need(p.count, "count")),
            gpu_model=model,
            gpus_per_node=gpus,
            zones=tuple(_zone(location, [z]) for z in p.availability_zones or ()),
            lifecycle="spot" if str(p.scale_set_priority or "").lower() in _SPOT else "on-demand",
            cluster=cluster,
            ref=f"{c.id}/agentPools/{p.name}",
            autoscaler="the AKS cluster autoscaler" if auto else "",
            by_hand=_AUTOSCALED.format(name=f"{cluster}/{p.name}", low=p.min_count, high=p.max_count)
            if auto
            else "",
        )

    def spot_prices(self, region: str, instance_types: Collection[str]) -> Listing[SpotPrice]:
        """Nothing: the ARM SDKs quote no spot prices (Azure's Retail Prices API, outside ARM, does)."""
        return Listing()

    def scale_pool(self, pool: CloudPool, desired: int) -> None:
        ids = _parse_id(pool.ref)
        subscription, rg = ids.get("subscriptions", ""), ids.get("resourcegroups", "")
        if pool.kind == "vmss":
            name = ids.get("virtualmachinescalesets", "")
            compute = self._client("compute", subscription)

            def resize() -> None:
                sku = compute.virtual_machine_scale_sets.get(rg, name).sku
                body = {"sku": {"name": sku.name, "tier": sku.tier, "capacity": desired}}
                compute.virtual_machine_scale_sets.begin_update(rg, name, body, polling=False)

            self._call(f"{_COMPUTE} virtualMachineScaleSets update of {pool.name}", None, resize)
        elif pool.kind == "aks-agentpool":
            cluster, agent_pool = ids.get("managedclusters", ""), ids.get("agentpools", "")
            aks = self._client("aks", subscription)

            def rescale() -> None:
                current = aks.agent_pools.get(rg, cluster, agent_pool)
                if current.enable_auto_scaling:
                    low, high = current.min_count, current.max_count
                    raise SourceError(_AUTOSCALED.format(name=pool.name, low=low, high=high))
                current.count = desired
                aks.agent_pools.begin_create_or_update(rg, cluster, agent_pool, current, polling=False)

            self._call(f"{_AKS} agentPools update of {pool.name}", None, rescale)
        else:
            raise SourceError(f"cannot scale {pool.name}: unknown pool kind {pool.kind!r}")

    def close(self) -> None:
        self._fanout.shutdown(wait=False, cancel_futures=True)
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.close()
        self._credential.close()


# --- the pools AKS owns -------------------------------------------------------------------------------------


class _NodeGroups:
    """The AKS clusters of a subscription by their node resource groups, to say which VMs and scale sets
    are a cluster's nodes: AKS puts them in the cluster's node resource group (``MC_…``) and tags the scale
    set (or VM) with its agent pool's name (``aks-managed-poolName``)."""

    def __init__(self, clusters: Iterable[Any]) -> None:
        self._by_group: dict[str, str] = {}
        for c in clusters:
            group, name = getattr(c, "node_resource_group", None), getattr(c, "name", None)
            if group and name:
                self._by_group[str(group).lower()] = str(name)

    def owns(self, rid: str, tags: Mapping[str, str]) -> bool:
        """Whether the scale set ``rid`` backs an AKS agent pool."""
        return _POOL_TAG in tags or _resource_group(rid).lower() in self._by_group

    def place(self, rid: str, tags: Mapping[str, str], scale_set: str) -> tuple[str, str]:
        """(pool, cluster) of a VM: ``<cluster>/<agent pool>`` for an AKS node, else its scale set's name
        (or "") and the cluster its tags name (or "")."""
        cluster = self._by_group.get(_resource_group(rid).lower(), "") or tags.get(_CLUSTER_TAG, "")
        agent_pool = tags.get(_POOL_TAG, "")
        if cluster and agent_pool:
            return f"{cluster}/{agent_pool}", cluster
        return scale_set, cluster


# --- the calls ----------------------------------------------------------------------------------------------


def _all_vms(c: Any) -> Any:
    return c.virtual_machines.list_all()


def _vm_statuses(c: Any) -> Any:
    """The same list with each VM's instance view, which the plain list lacks (and which need not carry the
    rest of the model: the two are joined by resource ID)."""
    return c.virtual_machines.list_all(status_only="true")


def _all_scale_sets(c: Any) -> Any:
    return c.virtual_machine_scale_sets.list_all()


def _all_clusters(a: Any) -> Any:
    return a.managed_clusters.list()


def _agent_pools(group: str, cluster: str, a: Any) -> Any:
    return a.agent_pools.list(group, cluster)


def _scale_set_vms(group: str, scale_set: str, c: Any) -> Any:
    """A Uniform scale set's VMs with their instance view (the power state)."""
    return c.virtual_machine_scale_set_vms.list(group, scale_set, expand="instanceView")


def _skus(region: str, c: Any) -> Any:
    return c.resource_skus.list(filter=f"location eq '{region}'")


# --- reading the answers ------------------------------------------------------------------------------------


def _need(value: T | None, field: str) -> T:
    """``value``, or KeyError naming the field when Azure left it out (the object is then skipped)."""
    if value is None:
        raise KeyError(field)
    return value


def _vm_size(v: Any) -> str:
    profile = getattr(v, "hardware_profile", None)
    return str(getattr(profile, "vm_size", "") or "")


def _scale_set_size(s: Any) -> str:
    sku = getattr(s, "sku", None)
    return str(getattr(sku, "name", "") or "")


def _scale_set_lifecycle(s: Any) -> str:
    profile = getattr(s, "virtual_machine_profile", None)
    priority = str(getattr(profile, "priority", "") or "").lower()
    mix = getattr(s, "priority_mix_policy", None)
    if mix is not None and priority in _SPOT and (getattr(mix, "base_regular_priority_count", 0) or 0) > 0:
        return "mixed"  # a base of regular VMs, spot above it
    return "spot" if priority in _SPOT else "on-demand"


_AUTOSCALED = (
    "cannot scale {name}: the cluster autoscaler is on for it ({low}..{high} nodes) and sets its count, as "
    "az aks nodepool scale says; change its bounds instead "
    "(az aks nodepool update --update-cluster-autoscaler --min-count … --max-count …)"
)


def _power_state(view: Any) -> str:
    """An instance view's ``PowerState/<x>`` as ``x`` in lower case; "" when it has none."""
    for status in getattr(view, "statuses", None) or ():
        code = str(status.code or "")
        if code.startswith("PowerState/"):
            return code.removeprefix("PowerState/").lower()
    return ""


def _billed(power: str) -> bool | None:
    """True for a VM stopped from inside (``stopped``, not ``deallocated``), which Azure still bills; None
    (the state says) for the others."""
    return True if power == "stopped" else None


def _zone(location: str, zones: object) -> str:
    """``eastus-1`` for zone 1 of eastus, as AKS writes ``topology.kubernetes.io/zone``; "" for none."""
    first = next(iter(zones), None) if isinstance(zones, list | tuple) else None
    return f"{location}-{first}" if first else ""


def _when(value: object) -> Metric:
    timestamp = getattr(value, "timestamp", None)
    return float(timestamp()) if callable(timestamp) else NA


def _tags(tags: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in tags.items()} if isinstance(tags, Mapping) else {}


def _resource_group(rid: str) -> str:
    return _parse_id(rid).get("resourcegroups", "")


def _last(rid: str) -> str:
    return rid.rstrip("/").rsplit("/", 1)[-1]


def _parse_id(rid: str) -> dict[str, str]:
    """An ARM resource ID's ``/<type>/<name>`` pairs, types in lower case (``resourcegroups``: ``ml``)."""
    parts = [p for p in rid.split("/") if p]
    return {parts[i].lower(): parts[i + 1] for i in range(0, len(parts) - 1, 2)}


def _provider_id(rid: str) -> str:
    """``azure://`` and the resource ID with the resource group in lower case: what cloud-provider-azure
    writes into a node's ``spec.providerID`` ("for historical reasons", its code says), for scale set VMs
    (``…/virtualMachineScaleSets/<vmss>/virtualMachines/<instance>``) and plain VMs alike."""
    match = re.search(r"(/resourceGroups/)([^/]+)(/)", rid, flags=re.IGNORECASE)
    if match is None:
        return f"azure://{rid}"
    return f"azure://{rid[: match.start(2)]}{match.group(2).lower()}{rid[match.end(2) :]}"


def _model_of(size: str) -> str:
    """The accelerator a size's name carries (``Standard_NC40ads_H100_v5`` → ``H100``), else ""."""
    return next((p for p in size.split("_")[1:] if p in _GPU_MODELS), "")


def _region(location: object) -> str:
    return str(location or "").replace(" ", "").lower()


def _retry_after(exc: HttpResponseError) -> float | None:
    """The seconds of the answer's ``Retry-After`` (ARM sends whole seconds), None without one."""
    headers = getattr(exc.response, "headers", None) or {}
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _code(exc: HttpResponseError) -> str:
    return clean(str(exc.error.code or ""), 80) if exc.error is not None else ""


# --- credentials and subscriptions --------------------------------------------------------------------------

_NO_CREDENTIAL = (
    "no Azure credentials found (looked in the environment: AZURE_TENANT_ID, AZURE_CLIENT_ID and "
    "AZURE_CLIENT_SECRET or a certificate; workload identity; managed identity; and the az, Azure PowerShell "
    "and azd logins): run az login, or set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
)


def _refused(exc: ClientAuthenticationError) -> str:
    """What the credential chain's failure says, in a sentence with no secret in it: no credential found
    anywhere, or one that Entra ID refused (a wrong or expired secret, an az login to renew: its AADSTS
    code kept), or one that got no answer (the sign-in endpoint unreachable). Only the failing credential's
    class name and Entra's codes are taken from the chain's message, which quotes what tools such as az
    printed."""
    text = str(exc.message or "")
    tried = re.findall(r"^\s*(\w+Credential): (.*)$", text, flags=re.MULTILINE)
    failed = [name for name, said in tried if not _UNAVAILABLE.search(said)]
    codes = sorted(set(re.findall(r"\bAADSTS\d{4,7}\b", text)))
    if not failed and not codes and tried:
        return _NO_CREDENTIAL
    who = f" ({failed[-1]})" if failed else ""
    fix = "run az login, or check AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET"
    if codes:
        return f"Azure sign-in refused{who}: {', '.join(codes)}: {fix}"
    return f"Azure sign-in failed{who} with no answer from Entra ID (network, or AZURE_AUTHORITY_HOST): {fix}"


_UNAVAILABLE = re.compile(
    r"unavailable|not found|not installed|could not be found|requires the", re.IGNORECASE
)
"""How the chain's message says that a credential had nothing to offer (as opposed to failing)."""


def _expired(code: str) -> str:
    return (
        f"Azure credentials expired or invalid ({clean(code, 60)}): run az login, or renew the secret in "
        "AZURE_CLIENT_SECRET"
    )


_MICROSOFT_LOGIN_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "login.microsoftonline.us",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
    }
)


def _private_authority() -> bool:
    """Whether ``AZURE_AUTHORITY_HOST`` names a sign-in host of the operator's own (a private cloud, Azure
    Stack, a test server) rather than one of Microsoft's: MSAL would otherwise check it through instance
    discovery on login.microsoftonline.com, which such a host is unknown to (or which cannot be reached),
    and azure-identity documents ``disable_instance_discovery`` for exactly that case."""
    host = os.environ.get("AZURE_AUTHORITY_HOST", "").strip()
    if not host:
        return False
    name = host.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return name not in _MICROSOFT_LOGIN_HOSTS


def _az_profile() -> dict[str, Any]:
    """az CLI's ``azureProfile.json`` (``AZURE_CONFIG_DIR``, else ``~/.azure``), {} when there is none or it
    cannot be read. az writes it with a byte-order mark."""
    folder = os.environ.get("AZURE_CONFIG_DIR", "").strip() or str(Path.home() / ".azure")
    try:
        data = json.loads((Path(folder) / "azureProfile.json").read_text(encoding="utf-8-sig"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _default_subscription(profile: Mapping[str, Any]) -> tuple[str, ...]:
    """``AZURE_SUBSCRIPTION_ID``, else az's default subscription, else none; SourceError for an
    ``AZURE_SUBSCRIPTION_ID`` that is no subscription ID."""
    env = os.environ.get("AZURE_SUBSCRIPTION_ID", "").strip()
    if env:
        if not _GUID.match(env):
            raise SourceError(f"AZURE_SUBSCRIPTION_ID is not a subscription ID (a GUID): {clean(env, 60)!r}")
        return (str(uuid.UUID(env)),)
    for s in profile.get("subscriptions") or ():
        if isinstance(s, dict) and s.get("isDefault") and _GUID.match(str(s.get("id", ""))):
            return (str(s["id"]),)
    return ()


def _subscription_names(profile: Mapping[str, Any]) -> dict[str, str]:
    """Subscription ID (lower case) → its name, as az knows them: the header shows names an az user knows."""
    out = {}
    for s in profile.get("subscriptions") or ():
        if isinstance(s, dict) and s.get("id") and s.get("name"):
            out[str(s["id"]).lower()] = str(s["name"])
    return out
