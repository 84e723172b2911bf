"""Clouds as a source: a small provider interface (:class:`CloudProvider`) and one :class:`CloudSource` that
turns any provider into nodes and node pools with prices.

A provider answers, per region, with plain records: its GPU instances (:class:`CloudInstance`), its node
pools (:class:`CloudPool`: an Auto Scaling group, an EKS managed node group …) and spot prices; and it sets
a pool's desired capacity. Its calls block (cloud SDKs do), so the source runs them on a small thread pool,
every region at once, with the provider's own per-call timeouts. What a provider could not read (access
denied on one API, one region unreachable) comes back as a short sentence beside the rest
(:attr:`Listing.problems`); an error that spoils everything (expired credentials, throttling after the
retries) is a :class:`SourceError`, and the poller keeps the last data, marked stale, and backs off. Each
provider is a package beside this module (:mod:`aios_tui.sources.clouds.aws`, ``gcp``, ``azure``) and the
registry (:mod:`aios_tui.sources.clouds`) lists them.

What the source gives: a :class:`Node` per instance, named by the instance id, with ``provider_id`` set as
Kubernetes' ``spec.providerID`` would be, so that the poller merges it into the cluster's own node (listed
first) and one row shows both views; an instance tagged for a cluster that no Kubernetes node matches stays a
row of its own, not ready, with a ``NotInCluster`` condition. Prices: the settings' own figures first; then
for spot instances the spot price the provider quotes, else its catalogue's spot list price; for the others
the provider's bundled catalogue (:class:`~aios_tui.sources.clouds.catalogue.Catalogue`) for the instance's
region; NA when unknown (spot without a price, capacity blocks).

Every string a provider gives is untrusted (tags, group names and types are what tenants write): the source
cleans each record's strings (:func:`aios_tui.domain.text.clean`) before anything else reads them, except a
pool's ``ref``, which is only handed back to the provider to scale it and never shown.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import logging
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

from aios_tui.domain import NA, Condition, Node, NodePool
from aios_tui.domain.errors import redact
from aios_tui.domain.text import clean
from aios_tui.domain.units import Metric, is_na
from aios_tui.sources.base import SourceData, SourceError
from aios_tui.sources.clouds.catalogue import Catalogue

if TYPE_CHECKING:
    from aios_tui.config import CloudPriceSettings

__all__ = [
    "MALFORMED",
    "SCALE_POOL",
    "CloudInstance",
    "CloudPool",
    "CloudProvider",
    "CloudSource",
    "Listing",
    "Problems",
    "SpotPrice",
    "malformed",
    "price_overrides",
    "quiet",
    "remote_message",
]

log = logging.getLogger("aios_tui.sources.cloud")

T = TypeVar("T")
R = TypeVar("R")

SCALE_POOL = "scale-pool"
"""The action name :meth:`CloudSource.permission` answers for."""

_LIVE = frozenset({"pending", "running"})


@dataclass(frozen=True, slots=True)
class CloudInstance:
    """One GPU machine as the cloud sees it."""

    id: str
    provider_id: str
    """As Kubernetes' ``spec.providerID`` names it (``aws:///us-east-1a/i-0abc…``,
    ``gce://project/zone/name``, ``azure:///subscriptions/…/virtualMachines/name``)."""
    instance_type: str
    region: str
    zone: str
    state: str
    """``pending``, ``running``, ``stopping``, ``stopped`` … (terminated ones are left out)."""
    gpu_model: str = ""
    gpus: int = 0
    lifecycle: str = "on-demand"
    """``on-demand``, ``spot`` or ``capacity-block``."""
    launched_at: Metric = NA
    """Unix time."""
    pool: str = ""
    """The :attr:`CloudPool.name` it belongs to, "" for none."""
    cluster: str = ""
    """The Kubernetes cluster it is tagged for, "" for none."""
    billed: bool | None = None
    """Whether the cloud bills it now; None: while pending or running (Azure bills a VM stopped from inside
    the OS, ``PowerState/stopped``, until it is deallocated)."""
    qualified: str = ""
    """Its name qualified by what makes it unique in the cloud (``<resource group>/<name>``,
    ``<project>/<zone>/<name>``), the name shown when two of the listing's machines share ``id``."""
    accelerator: str = ""
    """The accelerator type attached to a machine whose own type the catalogue does not price (an N1
    machine's ``nvidia-tesla-t4``): it is priced as ``gpus`` times the catalogue's figure for that
    accelerator, the machine's own cores and memory left out."""


