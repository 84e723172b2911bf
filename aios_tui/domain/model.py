"""The fleet as plain, immutable data.

Every source turns what its backend says into these objects, keyed by stable ids; nothing above
``sources/`` ever sees an SDK object. All classes are frozen: a snapshot can be shared between the event
loop, worker threads and the allocation logic without copying or locking.
"""

from __future__ import annotations

import enum
import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from operator import attrgetter
from types import MappingProxyType
from typing import TYPE_CHECKING

from aios_tui.domain.blocks import blocks
from aios_tui.domain.units import NA, Metric, fmt_money, is_na
from aios_tui.domain.xid import XID_TABLE, XidAction

if TYPE_CHECKING:
    from aios_tui.domain.health import Verdict

_EMPTY: Mapping[str, str] = MappingProxyType({})

_GPU_MODEL = re.compile(
    r"(?<![A-Z0-9])(GB200|GH200|B200|B100|H200|H100|H800|H20|A100|A800|A10G|A10|A30|A40|L40S|L40|L4|T4|V100)"
    r"(?![A-Z0-9])"
)


#: Accelerators a source reports beside GPUs that a pod does not ask for by GPU count: AWS's Neuron devices
#: (Trainium, Inferentia), and a GPU that is a fraction of one (a g6f's ``L4 (1/8 GPU)``).
_NOT_WHOLE_GPU = re.compile(r"^(Trainium|Inferentia)|\(\d+/\d+ GPU\)$")


def is_gpu_model(model: str) -> bool:
    """Whether devices of ``model`` are whole GPUs that placement, free capacity and the header count: any
    model, or none named (a GPU node without a model label), but a Neuron device or a fraction of a GPU (they
    are shown, never offered to a request for GPUs)."""
    return not _NOT_WHOLE_GPU.search(model)


def short_gpu_model(product: str) -> str:
    """The short name that columns and placement use: ``NVIDIA H100 80GB HBM3`` (NVML, nvidia-smi) and
    ``NVIDIA-H100-80GB-HBM3`` (the GPU operator's node label) → ``H100``; ``NVIDIA-L4`` → ``L4``;
    otherwise the product minus its vendor."""
    if not product:
        return ""
    upper = product.upper().replace("_", "-")
    m = _GPU_MODEL.search(upper)
    if m:
        return m[1]
    rest = re.sub(r"^(NVIDIA|TESLA)[- ]+", "", upper)
    rest = re.sub(r"^TESLA[- ]+", "", rest)
    return re.split(r"[- ]", rest, maxsplit=1)[0]


class Health(enum.IntEnum):
    """Health of a GPU or node, ordered so that ``max()`` gives the worst."""

    OK = 0
    WARN = 1
    FAIL = 2

    @property
    def label(self) -> str:
        return ("ok", "warn", "FAIL")[self]


class Throttle(enum.IntFlag):
    """NVML clock-event reasons (``nvmlClocksEventReason*``); DCGM and nvidia-smi report the same bits."""

    NONE = 0
    GPU_IDLE = 0x1
    APP_CLOCKS = 0x2
    SW_POWER_CAP = 0x4
    HW_SLOWDOWN = 0x8
    SYNC_BOOST = 0x10
    SW_THERMAL = 0x20
    HW_THERMAL = 0x40
    HW_POWER_BRAKE = 0x80

    @property
    def is_thermal(self) -> bool:
        # On the plain value: ``&`` between IntFlags builds new flag objects, and this runs per GPU.
        return bool(self._value_ & 0x68)  # SW_THERMAL | HW_THERMAL | HW_SLOWDOWN

    @property
    def is_problem(self) -> bool:
        """Throttling that means the GPU needs a look: thermal (SW or HW), HW slowdown, HW power brake.

        The SW power cap is not one: under load a healthy GPU sits at its power limit and the driver trims
        clocks (a real H200 at 607 W of 700 W reports SW_POWER_CAP with SM at 1,740 MHz).
        """
        return bool(self._value_ & 0xE8)  # is_thermal's bits | HW_POWER_BRAKE

    @property
    def problem(self) -> Throttle:
        """Only the bits of :attr:`is_problem`."""
        return Throttle(self._value_ & 0xE8)

    def describe(self) -> str:
        names = {
            Throttle.SW_POWER_CAP: "power cap",
            Throttle.HW_SLOWDOWN: "HW slowdown",
            Throttle.SW_THERMAL: "SW thermal",
            Throttle.HW_THERMAL: "HW thermal",
            Throttle.HW_POWER_BRAKE: "power brake",
        }
        return ", ".join(text for bit, text in names.items() if self & bit) or "none"


FATAL_XIDS = frozenset(code for code, row in XID_TABLE.items() if row.action >= XidAction.RESET_GPU)
"""XIDs after which the GPU takes no work until it is reset, its node rebooted or the board replaced (NVIDIA's
immediate action, :mod:`aios_tui.domain.xid`): placement keeps off them."""
XID_TEXT: Mapping[int, str] = MappingProxyType({code: row.meaning for code, row in XID_TABLE.items()})
"""What an XID means, in a few words (:data:`aios_tui.domain.xid.XID_TABLE`)."""
_FAIL_RECOVERY = frozenset({"reset", "reboot", "drain_and_reset"})
"""NVML/DCGM recovery actions after which the GPU takes no work until it is done."""


def gpu_slot(node: str, index: int) -> str:
    """GPU ``index`` of ``node`` as ``node/gpuN``. A source that counts GPUs without naming them
    (Kubernetes) uses it as the uuid, so that a source which measures that GPU (DCGM) can take its place."""
    return f"{node}/gpu{index}"


