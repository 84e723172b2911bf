"""Deterministic signals for the simulated fleet: hash noise, GPU physics, daily traffic, queueing latency.

Everything here is a pure function of its arguments. Noise comes from a SplitMix64-style integer hash, never
from the global random module nor from ``hash()`` of a string (randomised per process), so the same seed
and the same clock readings always give the same fleet.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from aios_tui.domain import Throttle

_M64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_TWO64 = float(1 << 64)


def mix(x: int) -> int:
    """SplitMix64 finaliser: a cheap, well-spread 64-bit hash of an integer."""
    x = (x + _GOLDEN) & _M64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _M64
    return x ^ (x >> 31)


def unit(salt: int, a: int) -> float:
    """A uniform number in [0, 1) determined by ``(salt, a)``; ``salt`` should already be a :func:`mix`."""
    return mix(salt ^ (a * _GOLDEN & _M64)) / _TWO64


def smooth(salt: int, t: float, period: float) -> float:
    """Noise in [0, 1) that drifts smoothly: linear between hashed values ``period`` seconds apart."""
    x = t / period
    b = math.floor(x)
    f = x - b
    lo = unit(salt, b)
    return lo + (unit(salt, b + 1) - lo) * f


# --- k8s-style names ----------------------------------------------------------------------------------

#: The alphabet Kubernetes uses for generated name suffixes (no vowels, no look-alike digits).
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SUFFIX_SPACE = len(_ALPHABET) ** 5


_PAIRS = [_ALPHABET[k % 27] + _ALPHABET[k // 27] for k in range(27 * 27)]
"""Two base-27 digits at once, low digit first: a pod name suffix is built from three look-ups."""


def suffix(n: int) -> str:
    """A 5-character pod-name suffix, distinct for every ``n`` below 27**5 (a bijection of ``n``)."""
    x = (n * 7_368_787 + 1_234_567) % _SUFFIX_SPACE  # multiplier prime to 27**5, so no two n collide
    x, low = divmod(x, 729)
    high, mid = divmod(x, 729)
    return _PAIRS[low] + _PAIRS[mid] + _ALPHABET[high]


def template_hash(h: int) -> str:
    """A 10-character pod-template hash, as a ReplicaSet name carries."""
    out = []
    for _ in range(10):
        h, r = divmod(h, 27)
        out.append(_ALPHABET[r])
    return "".join(out)


# --- GPUs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GpuSpec:
    """What NVML reports for one GPU model, from real captures where we have them.

    The H200 figures (143771 MiB, 700 W, 1980 MHz, ~77 W and 345 MHz idle, ~690 W and 1455–1530 MHz with
    the power-cap reason under load) come from shared/fixtures/nvidia-h200/nvml.json.
    """

    model: str
    """Short name, as the sim's nodes, jobs and endpoints use it."""
    name: str
    """Full NVML product name."""
    mem_total: float
    power_limit: float
    power_idle: float
    sm_clock_max: float
    sm_clock_idle: float
    mem_idle: float
    """MiB in use with no process (driver reservations)."""


GPU_SPECS: Mapping[str, GpuSpec] = MappingProxyType(
    {
        "H100": GpuSpec("H100", "NVIDIA H100 80GB HBM3", 81559, 700, 72, 1980, 345, 615),
        "H200": GpuSpec("H200", "NVIDIA H200", 143771, 700, 77, 1980, 345, 615),
        "A100": GpuSpec("A100", "NVIDIA A100-SXM4-80GB", 81920, 400, 58, 1410, 210, 425),
        "L4": GpuSpec("L4", "NVIDIA L4", 23034, 72, 16, 2040, 210, 250),
    }
)

_POWER_CAP_AT = 0.97
_IDLE_UTIL = 1.0


def _clock(mhz: float) -> float:
    """NVML reports SM clocks in 15 MHz steps."""
    return float(round(mhz / 15.0) * 15)


def gpu_physics(
    spec: GpuSpec, util: float, intensity: float, inlet: float, hot: bool, u: float
) -> tuple[float, float, float, Throttle]:
    """Power (W), temperature (°C), SM clock (MHz) and clock-event reasons for a GPU at ``util`` percent.

    Power rises with utilisation times the workload's ``intensity``; near the limit the driver holds it
    just under the cap and lowers clocks (reason SW_POWER_CAP), as the H200 capture shows. Temperature
    follows power. A ``hot`` GPU (failing fan or blocked airflow) sits at 88–92 °C under load and throttles.
    """
    limit = spec.power_limit
    if util < _IDLE_UTIL:
        power = spec.power_idle * (0.95 + 0.12 * u)
        clock = spec.sm_clock_idle
        reasons = Throttle.GPU_IDLE
    else:
        power = spec.power_idle + (limit - spec.power_idle) * util / 100.0 * intensity
        clock = spec.sm_clock_max
        reasons = Throttle.NONE
        if power >= _POWER_CAP_AT * limit:
            power = limit * (0.975 + 0.02 * u)
            clock = _clock(spec.sm_clock_max * (0.73 + 0.06 * u))
            reasons = Throttle.SW_POWER_CAP
    temp = inlet + 40.0 * power / limit
    if hot and util >= _IDLE_UTIL:
        temp = 88.0 + 4.0 * u
        power = limit * (0.78 + 0.04 * u)
        clock = _clock(spec.sm_clock_max * (0.56 + 0.06 * u))
        reasons = Throttle.SW_THERMAL | Throttle.HW_THERMAL
    return round(power, 1), float(round(temp)), clock, reasons


# --- serving ----------------------------------------------------------------------------------------------

_DAY = 86_400.0
PEAK_HOUR_UTC = 15.0
_TROUGH = 0.3


def daily(t: float, phase_h: float = 0.0) -> float:
    """Traffic as a fraction of the daily peak: 1.0 at 15:00 UTC (+ ``phase_h``), 0.3 at the night trough."""
    hour = (t % _DAY) / 3600.0
    wave = 0.5 + 0.5 * math.cos(2.0 * math.pi * (hour - PEAK_HOUR_UTC - phase_h) / 24.0)
    return _TROUGH + (1.0 - _TROUGH) * wave


_RHO_CAP = 0.97
_LATENCY_CAP = 30.0
"""Latency grows at most this many times its unloaded value (then requests time out instead)."""


def serving_stats(
    demand: float, ready: int, capacity: float, base_p50: float, base_p99: float, u: float
) -> tuple[float, float, float, float]:
    """Load ρ, p50 and p99 latency (ms) and error rate for ``demand`` requests/s over ``ready`` replicas.

    ``capacity`` is what one replica serves at ρ = 1. Latency follows a queue that batches: flat while
    load is light, then base / (1 − ρ³) (continuous batching hides queueing until the replica saturates),
    with a heavier tail for p99, capped; past ρ = 1 the excess requests are shed as errors.
    Returns NaN latencies when no replica is ready (every request fails).
    """
    if ready <= 0:
        return math.inf, math.nan, math.nan, 1.0
    rho = demand / (ready * capacity)
    x = min(rho, _RHO_CAP)
    wobble = 0.95 + 0.1 * u
    queue = 1.0 - x**3
    p50 = min(base_p50 / queue, base_p50 * _LATENCY_CAP) * wobble
    p99 = min(base_p99 / queue**1.5, base_p99 * _LATENCY_CAP) * wobble
    error = 0.0002 + 0.0004 * u
    if rho > 0.9:
        error += 0.01 * (rho - 0.9)
    if rho > 1.0:
        error += 1.0 - 1.0 / rho
    return rho, p50, p99, min(error, 1.0)