@dataclass(frozen=True, slots=True)
class CloudPool:
    """A group of machines scaled together."""

    name: str
    """Unique across the provider's scopes (an ASG name, ``<cluster>/<nodegroup>``)."""
    kind: str
    """``asg``, ``eks-nodegroup``, ``mig``, ``gke-nodepool``, ``vmss``, ``aks-agentpool`` …"""
    region: str
    instance_types: tuple[str, ...]
    min_size: int
    max_size: int
    desired: int
    gpu_model: str = ""
    gpus_per_node: int = 0
    """The fewest GPUs a machine it launches has (``gpus_per_node_max`` the most, where its types differ)."""
    gpus_per_node_max: int = 0
    zones: tuple[str, ...] = ()
    lifecycle: str = ""
    """``on-demand``, ``spot``, ``capacity-block``, ``mixed`` (some of each) or "" (unknown)."""
    cluster: str = ""
    ref: str = ""
    """What the provider needs to find it again (an ARN, the backend's own name)."""
    suspended: tuple[str, ...] = ()
    """Scaling processes suspended on it (an Auto Scaling group's ``Launch``, ``Terminate`` …)."""
    terminate_hooks: tuple[str, ...] = ()
    """Lifecycle hooks that hold a terminating instance (``name (heartbeat 3600 s)``)."""
    capacity_weights: tuple[str, ...] = ()
    """``type=units`` per instance type when its desired count is in capacity units, not machines (an Auto
    Scaling group's ``WeightedCapacity``); () when it counts machines."""
    autoscaler: str = ""
    """What resizes it on its own between ``min_size`` and ``max_size`` (``the GKE cluster autoscaler``), ""
    for none known: a count set by hand may be moved again."""
    accelerator: str = ""
    """As :attr:`CloudInstance.accelerator`, for each machine it launches (``gpus_per_node`` of them)."""
    by_hand: str = ""
    """Why its size cannot be set by hand ("" when it can): an AKS agent pool under the cluster autoscaler.
    A plan to scale it is refused with this, before any confirmation."""
    count_step: int = 1
    """Its desired count is a multiple of this: a GKE node pool's count is set per zone, one per zone."""


@dataclass(frozen=True, slots=True)
class SpotPrice:
    instance_type: str
    zone: str
    price: float
    """USD per hour, now."""


@dataclass(frozen=True, slots=True)
class Listing(Generic[T]):
    """What one call found, and the parts it could not read (short sentences, no secrets)."""

    items: tuple[T, ...] = ()
    problems: tuple[str, ...] = ()


class CloudProvider(Protocol):
    """One cloud identity (a profile, a credential chain) over some scopes: the parts it lists side by side
    (AWS regions, Google Cloud projects, Azure subscriptions). Every method blocks; raise
    :class:`SourceError` for what spoils the whole fetch (credentials, throttling), with no secret in it."""

    kind: str
    """``aws``, ``gcp``, ``azure``."""
    scopes: tuple[str, ...]
    """What :meth:`instances` and :meth:`pools` are called for, each on a thread of its own."""
    context: str
    """What it is connected to, for the header (profile and regions; never a key)."""
    machine: str
    """What the cloud calls a machine, for messages (``EC2 instance``, ``Compute Engine instance``)."""
    unpooled: str
    """The pool name of a machine in no pool (``ec2``, ``gce``, ``azure-vm``)."""
    catalogue: Catalogue
    """Its machine types and list prices."""

    def instances(self, scope: str) -> Listing[CloudInstance]: ...

    def pools(self, scope: str) -> Listing[CloudPool]: ...

    def spot_prices(self, region: str, instance_types: Collection[str]) -> Listing[SpotPrice]:
        """The current spot price of these types in ``region``, per zone; an empty listing where the cloud
        quotes none through its API (the catalogue's spot list price is used then)."""
        ...

    def scale_pool(self, pool: CloudPool, desired: int) -> None: ...

    def close(self) -> None: ...

    # Optional: ``begin() -> None``, called once before each fetch's per-scope calls, for what they share
    # (credentials); it raises SourceError to fail the fetch at once.