@dataclass(frozen=True, slots=True)
class GpuProcess:
    """A process using a GPU, as nvidia-smi or NVML lists compute apps: what makes a GPU busy where no
    scheduler allocated it (a bare-metal host)."""

    pid: int
    user: str = ""
    used_mib: Metric = NA
    """GPU memory it holds, MiB."""
    command: str = ""
    """Its name or command line, cleaned and cut."""


@dataclass(frozen=True, slots=True)
class Gpu:
    """One GPU and its latest readings. Memory in MiB, power in W, clocks in MHz, temperature in °C."""

    node: str
    index: int
    uuid: str
    model: str
    util: Metric = NA
    mem_used: Metric = NA
    mem_total: Metric = NA
    temp: Metric = NA
    power: Metric = NA
    power_limit: Metric = NA
    sm_clock: Metric = NA
    sm_clock_max: Metric = NA
    xid: int = 0
    """Last XID error code seen (0: none)."""
    ecc_uncorrected: int = 0
    """Volatile uncorrectable ECC errors."""
    ecc_corrected: int = 0
    throttle: Throttle = Throttle.NONE
    pod: str = ""
    """``namespace/name`` of the pod the GPU is allocated to, or "" when free."""
    low_since: Metric = NA
    """Unix time since which utilisation has stayed under ``IDLE_UTIL_PCT``, when the source knows it from
    history (a Prometheus ``max_over_time``, the simulator's own signals); NA otherwise, and then the
    poller tracks it across snapshots (:attr:`FleetSnapshot.gpu_low_since`)."""
    processes: tuple[GpuProcess, ...] = ()
    """Compute processes on it, where the source lists them (nvidia-smi, NVML)."""
    xid_at: float = 0.0
    """When :attr:`xid` was seen (unix time), where the source knows; 0 when it does not."""
    recovery_action: str = ""
    """What NVML/DCGM say the GPU needs to recover (``nvmlDeviceGetFieldValues`` GPU_RECOVERY_ACTION,
    ``DCGM_FI_DEV_GET_GPU_RECOVERY_ACTION``): ``none``, ``reset``, ``reboot``, ``drain_p2p``,
    ``drain_and_reset``; "" where the source does not report it."""
    remap_pending: bool = False
    """A row remap waits for the next GPU reset (``nvmlDeviceGetRemappedRows`` isPending)."""
    remap_failed: bool = False
    """A row remap failed: the GPU should be replaced (``nvmlDeviceGetRemappedRows`` failureOccurred)."""
    nvlink_errors: int = 0
    """Recent NVLink errors (0: none or unknown): CRC, replay and recovery errors since the source started
    watching (NVML), CRC errors over the last hour (DCGM)."""
    lost_since: float = 0.0
    """0 while its source reports it; else the time of its last reading: the source stopped reporting it
    (an exporter gone, a host unreachable). Its last readings are kept, out of means and free capacity."""

    @property
    def key(self) -> str:
        return self.uuid

    @property
    def slot(self) -> str:
        """Its place, ``node/gpuN``: how sources that see the same GPU are matched (:func:`gpu_slot`)."""
        return gpu_slot(self.node, self.index)

    @property
    def measured(self) -> bool:
        """False for a GPU its source only counts (Kubernetes' allocatable GPUs): its uuid is its slot."""
        return self.uuid != gpu_slot(self.node, self.index)

    @property
    def allocated(self) -> bool:
        return bool(self.pod)

    @property
    def in_use(self) -> bool:
        """Allocated to a pod, or running compute processes (a bare-metal host's GPU has no pod)."""
        return bool(self.pod) or bool(self.processes)

    @property
    def lost(self) -> bool:
        return self.lost_since > 0

    @property
    def mem_pct(self) -> Metric:
        if is_na(self.mem_used) or is_na(self.mem_total) or not self.mem_total:
            return NA
        return 100.0 * float(self.mem_used) / float(self.mem_total)

    @property
    def health(self) -> Health:
        if (
            self.ecc_uncorrected > 0
            or self.xid in FATAL_XIDS
            or self.remap_failed
            or self.recovery_action in _FAIL_RECOVERY
        ):
            return Health.FAIL
        if (
            self.xid
            or self.remap_pending
            or self.nvlink_errors
            or self.recovery_action == "drain_p2p"
            or self.throttle.is_problem
            or self.temp >= 87
        ):
            return Health.WARN
        return Health.OK

    @property
    def problems(self) -> tuple[str, ...]:
        out: list[str] = []
        if self.xid:
            text = XID_TEXT.get(self.xid)
            out.append(f"XID {self.xid} ({text})" if text else f"XID {self.xid}")
        if self.ecc_uncorrected:
            out.append(f"{self.ecc_uncorrected} uncorrectable ECC")
        if self.remap_failed:
            out.append("row remap failed")
        elif self.remap_pending:
            out.append("row remap pending")
        if self.nvlink_errors:
            out.append(f"{self.nvlink_errors:,} NVLink errors")
        if self.recovery_action and self.recovery_action != "none":
            out.append(f"recovery: {self.recovery_action.replace('_', ' ')}")
        if self.throttle.is_problem:
            out.append(f"throttling ({self.throttle.problem.describe()})")
        elif self.temp >= 87:
            out.append(f"hot ({float(self.temp):.0f}°C)")
        return tuple(out)


@dataclass(frozen=True, slots=True)
class Condition:
    type: str
    status: str
    reason: str = ""
    message: str = ""


