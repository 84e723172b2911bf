"""What a node needs, as NVIDIA's guidance would have an operator decide: healthy, watch, drain, reset,
reboot or RMA, with the reasons in words and the jobs and endpoints it would hit.

A GPU's problems each ask for something (:class:`Finding`): an XID asks for its catalog action
(:mod:`aios_tui.domain.xid`: restart the app → watch, reset GPU → reset, reboot node → reboot); uncorrectable
ECC errors and a pending row remap for a reset (both clear at the next one); a failed row remap for a
replacement; NVLink errors for a watch, or a drain past :data:`NVLINK_DRAIN_AT`; thermal or power-brake
throttling and a GPU running hot for a watch; a GPU its source stopped reporting for a watch. Where NVML or
DCGM report the driver's own recovery action (``GPU_RECOVERY_ACTION``: none, reset, reboot, drain P2P,
drain and reset) it wins over the XID and ECC readings: the driver knows whether the error was already
handled. The node's verdict is the worst of its GPUs' needs and its own (NotReady → drain).

Computed once per snapshot (:attr:`FleetSnapshot.verdicts`) from the GPUs with a problem that the
snapshot's one pass over the fleet found, plus one pass for GPUs no longer reported: 2.2 ms at 5,000 nodes
and 37,588 GPUs, 0.8 ms of it that pass (docs/benchmarks.md).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence, Set
from dataclasses import dataclass
from types import MappingProxyType

from aios_tui.domain.model import FleetSnapshot, Gpu, Node, Pod
from aios_tui.domain.units import fmt_age
from aios_tui.domain.xid import XidAction, xid_info

__all__ = [
    "NOT_REPORTED",
    "NVLINK_DRAIN_AT",
    "Finding",
    "Need",
    "Verdict",
    "gpu_findings",
    "gpu_need",
    "node_findings",
    "to_cordon",
    "verdict_for",
    "verdicts",
]

NVLINK_DRAIN_AT = 100
"""Recent NVLink errors from which a GPU's work is moved off (below it: watch). Our threshold, not NVIDIA's
(its catalog acts on XID 74, the link failing, not on counts): the link retries what a CRC error corrupts,
so a few errors cost little, while a steady stream means a link to be looked at with its traffic elsewhere."""


class Need(enum.IntEnum):
    """What a node needs, ordered by severity (and cost): ``max()`` gives the verdict."""

    HEALTHY = 0
    WATCH = 1
    """Something to look at; no work needs moving."""
    DRAIN = 2
    """Move the work off (cordon, then drain); the hardware may come back by itself."""
    RESET = 3
    """Drain, then reset the GPU (``nvidia-smi -r``) or reboot the node where a reset is not possible."""
    REBOOT = 4
    """Drain, then reboot the node."""
    RMA = 5
    """Drain, then replace the GPU (return it to the vendor)."""

    @property
    def word(self) -> str:
        """The verdict in one word, as the health view's VERDICT column shows it (it reads without colour)."""
        return ("healthy", "watch", "drain", "reset", "reboot", "RMA")[self]

    @property
    def remedy(self) -> str:
        """What to do, in a few words."""
        return (
            "nothing",
            "keep an eye on it",
            "cordon and drain",
            "drain, reset GPU",
            "drain, reboot node",
            "drain, replace GPU (RMA)",
        )[self]


NOT_REPORTED = "not reported"
"""The finding for a GPU or node its source stopped reporting."""
_FOR_ACTION = {
    XidAction.NONE: Need.WATCH,
    XidAction.RESTART_APP: Need.WATCH,
    XidAction.RESET_GPU: Need.RESET,
    XidAction.REBOOT_NODE: Need.REBOOT,
    XidAction.CONTACT_SUPPORT: Need.RMA,
}
_FOR_RECOVERY = {
    "none": Need.HEALTHY,
    "reset": Need.RESET,
    "reboot": Need.REBOOT,
    "drain_p2p": Need.DRAIN,
    "drain_and_reset": Need.RESET,
}
"""NVML's ``nvmlGpuRecoveryAction_t`` (and DCGM's GPU_RECOVERY_ACTION) as the sources spell it."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem and what it asks for."""

    need: Need
    what: str
    """The problem: ``XID 79 fallen off the bus``, ``row remap pending``, ``NotReady``."""
    action: str
    """What to do about it: ``reboot node``, ``reset GPU``."""
    gpu: int = -1
    """The GPU's index; -1 for the node itself."""
    at: float = 0.0
    """When it was seen (unix time), where the source says; 0 when unknown."""

    def describe(self, now: float) -> str:
        """``gpu3 XID 79 fallen off the bus, 12m ago → reboot node``."""
        where = f"gpu{self.gpu} " if self.gpu >= 0 else ""
        when = f", {fmt_age(max(0.0, now - self.at))} ago" if self.at > 0 else ""
        then = f" → {self.action}" if self.action else ""
        return f"{where}{self.what}{when}{then}"