class CloudSource:
    """Any :class:`CloudProvider` as a source: nodes, node pools and prices; scales pools
    (:class:`~aios_tui.sources.base.PoolScaler`) unless read-only."""

    def __init__(
        self,
        provider: CloudProvider,
        *,
        name: str,
        interval: float = 60.0,
        timeout: float = 10.0,
        read_only: bool = False,
        read_only_why: str = "read_only in the settings",
        prices: Mapping[tuple[str, str], float] | None = None,
        spot_prices: bool = True,
    ) -> None:
        self.name = name
        self.kind = provider.kind
        self.interval = interval
        # Per scope the listing is a handful of calls in a row (pages, node groups), each allowed ``timeout``
        # by the provider; scopes run side by side.
        self.timeout = timeout * 8
        self.read_only = read_only
        self._read_only_why = read_only_why
        self._provider = provider
        self._prices = dict(prices or {})
        self._want_spot = spot_prices
        self._pool = concurrent.futures.ThreadPoolExecutor(
            min(16, max(2, 2 * len(provider.scopes))), thread_name_prefix=f"cloud:{name}"
        )
        self._pools: dict[str, CloudPool] = {}
        self._closed = False

    # --- Source ------------------------------------------------------------------------------------------

    async def fetch(self) -> SourceData:
        if self._closed:
            raise SourceError("source closed")
        p = self._provider
        begin = getattr(p, "begin", None)
        if begin is not None:  # what every scope shares, once (credentials; it may settle the scopes)
            await self._run(begin)
        scopes = p.scopes
        inst_lists, pool_lists = await asyncio.gather(
            asyncio.gather(*(self._run(p.instances, s) for s in scopes)),
            asyncio.gather(*(self._run(p.pools, s) for s in scopes)),
        )
        instances = [_cleaned(i) for li in inst_lists for i in li.items]
        pools = [_cleaned(q) for li in pool_lists for q in li.items]
        problems = [clean(s) for li in inst_lists for s in li.problems]
        problems += [clean(s) for li in pool_lists for s in li.problems]
        if problems and not instances and not pools:
            raise SourceError("; ".join(dict.fromkeys(problems)))
        spot: dict[tuple[str, str], float] = {}
        if self._want_spot:
            wanted: dict[str, set[str]] = defaultdict(set)
            for i in instances:
                if i.lifecycle == "spot":
                    wanted[i.region].add(i.instance_type)
            for q in pools:
                if q.lifecycle in ("spot", "mixed"):
                    wanted[q.region].update(q.instance_types)
            answers = await asyncio.gather(
                *(self._run(p.spot_prices, r, sorted(types)) for r, types in sorted(wanted.items()))
            )
            for li in answers:
                problems.extend(clean(s) for s in li.problems)
                for sp in li.items:
                    spot[(clean(sp.instance_type), clean(sp.zone))] = sp.price
        # Two machines of one id (VMs of one name in two resource groups): each shown by its qualified name,
        # and where even that is shared (two subscriptions alike), by its provider ID, unique by definition.
        ids = Counter(i.id for i in instances)
        names = [i.qualified if ids[i.id] > 1 and i.qualified else i.id for i in instances]
        shared = Counter(names)
        names = [
            i.provider_id if shared[n] > 1 and i.provider_id else n
            for i, n in zip(instances, names, strict=True)
        ]
        nodes = tuple(self._node(i, spot, name) for i, name in zip(instances, names, strict=True))
        self._pools = {q.name: q for q in pools}
        return SourceData(
            nodes=nodes,
            pools=tuple(self._node_pool(q, nodes, spot) for q in pools),
            context=p.context,
            problems=tuple(dict.fromkeys(problems)),
        )

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.to_thread(self._provider.close)

    async def _run(self, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    # --- actions -----------------------------------------------------------------------------------------

    def permission(self, action: str, target: str | None = None) -> str | None:
        """None when ``action`` (``scale-pool``) on the pool ``target`` looks allowed, else why not."""
        if action != SCALE_POOL:
            return None
        if self.read_only:
            return f"{self.name} is read-only ({self._read_only_why})"
        if target is not None and self._pools and target not in self._pools:
            return f"{self.name} has no node pool {target}"
        pool = self._pools.get(target or "")
        return (pool.by_hand or None) if pool is not None else None

    async def scale_pool(self, name: str, desired: int) -> None:
        """Set the pool's desired capacity (between its min and max); raises :class:`SourceError`."""
        why = self.permission(SCALE_POOL, name)
        if why:
            raise SourceError(why)
        pool = self._pools.get(name)
        if pool is None:
            raise SourceError(f"{self.name} has no node pool {name} (not listed yet)")
        blocked = self.scale_blockers(name, desired)
        if blocked:
            raise SourceError(blocked[0])
        if not pool.min_size <= desired <= pool.max_size:
            raise SourceError(
                f"{name}: desired {desired} is outside its size limits {pool.min_size}..{pool.max_size}"
            )
        log.info("%s: setting desired capacity of %s to %d", self.name, name, desired)
        await self._run(self._provider.scale_pool, pool, desired)

    def scale_blockers(self, name: str, desired: int) -> tuple[str, ...]:
        """Why pool ``name`` cannot take ``desired`` at all, as the last listing read it: a count that is not
        a multiple of its step (a GKE node pool over 3 zones takes 3, 6, 9 …)."""
        pool = self._pools.get(name)
        step = pool.count_step if pool is not None else 1
        if step <= 1 or desired % step == 0:
            return ()
        below, above = desired - desired % step, desired - desired % step + step
        return (
            f"{name} runs in {step} zones and its nodes are counted per zone: the desired count must be a "
            f"multiple of {step} ({below} or {above}, not {desired})",
        )

    def scale_notes(self, name: str, current: int, desired: int) -> tuple[str, ...]:
        """Why setting pool ``name`` from ``current`` to ``desired`` would not take effect as asked, as the
        last listing read it: weighted units, an autoscaler that resizes it, a suspended ``Launch`` (growing)
        or ``Terminate`` (shrinking) process, a terminate lifecycle hook (shrinking)."""
        pool = self._pools.get(name)
        if pool is None or desired == current:
            return ()
        out = []
        if pool.capacity_weights:
            out.append(
                f"{name} counts its desired capacity in weighted units ({', '.join(pool.capacity_weights)}), "
                f"not machines: {desired} units may be fewer machines, and the cost is per machine."
            )
        if pool.autoscaler:
            out.append(
                f"{name} is resized by {pool.autoscaler} between {pool.min_size} and {pool.max_size}: "
                f"it may move the count set here ({desired}) again."
            )
        if desired > current and "Launch" in pool.suspended:
            out.append(
                f"{name} has its Launch process suspended: the desired count changes but no instance "
                "launches until it is resumed (aws autoscaling resume-processes)."
            )
        if desired < current and "Terminate" in pool.suspended:
            out.append(
                f"{name} has its Terminate process suspended: the desired count changes but no instance "
                "is terminated until it is resumed; the group stays above it, and billed."
            )
        if desired < current and pool.terminate_hooks:
            out.append(
                f"{name} has a terminate lifecycle hook ({', '.join(pool.terminate_hooks)}): the instances "
                "going wait in Terminating:Wait, still billed, until it is completed or times out."
            )
        return tuple(out)

    # --- conversion --------------------------------------------------------------------------------------

    def _price(
        self,
        instance_type: str,
        region: str,
        zone: str,
        lifecycle: str,
        spot: Mapping[tuple[str, str], float],
        accelerator: str = "",
        gpus: int = 0,
    ) -> Metric:
        own = self._prices
        for key in ((instance_type, region), (instance_type, "")):
            if key in own:
                return own[key]
        catalogue = self._provider.catalogue
        if accelerator and gpus > 0 and catalogue.get(instance_type) is None:
            per_gpu = self._price(accelerator, region, zone, lifecycle, spot)
            return NA if is_na(per_gpu) else float(per_gpu) * gpus
        if lifecycle == "spot":
            return spot.get((instance_type, zone), catalogue.price(instance_type, region, spot=True))
        if lifecycle == "capacity-block":
            return NA
        return catalogue.price(instance_type, region)

    def _node(self, i: CloudInstance, spot: Mapping[tuple[str, str], float], name: str) -> Node:
        known = self._provider.catalogue.get(i.instance_type)
        model = i.gpu_model or (known.gpu_model if known else "")
        gpus = i.gpus or (known.gpus if known else 0)
        running = i.state == "running"
        conditions: tuple[Condition, ...] = ()
        ready = running
        if i.cluster:
            # The cluster's own node, matched on provider_id, replaces this one when it joined.
            ready = False
            if running:
                why = f"{self._provider.machine} running, not a node of cluster {i.cluster}"
                conditions = (Condition("Ready", "False", "NotInCluster", why),)
        return Node(
            name=name,
            source=self.name,
            pool=i.pool or self._provider.unpooled,
            zone=i.zone,
            instance_type=i.instance_type,
            gpu_model=model,
            gpus_total=gpus,
            gpus_allocatable=gpus if running else 0,
            ready=ready,
            conditions=conditions,
            provider_id=i.provider_id,
            # A stopped machine is not billed (its disks are, not counted here), unless the cloud says so.
            price_per_hour=self._price(
                i.instance_type, i.region, i.zone, i.lifecycle, spot, i.accelerator, gpus
            )
            if (i.state in _LIVE if i.billed is None else i.billed)
            else 0.0,
            lifecycle=i.lifecycle,
            launched_at=i.launched_at,
            instance_state=i.state,
        )

    def _node_pool(
        self, q: CloudPool, nodes: tuple[Node, ...], spot: Mapping[tuple[str, str], float]
    ) -> NodePool:
        members = [n for n in nodes if n.pool == q.name and n.instance_state in _LIVE]
        first = q.instance_types[0] if q.instance_types else ""
        known = self._provider.catalogue.get(first)
        lifecycles = {n.lifecycle for n in members}
        lifecycle = q.lifecycle or (lifecycles.pop() if len(lifecycles) == 1 else "")
        prices = [n.price_per_hour for n in members if not is_na(n.price_per_hour)]
        price: Metric
        if prices:
            price = sum(prices) / len(prices)
        elif lifecycle == "spot":
            quotes = [v for (t, _), v in spot.items() if t == first]
            per_node = q.accelerator, q.gpus_per_node
            price = min(quotes) if quotes else self._price(first, q.region, "", "spot", spot, *per_node)
        else:
            price = self._price(
                first, q.region, "", lifecycle or "on-demand", spot, q.accelerator, q.gpus_per_node
            )
        zones = q.zones or tuple(sorted({n.zone for n in members if n.zone}))
        return NodePool(
            name=q.name,
            source=self.name,
            instance_type=first,
            gpu_model=q.gpu_model or (known.gpu_model if known else ""),
            gpus_per_node=q.gpus_per_node or (known.gpus if known else 0),
            gpus_per_node_max=q.gpus_per_node_max,
            price_per_hour=price if not (isinstance(price, float) and math.isnan(price)) else NA,
            nodes=len(members),
            min_size=q.min_size,
            max_size=q.max_size,
            zones=zones,
            desired=q.desired,
            instance_types=q.instance_types,
            kind=q.kind,
            region=q.region,
            lifecycle=lifecycle,
            capacity_weights=q.capacity_weights,
        )


def _cleaned(record: T) -> T:
    """``record`` (a provider's dataclass) with every string and tuple of strings cleaned, but ``ref``."""
    changes: dict[str, object] = {}
    for f in dataclasses.fields(record):  # type: ignore[arg-type]
        value = getattr(record, f.name)
        if f.name == "ref":
            continue
        if isinstance(value, str):
            changes[f.name] = clean(value)
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            changes[f.name] = tuple(clean(v) for v in value)
    return dataclasses.replace(record, **changes)  # type: ignore[type-var]


def price_overrides(rules: Iterable[CloudPriceSettings]) -> dict[tuple[str, str], float]:
    """A cloud section's ``[[<cloud>.prices]]`` as :class:`CloudSource` takes them: ``(type, region)`` to USD
    per hour, region "" for every region (the last rule for a key wins, as in the file)."""
    return {(p.instance_type, p.region): p.price for p in rules}


MALFORMED = (KeyError, TypeError, ValueError, AttributeError, IndexError, OverflowError)
"""What reading an object of an unexpected shape raises: the object is skipped, not the listing."""


class Problems:
    """A provider's problem sentences for one listing (each logged at INFO once: built by the provider, with
    no secret in them), and the objects it skipped, counted per kind with the first one's reason."""

    def __init__(self, log: logging.Logger, who: str) -> None:
        self._log = log
        self._who = who
        self._sentences: list[str] = []
        self._skipped: dict[str, list[Any]] = {}

    def add(self, sentence: str) -> None:
        if sentence in self._sentences:
            return
        self._log.info("%s: %s", self._who, sentence)
        self._sentences.append(sentence)

    def skip(self, what: str, exc: Exception) -> None:
        """One ``what`` (an instance, a node pool …) left out: the answer had it in a shape the provider
        cannot read. Counted, with the first one's reason, so that one bad object hides nothing else."""
        entry = self._skipped.setdefault(what, [0, malformed(exc)])
        entry[0] += 1
        if entry[0] == 1:
            self._log.info("%s: %s skipped: %s", self._who, what, entry[1])

    @property
    def items(self) -> tuple[str, ...]:
        skipped = [
            f"{n} {what}{'s' if n > 1 else ''} skipped: {why}" for what, (n, why) in self._skipped.items()
        ]
        return tuple(self._sentences + skipped)


def malformed(exc: Exception) -> str:
    """Why an object was skipped, in words: what its answer lacks, or that a value had the wrong shape."""
    if isinstance(exc, KeyError):
        return f"the answer lacks {clean(exc.args[0] if exc.args else '', 60)}"
    return f"the answer has a value of the wrong type or form ({type(exc).__name__})"


def remote_message(message: object) -> str:
    """A cloud's own error message, fit to show: one line, anything like a credential masked
    (:func:`~aios_tui.domain.errors.redact`), escapes gone, cut at 240 characters; "" for none."""
    if not isinstance(message, str):
        return ""
    return clean(redact(" ".join(message.split())), 240).strip()


def quiet(*loggers: str) -> None:
    """Hold an SDK's loggers at WARNING (at INFO or DEBUG they log request headers, signed or bearing tokens),
    unless they were set higher already."""
    for name in loggers:
        logger = logging.getLogger(name)
        if logger.level < logging.WARNING:
            logger.setLevel(logging.WARNING)
