"""Names qualified by their cluster, so that several contexts can share one fleet view.

Two clusters often run the same ``ml-prod/llm-serve`` and may even share node names; merged as they are,
one would hide the other. When aios-tui watches more than one context, each source puts its context in
front of every namespace and node name it reports (``prod-eu/ml-prod``, ``prod-eu/ip-10-0-1-11…``), so
keys stay unique and the console shows where each object lives; the same source takes the prefix off again
before it calls its API server. With one context nothing is renamed.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from aios_tui.domain import Endpoint, Gpu, Job, Node, NodePool, Pdb, Pod
from aios_tui.sources.base import LaunchSpec, SourceData


class Qualifier:
    def __init__(self, context: str) -> None:
        self.prefix = f"{context}/"
        self._cache: dict[int, tuple[Any, Any]] = {}

    def q(self, name: str) -> str:
        return self.prefix + name if name else name

    def unq(self, name: str) -> str:
        """The name as the API server knows it (names from elsewhere pass unchanged)."""
        return name.removeprefix(self.prefix)

    def spec(self, spec: LaunchSpec) -> LaunchSpec:
        return replace(
            spec, namespace=self.unq(spec.namespace), placement=tuple(self.unq(n) for n in spec.placement)
        )

    def data(self, data: SourceData) -> SourceData:
        """``data`` with qualified names; objects the source reused since the last call are reused too."""
        old, self._cache = self._cache, {}

        def each(objs: tuple[Any, ...]) -> tuple[Any, ...]:
            out = []
            for obj in objs:
                hit = old.get(id(obj))
                new = hit[1] if hit is not None and hit[0] is obj else self._one(obj)
                self._cache[id(obj)] = (obj, new)
                out.append(new)
            return tuple(out)

        return replace(
            data,
            nodes=each(data.nodes),
            gpus=each(data.gpus),
            pods=each(data.pods),
            jobs=each(data.jobs),
            endpoints=each(data.endpoints),
            pools=each(data.pools),
            pdbs=each(data.pdbs),
            events=tuple(replace(e, key=self.q(e.key)) for e in data.events),
        )

    def _one(self, obj: Any) -> Any:
        q = self.q
        match obj:
            case Node():
                return replace(obj, name=q(obj.name))
            case Gpu():
                return replace(obj, node=q(obj.node), uuid=q(obj.uuid), pod=q(obj.pod))
            case Pod():
                return replace(obj, namespace=q(obj.namespace), node=q(obj.node), owner=q(obj.owner))
            case Job():
                return replace(obj, namespace=q(obj.namespace), placement=tuple(q(n) for n in obj.placement))
            case Endpoint():
                return replace(obj, namespace=q(obj.namespace))
            case Pdb():
                return replace(obj, namespace=q(obj.namespace), owner=q(obj.owner))
            case NodePool():
                return replace(obj, name=q(obj.name))
        raise TypeError(f"cannot qualify {type(obj).__name__}")