@dataclass(frozen=True, slots=True)
class Verdict:
    """A node's verdict: what it needs, why, and what acting on it hits."""

    node: str
    need: Need
    findings: tuple[Finding, ...]
    """Worst first, then by GPU."""
    jobs: tuple[str, ...] = ()
    """Keys of the jobs with a pod on the node (draining it stops or restarts them)."""
    endpoints: tuple[str, ...] = ()
    """Keys of the endpoints with a replica on the node."""
    pods: tuple[str, ...] = ()
    """Other pods on the node (or holding its GPUs) that belong to no known job or endpoint."""
    cordoned: bool = False
    cordoned_by: str = ""

    @property
    def key(self) -> str:
        return self.node

    @property
    def word(self) -> str:
        return self.need.word

    @property
    def gpus(self) -> tuple[int, ...]:
        """Indices of the GPUs with a problem."""
        return tuple(sorted({f.gpu for f in self.findings if f.gpu >= 0}))

    @property
    def hits(self) -> tuple[str, ...]:
        """``job ml/llama``, ``endpoint serve/chat``, ``pod ml/debug``: what draining the node touches."""
        return (
            tuple(f"job {k}" for k in self.jobs)
            + tuple(f"endpoint {k}" for k in self.endpoints)
            + tuple(f"pod {k}" for k in self.pods)
        )

    def why(self, now: float) -> str:
        """Every finding, worst first, and the verdict's remedy: ``gpu3 XID 79 …, 12m ago → reboot node``."""
        return "; ".join(f.describe(now) for f in self.findings)


def gpu_findings(g: Gpu) -> tuple[Finding, ...]:
    """What ``g``'s readings ask for, one finding per problem (empty for a healthy GPU)."""
    out: list[Finding] = []
    recovery = _FOR_RECOVERY.get(g.recovery_action) if g.recovery_action else None
    if g.xid:
        info = xid_info(g.xid)
        what = f"XID {g.xid} {info.meaning}"
        if recovery is None:
            out.append(Finding(_FOR_ACTION[info.action], what, info.action.words, g.index, g.xid_at))
        else:  # the driver's recovery action says whether it still needs anything
            out.append(Finding(Need.WATCH, what, "", g.index, g.xid_at))
    if g.ecc_uncorrected:
        need, action = (Need.RESET, "reset GPU") if recovery is None else (Need.WATCH, "")
        out.append(Finding(need, f"{g.ecc_uncorrected:,} uncorrectable ECC errors", action, g.index))
    if g.remap_failed:
        out.append(Finding(Need.RMA, "row remap failed", "replace GPU (RMA)", g.index))
    elif g.remap_pending:
        out.append(Finding(Need.RESET, "row remap pending", "reset GPU", g.index))
    if recovery is not None and recovery > max((f.need for f in out), default=Need.HEALTHY):
        words = g.recovery_action.replace("_", " ")
        out.append(Finding(recovery, f"recovery action {words}", recovery.remedy, g.index))
    if g.nvlink_errors:
        many = g.nvlink_errors >= NVLINK_DRAIN_AT
        out.append(
            Finding(
                Need.DRAIN if many else Need.WATCH,
                f"{g.nvlink_errors:,} NVLink errors",
                "drain; check the link (nvidia-smi nvlink -e)" if many else "",
                g.index,
            )
        )
    if g.throttle.is_problem:
        out.append(Finding(Need.WATCH, f"throttling ({g.throttle.problem.describe()})", "", g.index))
    elif g.temp >= 87:
        out.append(Finding(Need.WATCH, f"hot ({float(g.temp):.0f}°C)", "", g.index))
    if g.lost_since:
        out.append(Finding(Need.WATCH, NOT_REPORTED, "", g.index, g.lost_since))
    return tuple(out)


def gpu_need(g: Gpu) -> Need:
    """The worst of :func:`gpu_findings` (HEALTHY when there are none)."""
    return max((f.need for f in gpu_findings(g)), default=Need.HEALTHY)


def node_findings(n: Node) -> tuple[Finding, ...]:
    """What the node itself asks for: NotReady → drain; pressure conditions and a lost report → watch."""
    out: list[Finding] = []
    if n.lost_since:
        out.append(Finding(Need.WATCH, NOT_REPORTED, "", at=n.lost_since))
    elif not n.ready:
        out.append(Finding(Need.DRAIN, "NotReady", "drain; find out why (kubelet, network, power)"))
    out.extend(
        Finding(Need.WATCH, c.type, "")
        for c in n.conditions
        if c.status == "True" and c.type.endswith("Pressure")
    )
    return tuple(out)