@dataclass(frozen=True, slots=True)
class Taint:
    key: str
    value: str = ""
    effect: str = "NoSchedule"

    def __str__(self) -> str:
        return f"{self.key}={self.value}:{self.effect}" if self.value else f"{self.key}:{self.effect}"


#: Milli-GPU in one whole GPU: shares of a GPU (time-sliced replicas, MIG slices) are counted in these.
MILLI_GPU = 1000


@dataclass(frozen=True, slots=True)
class MigSlice:
    """One MIG profile a node offers (``nvidia.com/mig-1g.10gb``): how many, how many pods took, its size."""

    profile: str
    """``1g.10gb``: compute slices (of 7) and memory."""
    allocatable: int = 0
    requested: int = 0
    milli: int = 0
    """The share of one GPU a slice is, in milli-GPU (compute slices / 7: ``1g`` → 142, ``7g`` → 1000)."""


@dataclass(frozen=True, slots=True)
class Node:
    """A machine that can run pods. GPU counts follow Kubernetes: capacity, allocatable, requested by pods.

    CPU and memory follow Kubernetes too: allocatable (what the scheduler may give pods) and the sum of its
    pods' effective requests; 0 allocatable means the source does not know, not that there is none.
    """

    name: str
    source: str
    pool: str
    zone: str
    instance_type: str
    gpu_model: str = ""
    """"" for a node without GPUs."""
    gpus_total: int = 0
    gpus_allocatable: int = 0
    gpus_requested: int = 0
    ready: bool = True
    cordoned: bool = False
    conditions: tuple[Condition, ...] = ()
    taints: tuple[Taint, ...] = ()
    labels: Mapping[str, str] = field(default_factory=lambda: _EMPTY, compare=False)
    rack: str = ""
    """Topology domain below the zone (rack, NVLink domain) when the node is labelled with one."""
    provider_id: str = ""
    """The cloud's id for the machine (``aws:///us-east-1a/i-0abc…``): sources that see the same machine
    (Kubernetes, the cloud) are matched on it."""
    price_per_hour: Metric = NA
    lifecycle: str = ""
    """``on-demand``, ``spot`` (or ``capacity-block``) when the cloud says; "" when unknown."""
    launched_at: Metric = NA
    """Unix time the machine was launched, when the cloud says."""
    instance_state: str = ""
    """The cloud's state of the machine (``running``, ``pending``, ``stopping`` …); "" when unknown."""
    health: Health = Health.OK
    cluster: str = ""
    cordoned_by: str = ""
    """Who cordoned or tainted it, where that can be told (``NVSentinel``, ``Karpenter``,
    ``cluster-autoscaler``, a person through aios-tui); "" when unknown or not cordoned."""
    lost_since: float = 0.0
    """0 while its source reports it; else the time of its last report (see :attr:`Gpu.lost_since`)."""
    cpu_allocatable: int = 0
    """Milli-CPU the scheduler may give pods; 0 when unknown."""
    cpu_requested: int = 0
    """Milli-CPU its pods request."""
    memory_allocatable: int = 0
    """Bytes of memory the scheduler may give pods; 0 when unknown."""
    memory_requested: int = 0
    gpu_sharing: str = ""
    """How pods share its GPUs: "" (each pod takes whole GPUs), ``time-slicing`` or ``mps`` (each GPU
    offered :attr:`gpu_replicas` times), ``mig`` (GPUs partitioned into :attr:`mig_slices`)."""
    gpu_replicas: int = 0
    """Under time-slicing or MPS: how many pods one GPU is offered to (0 otherwise)."""
    gpu_milli_requested: int = 0
    """Milli-GPU taken by pods that share GPUs (replicas, MIG slices); whole GPUs are in ``gpus_requested``.
    ``gpus_allocatable`` counts physical GPUs either way."""
    mig_slices: tuple[MigSlice, ...] = ()

    @property
    def key(self) -> str:
        return self.name

    @property
    def gpus_shared(self) -> int:
        """Physical GPUs that cannot be taken whole because of shares: under MIG, those partitioned into
        slices, used or not; otherwise those partly taken, as few as hold the shares (a source cannot tell
        which ones)."""
        if self.mig_slices:
            return -(-sum(s.allocatable * s.milli for s in self.mig_slices) // MILLI_GPU)
        return -(-self.gpu_milli_requested // MILLI_GPU)

    @property
    def gpus_free(self) -> int:
        """Whole GPUs no pod holds any of."""
        return max(0, self.gpus_allocatable - self.gpus_requested - self.gpus_shared)

    @property
    def cpu_free(self) -> int | None:
        """Milli-CPU not requested; None when allocatable is unknown."""
        return max(0, self.cpu_allocatable - self.cpu_requested) if self.cpu_allocatable else None

    @property
    def memory_free(self) -> int | None:
        """Bytes not requested; None when allocatable is unknown."""
        return max(0, self.memory_allocatable - self.memory_requested) if self.memory_allocatable else None

    @property
    def schedulable(self) -> bool:
        """True when new pods may land here: Ready, not cordoned, healthy, reported, no NoSchedule taint."""
        return (
            self.ready
            and not self.cordoned
            and not self.lost_since
            and self.health is not Health.FAIL
            and (not self.taints or not any(t.effect in ("NoSchedule", "NoExecute") for t in self.taints))
        )

    @property
    def status(self) -> str:
        parts = ["Ready" if self.ready else "NotReady"]
        if self.cordoned:
            parts.append("SchedulingDisabled")
        return ",".join(parts)


class PodPhase(enum.StrEnum):
    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    UNKNOWN = "Unknown"


@dataclass(frozen=True, slots=True)
class Pod:
    namespace: str
    name: str
    node: str = ""
    phase: PodPhase = PodPhase.PENDING
    gpus: int = 0
    owner_kind: str = ""
    """Controller kind: Job, ReplicaSet, StatefulSet, DaemonSet, or "" for a bare pod."""
    owner: str = ""
    """``namespace/name`` of the job or endpoint this pod belongs to."""
    ready: bool = False
    empty_dir: bool = False
    """Holds emptyDir data (such as /dev/shm) that an eviction loses."""
    rank: int = -1
    source: str = ""
    restarts: int = 0
    """Container restarts, summed over its containers."""
    created_at: float = 0.0
    """Unix time it was created (0: unknown)."""
    reason: str = ""
    """Why it is not simply running, in the kubelet's word: ``OOMKilled`` (its last termination),
    ``CrashLoopBackOff``, ``ImagePullBackOff`` (waiting), ``Evicted``; "" when there is nothing to say."""
    containers: tuple[str, ...] = ()
    """Its containers' names, in spec order (logs are per container)."""
    cpu: int = 0
    """Milli-CPU it requests (its effective request, as the scheduler counts it)."""
    memory: int = 0
    """Bytes of memory it requests."""
    gpu_milli: int = 0
    """The share of GPUs it takes without holding a whole one, in milli-GPU (a replica of a time-sliced
    GPU, a MIG slice); whole GPUs are in :attr:`gpus`."""
    gpu_profile: str = ""
    """The MIG profile it asks for (``1g.10gb``), "" otherwise."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class JobState(enum.StrEnum):
    QUEUED = "Queued"
    """Waiting for capacity (all or nothing)."""
    STARTING = "Starting"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


@dataclass(frozen=True, slots=True)
class Job:
    """A training job run as a gang: ``workers`` pods of ``gpus_per_worker`` GPUs, all placed or none."""

    namespace: str
    name: str
    source: str
    workers: int
    gpus_per_worker: int
    gpu_model: str = ""
    state: JobState = JobState.QUEUED
    priority: int = 0
    queue: str = ""
    queue_position: int = 0
    """1-based position among queued jobs, 0 when not queued."""
    placement: tuple[str, ...] = ()
    """Node of each rank, in rank order; empty while queued."""
    pending_reason: str = ""
    image: str = ""
    user: str = ""
    submitted_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    progress: Metric = NA
    """Fraction done, 0..1, when the job reports it."""
    zone: str = ""
    cluster: str = ""
    backoff_limit: int = 6
    """Failed pods the Job retries before it fails (``spec.backoffLimit``; Kubernetes' default is 6)."""
    backoff_limit_per_index: int | None = None
    """``spec.backoffLimitPerIndex`` of an Indexed Job: each index's own budget (None: not set)."""
    failed_pods: int = 0
    """Failures counted so far (``status.failed``)."""
    disruption_action: str = ""
    """What the Job's podFailurePolicy does with a pod a drain evicts (its first rule matching the
    ``DisruptionTarget`` condition: ``Ignore``, ``Count``, ``FailJob``, ``FailIndex``); "" when no rule does,
    which counts the failure as ``Count`` would."""
    jobset: str = ""
    """The JobSet this Job is a child of (label ``jobset.sigs.k8s.io/jobset-name``); "" when none."""
    restart_policy: str = "Never"
    """The pod template's ``restartPolicy``: with ``OnFailure`` container restarts in place also count
    against ``backoff_limit``, and ``failed_pods`` does not include them."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def gpus(self) -> int:
        return self.workers * self.gpus_per_worker


@dataclass(frozen=True, slots=True)
class Hpa:
    """A HorizontalPodAutoscaler that owns an endpoint's replica count."""

    name: str
    min_replicas: int
    max_replicas: int
    metric: str
    target: float
    current: Metric = NA


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A model-serving deployment: replicas of a server, each holding ``gpus_per_replica`` GPUs."""

    namespace: str
    name: str
    source: str
    model: str = ""
    server: str = ""
    image: str = ""
    replicas_desired: int = 0
    replicas_ready: int = 0
    gpus_per_replica: int = 1
    gpu_model: str = ""
    qps: Metric = NA
    p50_ms: Metric = NA
    p99_ms: Metric = NA
    mean_ms: Metric = NA
    """Mean latency, where the server exports no quantiles or histogram (Triton's default counters)."""
    error_rate: Metric = NA
    """Fraction of requests that failed, 0..1."""
    queue: Metric = NA
    """Requests waiting in the server's queue."""
    p99_slo_ms: Metric = NA
    """The endpoint's p99 latency objective, when known: what "slow" means differs by 1000× between an
    embedding model and a 70B chat model."""
    error_slo: Metric = NA
    """The endpoint's error-rate objective (fraction of requests, 0..1), when known."""
    hpa: Hpa | None = None
    cluster: str = ""
    replicas_known: bool = True
    """False when the source sees traffic but not the workload (Prometheus alone): the replica counts are
    unknown, not zero."""
    lost_since: float = 0.0
    """0 while its source reports it; else the time of its last report (see :attr:`Gpu.lost_since`)."""
    workload_kind: str = "Deployment"
    """``Deployment`` or ``StatefulSet``: they roll out differently."""
    strategy: str = "RollingUpdate"
    """``RollingUpdate`` or ``Recreate`` (a Deployment's ``spec.strategy.type``); ``RollingUpdate`` or
    ``OnDelete`` for a StatefulSet (``spec.updateStrategy.type``)."""
    max_surge: str = "25%"
    """``rollingUpdate.maxSurge`` as the object says it: a count ("1") or a percentage ("25%": default)."""
    max_unavailable: str = "25%"
    """``rollingUpdate.maxUnavailable``: a count or a percentage (defaults: Deployment "25%", StatefulSet
    "1")."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def gpus(self) -> int:
        return self.replicas_desired * self.gpus_per_replica


@dataclass(frozen=True, slots=True)
class Pdb:
    """A PodDisruptionBudget: how many of a workload's pods may be evicted voluntarily right now."""

    namespace: str
    name: str
    owner: str
    """Key (``namespace/name``) of the endpoint or job whose pods it protects."""
    min_available: int | None = None
    max_unavailable: int | None = None
    current_healthy: int = 0
    desired_healthy: int = 0
    disruptions_allowed: int = 0
    source: str = ""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class NodePool:
    """A group of identical machines scaled together: an Auto Scaling group, an EKS managed node group, a
    simulated pool."""

    name: str
    source: str
    instance_type: str
    gpu_model: str = ""
    gpus_per_node: int = 0
    """The fewest GPUs one of its nodes has (see :attr:`gpus_per_node_max`)."""
    price_per_hour: Metric = NA
    """Per node."""
    nodes: int = 0
    """Machines in the pool now."""
    min_size: int = 0
    max_size: int = 0
    zones: tuple[str, ...] = ()
    desired: int = -1
    """Desired capacity the pool is converging to; -1 when the source has none (then ``nodes``)."""
    instance_types: tuple[str, ...] = ()
    """Every instance type the pool may launch, when there are several (``instance_type`` is the first)."""
    kind: str = ""
    """``asg``, ``eks-nodegroup`` …; "" for a simulated pool."""
    region: str = ""
    lifecycle: str = ""
    """``on-demand``, ``spot``, ``capacity-block``, ``mixed`` (an on-demand base and spot above it, or a
    share of each) or "" (unknown)."""
    gpus_per_node_max: int = 0
    """Where its instance types have different GPU counts (a mixed-instances group of ``g5.xlarge`` and
    ``g5.12xlarge``): the most, and ``gpus_per_node`` the fewest; 0 otherwise."""
    capacity_weights: tuple[str, ...] = ()
    """``type=units`` per instance type when ``desired`` counts weighted capacity units, not machines (an Auto
    Scaling group's ``WeightedCapacity``); () when it counts machines."""

    @property
    def desired_capacity(self) -> int:
        return self.nodes if self.desired < 0 else self.desired

    @property
    def key(self) -> str:
        return self.name


class SourceState(enum.StrEnum):
    OK = "ok"
    STALE = "stale"
    """Last fetch failed; the data shown is the last good one."""
    ERROR = "error"
    """No good fetch yet."""
    PARTIAL = "partial"
    """Last fetch good, but parts of the backend could not be read (``error`` says which)."""
    STARTING = "starting"


@dataclass(frozen=True, slots=True)
class SourcePart:
    """One part of a source that can fail on its own — an SSH host, a scrape target, a region — for the
    sources view."""

    name: str
    state: SourceState = SourceState.OK
    last_ok: float = 0.0
    """Time of its last good reading (0: never)."""
    error: str = ""
    """Why its last reading failed, in plain words ("" when it did not)."""
    latency_ms: Metric = NA


@dataclass(frozen=True, slots=True)
class SourceHealth:
    name: str
    kind: str
    state: SourceState = SourceState.STARTING
    last_ok: float = 0.0
    """Time of the last good fetch (0: never)."""
    error: str = ""
    latency_ms: Metric = NA
    failures: int = 0
    next_try: float = 0.0
    """When the poller fetches it next (0: unknown; a poke may come sooner)."""
    last_error: str = ""
    """The latest failure, kept after the source recovered, with :attr:`last_error_at`."""
    last_error_at: float = 0.0
    parts: tuple[SourcePart, ...] = ()
    """Its hosts, targets or regions, each with its own state, where the source has such parts."""

    def age(self, now: float) -> float:
        return now - self.last_ok if self.last_ok else float("inf")

    def describe(self, now: float) -> str:
        if self.state is SourceState.OK:
            return f"{self.name} ok"
        if self.state is SourceState.STALE:
            from aios_tui.domain.units import fmt_age

            return f"{self.name} stale {fmt_age(self.age(now))}"
        return f"{self.name} {self.state.value}"


@dataclass(frozen=True, slots=True)
class FleetTotals:
    nodes: int
    nodes_ready: int
    gpus: int
    gpus_used: int
    gpus_free: int
    gpus_idle_allocated: int
    """Allocated to a pod but doing no work: utilisation under 5 % for the snapshot's ``idle_window``."""
    avg_util: Metric
    cost_per_hour: Metric
    """What the priced nodes cost; a floor when :attr:`nodes_unpriced` (:meth:`cost_text`)."""
    idle_cost_per_hour: Metric
    jobs_running: int
    jobs_queued: int
    endpoints: int
    unhealthy_gpus: int
    nodes_unpriced: int = 0
    """Nodes with no known price (a type the bundled table lacks, spot with no spot price), left out of
    :attr:`cost_per_hour` while some node is priced."""

    def cost_text(self) -> str:
        """``$12.40/h``; ``≥ $12.40/h, 3 nodes unpriced`` when nodes are left out of it; N/A when none is
        priced."""
        money = fmt_money(self.cost_per_hour)
        if is_na(self.cost_per_hour) or not self.nodes_unpriced:
            return money
        n = self.nodes_unpriced
        return f"≥ {money}, {n} node{'s' if n != 1 else ''} unpriced"


IDLE_UTIL_PCT = 5.0
"""An allocated GPU under this utilisation does no useful work."""
_PROBLEM_BITS = int(
    Throttle.HW_SLOWDOWN | Throttle.SW_THERMAL | Throttle.HW_THERMAL | Throttle.HW_POWER_BRAKE
)
"""Throttle.is_problem as a plain int: ``&`` on an IntFlag builds a new object, 40,000 times a tick."""
_HOT_C = 87.0
_NO_LOW_SINCE: Mapping[str, float] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class _GpuScan:
    """What one pass over every GPU finds: the header's counts, the idle GPUs and the ones with problems."""

    util_sum: float
    util_n: int
    used: int
    unhealthy: int
    idle: tuple[Gpu, ...]
    idle_cost: float
    sick: tuple[Gpu, ...]
    """GPUs whose :attr:`Gpu.health` is not OK (including hot ones that do not throttle yet)."""
    lost: tuple[Gpu, ...]
    """GPUs no longer reported (:attr:`Gpu.lost_since`)."""


@dataclass(frozen=True, slots=True)
class Event:
    """Something that happened to one object, at one time: a Kubernetes event, a node going NotReady, an XID,
    a restart or OOM kill, an SLO breach, a source outage. Newest first, warnings first, in the events view.
    ``message`` comes from a remote system and is cleaned at the source boundary like every such string."""

    time: float
    """Unix time of its last occurrence."""
    kind: str
    """The object's kind: ``node``, ``gpu``, ``pod``, ``job``, ``endpoint``, ``source``, ``action``."""
    key: str
    """The object's key (a node's name, ``namespace/name``, a GPU's uuid, a source's name)."""
    reason: str
    """A short word for what happened: ``FailedScheduling``, ``NotReady``, ``XID 79``, ``OOMKilled``,
    ``SLOBreach``."""
    message: str = ""
    warning: bool = False
    count: int = 1
    """How many times it happened (Kubernetes folds repeats into one event)."""
    source: str = ""
    """The source that told (``k8s:prod``), or ``aios-tui`` for what the poller saw change."""

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What makes two reports the same event (a repeat only moves its time and count)."""
        return (self.source, self.kind, self.key, self.reason)


@dataclass(frozen=True, slots=True)
class _ScanBlock:
    """What :attr:`FleetSnapshot._scan` finds in one block of :data:`_SCAN_BLOCK` GPUs, from the GPUs
    alone (what depends on the snapshot too, idleness and its cost, is decided from ``low``)."""

    util_sum: float
    util_n: int
    used: int
    unhealthy: int
    sick: tuple[Gpu, ...]
    lost: tuple[Gpu, ...]
    low: tuple[Gpu, ...]
    """Allocated to a pod, with a reading under ``IDLE_UTIL_PCT``: idle if it has been so long enough."""
    runs: tuple[tuple[str, tuple[Gpu, ...]], ...]
    """The block's GPUs in runs of one node (:attr:`FleetSnapshot.gpus_by_node` joins them)."""


_SCAN_BLOCK = 512
_scan_seen: list[tuple[tuple[Gpu, ...], tuple[_ScanBlock, ...]]] = []
"""The last snapshot's GPUs and their blocks: a block whose GPUs are the same objects is not scanned again
(a source re-reads a slice of the fleet at a time: the sim a tenth, in runs; a watch what changed)."""


def _scan_block(gpus: Sequence[Gpu]) -> _ScanBlock:
    """One pass over ``gpus``, written for speed: at 37,600 GPUs it was 10 ms of every snapshot."""
    na = NA
    used = unhealthy = util_n = 0
    util_sum = 0.0
    low: list[Gpu] = []
    sick: list[Gpu] = []
    lost: list[Gpu] = []
    hot = _HOT_C
    for g in gpus:
        u = NA if g.lost_since else g.util  # a lost GPU's last reading is not today's: out of the mean
        if u is not na:
            util_sum += u  # type: ignore[operator,assignment]
            util_n += 1
            if g.pod or g.processes:
                used += 1
                if u < IDLE_UTIL_PCT and g.pod:
                    low.append(g)
        elif g.lost_since:
            lost.append(g)
        elif g.pod or g.processes:
            used += 1
        # A falsy throttle (NONE) skips the IntFlag arithmetic, which builds a new object per call.
        if (
            g.ecc_uncorrected
            or g.xid
            or g.remap_pending
            or g.remap_failed
            or g.nvlink_errors
            or (g.recovery_action and g.recovery_action != "none")
            or (g.throttle and int(g.throttle) & _PROBLEM_BITS)
        ):
            unhealthy += 1
            sick.append(g)
        elif (t := g.temp) is not na and t >= hot:  # type: ignore[operator]
            sick.append(g)
    runs = tuple((node, tuple(run)) for node, run in itertools.groupby(gpus, _NODE_OF))
    return _ScanBlock(util_sum, util_n, used, unhealthy, tuple(sick), tuple(lost), tuple(low), runs)


def _scan_blocks(gpus: tuple[Gpu, ...]) -> tuple[_ScanBlock, ...]:
    """``gpus`` scanned in blocks, reusing the last snapshot's block where its GPUs are the same objects
    (:func:`~aios_tui.domain.blocks.blocks`)."""
    old_gpus, old_blocks = _scan_seen[0] if _scan_seen else ((), ())
    out = tuple(
        old_blocks[i] if same else _scan_block(part)
        for i, (_, part, same) in enumerate(blocks(gpus, old_gpus, _SCAN_BLOCK))
    )
    _scan_seen[:] = [(gpus, out)]
    return out


_NODE_OF = attrgetter("node")

_pods_seen: list[tuple[tuple[Pod, ...], frozenset[str], Mapping[str, tuple[Pod, ...]]]] = []
"""The last :meth:`FleetSnapshot.pods_on` pass: its pods tuple, the nodes asked for, the answer."""


@dataclass(frozen=True)
class FleetSnapshot:
    """The whole fleet at one moment, merged from every source. Immutable; indices are built on demand."""

    timestamp: float
    nodes: tuple[Node, ...] = ()
    gpus: tuple[Gpu, ...] = ()
    pods: tuple[Pod, ...] = ()
    jobs: tuple[Job, ...] = ()
    endpoints: tuple[Endpoint, ...] = ()
    pools: tuple[NodePool, ...] = ()
    sources: tuple[SourceHealth, ...] = ()
    context: str = ""
    pdbs: tuple[Pdb, ...] = ()
    idle_window: float = 0.0
    """Seconds an allocated GPU must stay under ``IDLE_UTIL_PCT`` before it counts as idle (0: at once)."""
    gpu_low_since: Mapping[str, float] = field(default_factory=lambda: _NO_LOW_SINCE, compare=False)
    """GPU uuid → since when the poller has seen it allocated and under ``IDLE_UTIL_PCT``, for the GPUs
    whose source left :attr:`Gpu.low_since` unknown. Kept beside the GPUs so that a tick does not rebuild
    37,600 of them."""
    events: tuple[Event, ...] = field(default=(), compare=False)
    """What happened recently, newest first (the poller's bounded log: the sources' events and the changes it
    saw between snapshots)."""
    slo_breached_since: Mapping[str, float] = field(default_factory=lambda: _NO_LOW_SINCE, compare=False)
    """Endpoint key → since when the poller has seen it past one of its objectives (p99 or error rate).
    An endpoint not in it meets its objectives, or has none or no reading (``alloc.slo.breached``)."""

    @cached_property
    def pdb_by_owner(self) -> Mapping[str, Pdb]:
        return {p.owner: p for p in self.pdbs}

    @cached_property
    def node_by_name(self) -> Mapping[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def gpus_by_node(self) -> Mapping[str, tuple[Gpu, ...]]:
        # Sources list a node's GPUs together: the scan's blocks keep their runs of one node (a block the
        # last snapshot scanned brings its runs along: 0.5 ms at 37,588 GPUs against 2.8 ms grouping them
        # all again); a node whose GPUs come in two runs (or across two blocks) gets both, in order.
        out: dict[str, tuple[Gpu, ...]] = {}
        get = out.get
        for block in self._blocks:
            for node, gpus in block.runs:
                got = get(node)
                out[node] = gpus if got is None else got + gpus
        return out

    @cached_property
    def gpu_by_uuid(self) -> Mapping[str, Gpu]:
        return {g.uuid: g for g in self.gpus}

    @cached_property
    def job_by_key(self) -> Mapping[str, Job]:
        return {j.key: j for j in self.jobs}

    @cached_property
    def endpoint_by_key(self) -> Mapping[str, Endpoint]:
        return {e.key: e for e in self.endpoints}

    @cached_property
    def pools_by_name(self) -> Mapping[str, NodePool]:
        return {p.name: p for p in self.pools}

    @cached_property
    def pods_by_owner(self) -> Mapping[str, tuple[Pod, ...]]:
        out: dict[str, list[Pod]] = {}
        for p in self.pods:
            if p.owner:
                out.setdefault(p.owner, []).append(p)
        return {k: tuple(v) for k, v in out.items()}

    def pods_on(self, names: Iterable[str]) -> Mapping[str, tuple[Pod, ...]]:
        """The pods of a few nodes (each name a key, () for none). Building the whole by-node index for them
        cost 25-90 ms at 5,000 nodes and 111,606 pods (a cold drain plan, the health verdicts of five sick
        nodes); this looks for these nodes only, reads the index where it is built already, and reuses the
        last answer while the source hands over the same pods (the sim between its scheduler's moves)."""
        wanted = frozenset(names)
        built = self.__dict__.get("pods_by_node")
        if built is not None:
            return {n: built.get(n, ()) for n in wanted}
        pods = self.pods
        if _pods_seen and _pods_seen[0][0] is pods and _pods_seen[0][1] == wanted:
            return _pods_seen[0][2]
        found: dict[str, list[Pod]] = {n: [] for n in wanted}
        for p in pods:
            on = found.get(p.node)
            if on is not None:
                on.append(p)
        out = MappingProxyType({n: tuple(ps) for n, ps in found.items()})
        _pods_seen[:] = [(pods, wanted, out)]
        return out

    @cached_property
    def pods_by_node(self) -> Mapping[str, tuple[Pod, ...]]:
        out: dict[str, list[Pod]] = {}
        for p in self.pods:
            if p.node:
                out.setdefault(p.node, []).append(p)
        return {k: tuple(v) for k, v in out.items()}

    def low_since(self, gpu: Gpu) -> Metric:
        """Since when ``gpu`` has been under ``IDLE_UTIL_PCT``: its source's word, else the poller's."""
        since = gpu.low_since
        if since is NA:
            return self.gpu_low_since.get(gpu.uuid, NA)
        return since

    def gpu_price(self, gpu: Gpu) -> Metric:
        """What one GPU costs per hour: its node's price shared by the node's GPUs."""
        node = self.node_by_name.get(gpu.node)
        if node is None or node.price_per_hour is NA or not node.gpus_total:
            return NA
        return float(node.price_per_hour) / node.gpus_total

    @cached_property
    def _price_per_gpu(self) -> Mapping[str, float]:
        na = NA
        return {
            n.name: n.price_per_hour / n.gpus_total  # type: ignore[operator,misc]
            for n in self.nodes
            if n.gpus_total and n.price_per_hour is not na
        }

    @cached_property
    def _blocks(self) -> tuple[_ScanBlock, ...]:
        return _scan_blocks(self.gpus)

    @cached_property
    def _scan(self) -> _GpuScan:
        """One pass over every GPU, in blocks (:func:`_scan_blocks`), then over the allocated GPUs under
        ``IDLE_UTIL_PCT`` to tell which have been so for the whole idle window."""
        na = NA
        used = unhealthy = util_n = 0
        util_sum = idle_cost = 0.0
        idle: list[Gpu] = []
        sick: list[Gpu] = []
        lost: list[Gpu] = []
        price_per_gpu = self._price_per_gpu
        window = self.idle_window
        cutoff = self.timestamp - window
        tracked = self.gpu_low_since
        for b in self._blocks:
            util_sum += b.util_sum
            util_n += b.util_n
            used += b.used
            unhealthy += b.unhealthy
            sick += b.sick
            lost += b.lost
            for g in b.low:
                # Idle: under 5 % for the whole window (its source's history, else the poller's).
                since = g.low_since
                if since is na:
                    since = tracked.get(g.uuid, na)
                if window <= 0 or (since is not na and since <= cutoff):  # type: ignore[operator]
                    idle.append(g)
                    idle_cost += price_per_gpu.get(g.node, 0.0)
        return _GpuScan(util_sum, util_n, used, unhealthy, tuple(idle), idle_cost, tuple(sick), tuple(lost))

    @property
    def idle_gpus(self) -> tuple[Gpu, ...]:
        """Allocated GPUs under ``IDLE_UTIL_PCT`` for at least ``idle_window`` seconds, in fleet order."""
        return self._scan.idle

    @property
    def lost_gpus(self) -> tuple[Gpu, ...]:
        """GPUs no longer reported (their last readings kept), in fleet order."""
        return self._scan.lost

    @property
    def sick_gpus(self) -> tuple[Gpu, ...]:
        """GPUs whose health is not OK (XID, uncorrectable ECC, problem throttling, hot), in fleet order."""
        return self._scan.sick

    @cached_property
    def node_health(self) -> Mapping[str, Health]:
        """Each node's effective health, the worst of its own and its GPUs'; only nodes that are not OK."""
        out: dict[str, Health] = {n.name: n.health for n in self.nodes if n.health}
        for g in self._scan.sick:
            h = g.health
            if h > out.get(g.node, Health.OK):
                out[g.node] = h
        return MappingProxyType(out)

    @cached_property
    def failed_nodes(self) -> frozenset[str]:
        """Nodes whose effective health (:attr:`node_health`) is FAIL: placement keeps off them."""
        return frozenset(name for name, h in self.node_health.items() if h is Health.FAIL)

    def health_of(self, node: str) -> Health:
        """The worst of the node's own health and its GPUs' (:attr:`node_health`)."""
        return self.node_health.get(node, Health.OK)

    @cached_property
    def verdicts(self) -> Mapping[str, Verdict]:
        """Node → what it needs (watch, drain, reset, reboot, RMA) and why, for the nodes that are not
        healthy (:func:`aios_tui.domain.health.verdicts`). Computed once per snapshot, from the GPUs with a
        problem found in its one pass over the fleet; the header, the health view and the cordon suggestions
        all read it."""
        from aios_tui.domain.health import verdicts  # health reads this module's classes

        return verdicts(self)

    @cached_property
    def totals(self) -> FleetTotals:
        """The header's figures. One pass over the GPUs (:attr:`_scan`, shared with the idle and health
        views) and one over the nodes; written for speed because it runs once per snapshot over every GPU."""
        na = NA
        cost = 0.0
        priced = False
        nodes_ready = gpus_free = 0
        unpriced = 0
        for n in self.nodes:
            price = n.price_per_hour
            if price is not na:
                cost += price  # type: ignore[operator,assignment]
                priced = True
            else:
                unpriced += 1
            if n.ready and not n.lost_since:
                nodes_ready += 1
            if n.gpus_total and n.schedulable and is_gpu_model(n.gpu_model):
                gpus_free += n.gpus_free
        scan = self._scan
        queued = running = 0
        for j in self.jobs:
            if j.state is JobState.QUEUED:
                queued += 1
            elif j.state is JobState.RUNNING or j.state is JobState.STARTING:
                running += 1
        return FleetTotals(
            nodes=len(self.nodes),
            nodes_ready=nodes_ready,
            gpus=len(self.gpus),
            gpus_used=scan.used,
            gpus_free=gpus_free,
            gpus_idle_allocated=len(scan.idle),
            avg_util=scan.util_sum / scan.util_n if scan.util_n else NA,
            cost_per_hour=cost if priced else NA,
            idle_cost_per_hour=scan.idle_cost if priced else NA,
            jobs_running=running,
            jobs_queued=queued,
            endpoints=len(self.endpoints),
            unhealthy_gpus=scan.unhealthy,
            nodes_unpriced=unpriced if priced else 0,
        )

    def source(self, name: str) -> SourceHealth | None:
        for s in self.sources:
            if s.name == name:
                return s
        return None
