"""Capacity what-if: for a gang that does not fit, which extra nodes would make it fit, and at what price.

A gang must sit in one zone, so the question is asked per (node pool, zone): with the free GPUs that zone
has now, how many more nodes of the pool does the gang need? Each new node of ``gpus_per_node`` GPUs holds
``gpus_per_node // gpus_per_worker`` workers, so the answer is a ceiling division, exact by construction
(``Capacity`` places a gang anywhere in a zone once the zone holds enough workers). The smallest node count
wins, then the lower price per hour, then the zone the refusal named as the best, then the names. The
pool's autoscaler limits are not applied: the answer says what would fit, the operator decides whether to
raise a limit.

``why_pending`` is cheap enough for every queued job on every snapshot: the capacity index is built once
per fleet state (kept while the source reuses its node tuple) and the answers are cached with it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

from aios_tui.alloc.placement import Capacity, GangRequest, Placement
from aios_tui.domain import NA, FleetSnapshot, Job, Metric, Node, NodePool, fmt_money, is_gpu_model, is_na

__all__ = ["WhatIf", "capacity_whatif", "why_pending"]


@dataclass(frozen=True, slots=True)
class WhatIf:
    """Extra nodes of one pool, in one zone, that would let ``request`` start."""

    request: GangRequest
    pool: str
    instance_type: str
    zone: str
    nodes: int
    """Extra nodes of that pool."""
    price_per_hour: Metric
    """For all of them."""

    def describe(self) -> str:
        """``+3 × p5.48xlarge in pool h100-b (us-east-1b), $294.96/h``."""
        price = "" if is_na(self.price_per_hour) else f", {fmt_money(self.price_per_hour)}"
        return f"+{self.nodes} × {self.instance_type} in pool {self.pool} ({self.zone}){price}"


def _whatif(
    snapshot: FleetSnapshot, cap: Capacity, request: GangRequest, max_nodes: int, prefer_zone: str = ""
) -> WhatIf | None:
    g, workers = request.gpus_per_worker, request.workers
    best: tuple[int, float, bool, str, str] | None = None
    answer: WhatIf | None = None
    for pool in snapshot.pools:
        if not pool.gpu_model or not is_gpu_model(pool.gpu_model):
            continue
        if request.gpu_model and pool.gpu_model != request.gpu_model:
            continue
        per_node = pool.gpus_per_node // g
        if per_node < 1:
            continue
        zones = pool.zones if not request.zone else tuple(z for z in pool.zones if z == request.zone)
        price = math.inf if is_na(pool.price_per_hour) else float(pool.price_per_hour)
        for zone in zones:
            have = cap.zone_capacity(pool.gpu_model, zone, g)
            nodes = max(1, math.ceil((workers - have) / per_node))
            if nodes > max_nodes:
                continue
            key = (nodes, nodes * price, zone != prefer_zone, pool.name, zone)
            if best is None or key < best:
                best = key
                answer = WhatIf(
                    request=request,
                    pool=pool.name,
                    instance_type=pool.instance_type,
                    zone=zone,
                    nodes=nodes,
                    price_per_hour=NA if is_na(pool.price_per_hour) else nodes * price,
                )
    return answer


class _SnapshotCache:
    """The capacity index and the answers, kept while the fleet's nodes and pools stay the same objects
    (and the same nodes have a failed GPU).

    Sources reuse the ``nodes`` tuple while no node changed (the embedded fleet does, most ticks), so the
    answers survive from one snapshot to the next until capacity really moves. The request-size mix used to
    break ties is the one of the snapshot that built the index.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._nodes: tuple[Node, ...] | None = None
        self._pools: tuple[NodePool, ...] | None = None
        self._failed: frozenset[str] = frozenset()
        self._cap: Capacity | None = None
        self._answers: dict[tuple[str, int, int, str, str], str] = {}

    def get(self, snapshot: FleetSnapshot) -> tuple[Capacity, dict[tuple[str, int, int, str, str], str]]:
        with self._lock:
            if (
                self._cap is None
                or self._nodes is not snapshot.nodes
                or self._pools is not snapshot.pools
                or self._failed != snapshot.failed_nodes  # a GPU failed or came back on an unchanged node
            ):
                self._nodes, self._pools = snapshot.nodes, snapshot.pools
                self._failed = snapshot.failed_nodes
                self._cap = Capacity.from_snapshot(snapshot)
                self._answers = {}
            return self._cap, self._answers


_CACHE = _SnapshotCache()


def capacity_whatif(snapshot: FleetSnapshot, request: GangRequest, *, max_nodes: int = 64) -> WhatIf | None:
    """The fewest extra nodes of one pool, in one zone, with which ``request`` fits (cheapest on ties).

    ``None`` when no pool offers the model in a zone the request allows with at most ``max_nodes`` nodes,
    and when the request already fits (there is nothing to add).
    """
    cap, _ = _CACHE.get(snapshot)
    result = cap.place(request)
    if isinstance(result, Placement):
        return None
    return _whatif(snapshot, cap, request, max_nodes, result.best_zone)


def why_pending(snapshot: FleetSnapshot, job: Job) -> str:
    """Why ``job`` cannot start on ``snapshot``, and which extra nodes would let it, in one sentence.

    ``needs 4×8 H100 in one zone; the best zone (us-east-1b) has room for 3 of the 4 workers (…);
    +1 × p5.48xlarge in pool h100-b (us-east-1b) would fit it, $98.32/h``
    """
    cap, answers = _CACHE.get(snapshot)
    key = (job.key, job.workers, job.gpus_per_worker, job.gpu_model, job.zone)
    text = answers.get(key)
    if text is not None:
        return text
    request = GangRequest.for_job(job)
    result = cap.place(request)
    if isinstance(result, Placement):
        where = f" ({result.domain})" if result.domain else ""
        text = f"{request.describe()} fits now{where}; it waits for its turn in the queue"
    else:
        fix = _whatif(snapshot, cap, request, 64, result.best_zone)
        what = f"{request.gpu_model} GPUs" if request.gpu_model else "GPUs of one model"
        if fix is not None:
            price = "" if is_na(fix.price_per_hour) else f", {fmt_money(fix.price_per_hour)}"
            text = (
                f"{result.reason}; +{fix.nodes} × {fix.instance_type} in pool {fix.pool} ({fix.zone}) "
                f"would fit it{price}"
            )
        elif not any(
            p.gpu_model and p.gpu_model == (request.gpu_model or p.gpu_model) for p in snapshot.pools
        ):
            text = f"{result.reason}; no node pool offers {what}"
        else:
            where = f"zone {request.zone}" if request.zone else "one zone"
            text = f"{result.reason}; no node pool offers {request.gpus} {what} in {where}"
    if len(answers) < 4096:
        answers[key] = text
    return text