def _order(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    return tuple(sorted(findings, key=lambda f: (-f.need, f.gpu)))


def verdict_for(
    snapshot: FleetSnapshot,
    node: str,
    gpus: Iterable[Gpu] | None = None,
    on_node: tuple[Sequence[Pod], Sequence[Gpu]] | None = None,
) -> Verdict:
    """The verdict for one node (HEALTHY with no findings when nothing is wrong). ``gpus`` limits the GPUs
    read to the ones already known to have a problem; by default all of the node's. ``on_node``: its pods
    and all its GPUs, when the caller gathered them (:func:`_on_nodes`)."""
    n = snapshot.node_by_name.get(node)
    found: list[Finding] = list(node_findings(n)) if n is not None else []
    node_lost = n is not None and n.lost_since > 0
    for g in snapshot.gpus_by_node.get(node, ()) if gpus is None else gpus:
        # A lost node's GPUs are lost with it: one "not reported" says it.
        found.extend(f for f in gpu_findings(g) if not (node_lost and f.what == NOT_REPORTED))
    findings = _order(found)
    need = max((f.need for f in findings), default=Need.HEALTHY)
    if need and on_node is None:
        on_node = _on_nodes(snapshot, {node})[node]
    jobs, endpoints, pods = _hits(snapshot, *on_node) if need and on_node is not None else ((), (), ())
    return Verdict(
        node=node,
        need=need,
        findings=findings,
        jobs=jobs,
        endpoints=endpoints,
        pods=pods,
        cordoned=n.cordoned if n is not None else False,
        cordoned_by=n.cordoned_by if n is not None else "",
    )


def _on_nodes(snapshot: FleetSnapshot, names: Set[str]) -> dict[str, tuple[Sequence[Pod], Sequence[Gpu]]]:
    """The pods and GPUs of a few nodes (:meth:`FleetSnapshot.pods_on`; the GPUs' index is cheap, 3 ms in
    grouped runs, and the Nodes pane builds it anyway)."""
    pods = snapshot.pods_on(names)
    gpus = snapshot.gpus_by_node
    return {n: (pods[n], gpus.get(n, ())) for n in names}


def _hits(
    snapshot: FleetSnapshot, pods: Sequence[Pod], gpus: Sequence[Gpu]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    jobs, endpoints, others = set(), set(), set()
    owner_of: dict[str, str] = {}
    for p in pods:
        owner_of[p.key] = p.owner
        if p.owner in snapshot.job_by_key:
            jobs.add(p.owner)
        elif p.owner in snapshot.endpoint_by_key:
            endpoints.add(p.owner)
    # The pods holding its GPUs that belong to neither: a bare pod, or, where only telemetry knows the node,
    # every pod its GPUs name. Daemons and CPU pods are left out: they are not what an on-call engineer
    # weighs before a drain.
    for g in gpus:
        owner = owner_of.get(g.pod, "")
        if g.pod and owner not in snapshot.job_by_key and owner not in snapshot.endpoint_by_key:
            others.add(g.pod)
    return tuple(sorted(jobs)), tuple(sorted(endpoints)), tuple(sorted(others))


def verdicts(snapshot: FleetSnapshot) -> Mapping[str, Verdict]:
    """Node → verdict for every node that is not healthy, worst first (then by name)."""
    by_node: dict[str, list[Gpu]] = {}
    seen: set[str] = set()
    for g in snapshot.sick_gpus:
        by_node.setdefault(g.node, []).append(g)
        seen.add(g.uuid)
    for g in snapshot.lost_gpus:  # a lost GPU is not "sick": its last readings may be fine
        if g.uuid not in seen:
            by_node.setdefault(g.node, []).append(g)
    names = set(by_node)
    for n in snapshot.nodes:  # a loop, not a generator: 5,000 nodes at every snapshot
        if n.lost_since or not n.ready or _pressure(n):
            names.add(n.name)
    if not names:
        return _NONE
    on_nodes = _on_nodes(snapshot, names)
    out = [verdict_for(snapshot, name, by_node.get(name, ()), on_nodes[name]) for name in names]
    out.sort(key=lambda v: (-v.need, v.node))
    return MappingProxyType({v.node: v for v in out if v.need})


def to_cordon(snapshot: FleetSnapshot) -> tuple[Verdict, ...]:
    """The verdicts that call for a cordon: a GPU with a problem on a node not cordoned yet, worst first.
    Nodes whose only trouble is their own (NotReady) or that are not reported are left out: Kubernetes
    taints a NotReady node itself, and a cordon does not reach a host that is gone."""
    return tuple(
        v
        for v in snapshot.verdicts.values()
        if not v.cordoned and any(f.gpu >= 0 and f.what != NOT_REPORTED for f in v.findings)
    )


def _pressure(n: Node) -> bool:
    for c in n.conditions:  # noqa: SIM110 - any() over a generator: twice the time, 5,000 nodes a snapshot
        if c.status == "True" and c.type.endswith("Pressure"):
            return True
    return False


_NONE: Mapping[str, Verdict] = MappingProxyType({})
