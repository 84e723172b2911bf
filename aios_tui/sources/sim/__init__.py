"""The embedded simulated fleet: the default source, a whole GPU fleet that lives in time and obeys actions.

Pools of 8-GPU H100, H200 and A100 nodes, 4- and 8-GPU L4 nodes and CPU nodes across three zones; training
gangs that run, queue for capacity, finish and free their GPUs; serving endpoints whose traffic follows the
day and whose latency climbs when replicas run short; a handful of faults an on-call engineer would find.

Determinism: the state is a function of the seed, the size, the clock readings and the actions applied.
The layout comes from ``random.Random(seed)``; readings come from integer hashes of (seed, entity, time
bucket). Time moves in events (a pod becomes ready, a job finishes, the HPA evaluates, a job is submitted)
processed in time order, so a fake clock drives everything in tests.

Scheduling: every gang and every replica is placed by ``aios_tui.alloc.placement`` over the fleet as it
stands (cordoned, NotReady and failed nodes receive nothing), so a plan made over a snapshot lands where it
said. Gangs start all or nothing; evicting one rank restarts the whole gang from its last checkpoint.
Production endpoints carry a PodDisruptionBudget, and an eviction it forbids is refused as Kubernetes does.

Cost: objects that did not change are reused between fetches; GPU telemetry is refreshed on a rotating
slice, each GPU once per ``[sim] telemetry_period`` (a staggered DCGM scrape), plus every GPU an action
touched (:mod:`.telemetry`); the hundred thousand pods and GPUs a 5,000-node fleet makes are built with
:mod:`.construct`'s constructors.

Triage (:mod:`.inspect`): pods carry restarts, age and reasons, the fleet tells the events it lived (its
XID with its time, scheduling refusals, OOM kills, a crash loop, what it carried out), and it reads pods'
logs and shows objects as YAML shaped like Kubernetes', its incidents in them.
"""

from aios_tui.sources.sim.source import PDB_VIOLATION, SimSource

__all__ = ["PDB_VIOLATION", "SimSource"]
