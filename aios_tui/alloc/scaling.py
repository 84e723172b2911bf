"""Scaling an endpoint: the HPA formula, and what a new replica count means for GPUs, cost and autoscalers.

Pure functions over a snapshot: no I/O. ``ops`` turns an assessment into a plan the user confirms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from aios_tui.domain import NA, Endpoint, FleetSnapshot, Metric, PodPhase, fmt_money, is_gpu_model, is_na

__all__ = [
    "MAX_REPLICAS",
    "ScaleAssessment",
    "assess_scale",
    "describe_cost",
    "gpu_hour_price",
    "hpa_desired",
]

#: Hard cap on a requested replica count: above it a typo is far likelier than intent.
MAX_REPLICAS = 1000

#: How often the HPA controller re-evaluates, in seconds (``--horizontal-pod-autoscaler-sync-period``).
HPA_SYNC_S = 15


def hpa_desired(
    current_replicas: int,
    current_metric: Metric,
    target: float,
    tolerance: float = 0.1,
    *,
    min_replicas: int,
    max_replicas: int,
) -> int:
    """The replica count a Kubernetes HorizontalPodAutoscaler would set, for one metric.

    ``desired = ceil(current × metric / target)``, kept at ``current`` while ``|metric/target − 1| ≤
    tolerance``, then clamped to ``[min_replicas, max_replicas]``. Edge cases follow the HPA controller:

    - ``current_replicas == 0``: autoscaling is paused at zero replicas (the controller leaves a workload
      scaled to zero alone), so the answer is 0.
    - a count outside ``[min, max]`` is brought back into range whatever the metric says.
    - metric NA (or NaN), or a target that is not a positive number: no recommendation, the count stays.

    Not modelled: the scale-up rate limit and stabilisation window of ``spec.behavior``, which change how
    fast the HPA gets there, not where it goes.
    """
    if current_replicas <= 0:
        return 0
    if current_replicas > max_replicas:
        return max_replicas
    if current_replicas < min_replicas:
        return min_replicas
    if is_na(current_metric) or not target > 0:  # NaN > 0 is False too
        return current_replicas
    ratio = float(current_metric) / target
    if abs(ratio - 1.0) <= tolerance:
        return current_replicas
    return max(min_replicas, min(max_replicas, math.ceil(ratio * current_replicas)))


@dataclass(frozen=True, slots=True)
class ScaleAssessment:
    """What setting ``endpoint_key`` to ``new`` replicas means, in numbers and in sentences.

    ``free_slots``: how many more replicas the free GPUs could host, each on one schedulable node with
    ``gpus_per_replica`` free GPUs of ``gpu_model``. ``shortfall``: new replicas that would stay Pending.
    ``cost_delta_per_hour``: capacity cost, i.e. the GPU-hours the change commits (negative: frees) at the
    fleet's price per GPU-hour of that model; NA when no node of that model has a price.
    ``warnings`` may be accepted; any ``blockers`` make the change invalid.
    """

    endpoint_key: str
    current: int
    new: int
    gpus_per_replica: int
    gpu_model: str
    gpus_delta: int
    free_slots: int
    fits: bool
    shortfall: int
    cost_delta_per_hour: Metric
    hpa_owned: bool
    hpa_recommendation: int | None
    warnings: tuple[str, ...]
    blockers: tuple[str, ...]

    @property
    def added(self) -> int:
        """Replicas that need a place to start (0 when scaling down)."""
        return max(0, self.new - self.current)


def gpu_hour_price(snapshot: FleetSnapshot, gpu_model: str) -> Metric:
    """Mean price per GPU-hour over the priced nodes with ``gpu_model`` GPUs; NA when none is priced."""
    prices = [
        float(n.price_per_hour) / n.gpus_total
        for n in snapshot.nodes
        if n.gpu_model == gpu_model and n.gpus_total > 0 and not is_na(n.price_per_hour)
    ]
    return sum(prices) / len(prices) if prices else NA


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def assess_scale(snapshot: FleetSnapshot, endpoint: Endpoint, replicas: int) -> ScaleAssessment:
    """Assess setting ``endpoint`` to ``replicas``: do the new replicas fit, what it costs, who reverts it."""
    current = endpoint.replicas_desired
    gpr = endpoint.gpus_per_replica
    model = endpoint.gpu_model
    shape = f"{gpr}×{model or 'GPU'}"
    blockers: list[str] = []
    warnings: list[str] = []

    if replicas < 0:
        blockers.append(f"Replicas must be 0 or more, not {replicas}.")
    elif replicas > MAX_REPLICAS:
        blockers.append(f"{replicas:,} replicas is above the hard cap of {MAX_REPLICAS:,}: is it a typo?")
    elif replicas == current:
        blockers.append(f"{endpoint.key} is already at {_plural(current, 'replica')}.")

    added = max(0, replicas - current)
    if gpr > 0:
        # A model-less endpoint takes any GPU, but not a Neuron device or a fraction of a GPU.
        usable = (lambda m: m == model) if model else is_gpu_model
        free_slots = sum(
            n.gpus_free // gpr
            for n in snapshot.nodes
            if n.schedulable and n.gpus_total > 0 and usable(n.gpu_model)
        )
    else:
        free_slots = 0
    fits = gpr <= 0 or added <= free_slots
    shortfall = 0 if fits else added - free_slots
    if shortfall:
        warnings.append(
            f"{shortfall} of {_plural(added, 'new replica')} will stay Pending: only "
            f"{_plural(free_slots, 'free slot')} of {shape} on schedulable nodes."
        )
    if added and gpr > 0:
        pending = sum(
            1
            for p in snapshot.pods_by_owner.get(endpoint.key, ())
            if p.phase is PodPhase.PENDING and not p.node
        )
        if pending:
            warnings.append(
                f"{_plural(pending, 'existing replica')} {'is' if pending == 1 else 'are'} already Pending "
                "and will compete for the same free GPUs."
            )

    gpus_delta = (replicas - current) * gpr
    cost: Metric = 0.0 if gpus_delta == 0 else gpus_delta * gpu_hour_price(snapshot, model)

    if replicas == 0 and current > 0:
        warnings.append(f"Scaling to 0 stops every replica: {endpoint.key} will serve no traffic.")
    elif 0 < replicas < current and not is_na(endpoint.qps) and float(endpoint.qps) > 0:
        qps = float(endpoint.qps)
        warnings.append(
            f"Each remaining replica will take about {qps / replicas:.1f} qps instead of {qps / current:.1f} "
            f"(at the current {qps:.1f} qps)."
        )

    hpa = endpoint.hpa
    recommendation: int | None = None
    if hpa is not None and replicas >= 0:
        owner = f"HPA {hpa.name} owns this endpoint (min {hpa.min_replicas}, max {hpa.max_replicas})"
        if replicas == 0:
            recommendation = 0
            warnings.append(
                f"{owner}: at 0 replicas Kubernetes stops autoscaling it until someone scales it up again."
            )
        else:
            if current == 0:
                # At 0 the HPA was paused; scaled up, it resumes with no reading yet and keeps the count in
                # its range.
                recommendation = hpa_desired(
                    replicas, NA, hpa.target, min_replicas=hpa.min_replicas, max_replicas=hpa.max_replicas
                )
            elif not is_na(hpa.current):
                # The metric describes today's load at today's count; that load needs the same number of
                # replicas whatever count we set, so the HPA converges back to it.
                recommendation = hpa_desired(
                    current,
                    hpa.current,
                    hpa.target,
                    min_replicas=hpa.min_replicas,
                    max_replicas=hpa.max_replicas,
                )
            if replicas > hpa.max_replicas:
                warnings.append(f"{replicas} is above the HPA's maximum of {hpa.max_replicas}.")
            elif replicas < hpa.min_replicas:
                warnings.append(f"{replicas} is below the HPA's minimum of {hpa.min_replicas}.")
            if recommendation is None:
                warnings.append(
                    f"{owner}: it may set the replicas back within about {HPA_SYNC_S} s unless you change "
                    f"the HPA (its {hpa.metric} reading is not available here)."
                )
            elif recommendation != replicas:
                warnings.append(
                    f"{owner}: it will set the replicas back to {recommendation} within about {HPA_SYNC_S} s "
                    "unless you change the HPA."
                )
            else:
                warnings.append(
                    f"{owner} and also wants {_plural(recommendation, 'replica')}: it keeps this count only "
                    "while the load stays as it is."
                )

    return ScaleAssessment(
        endpoint_key=endpoint.key,
        current=current,
        new=replicas,
        gpus_per_replica=gpr,
        gpu_model=model,
        gpus_delta=gpus_delta,
        free_slots=free_slots,
        fits=fits,
        shortfall=shortfall,
        cost_delta_per_hour=cost,
        hpa_owned=hpa is not None,
        hpa_recommendation=recommendation,
        warnings=tuple(warnings),
        blockers=tuple(blockers),
    )


def describe_cost(delta: Metric) -> str:
    """``+$98.32/h`` / ``-$49.16/h`` / ``N/A``: a capacity cost change, signed."""
    if is_na(delta):
        return "N/A"
    # Signed on the cents shown, as fmt_money: +0.001 is $0.00/h, not +$0.00/h.
    return ("+" if round(float(delta), 2) > 0 else "") + fmt_money(delta)
