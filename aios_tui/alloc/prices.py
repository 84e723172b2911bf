"""Prices for the nodes no source priced: the settings' ``[[prices]]`` rules, then a list price.

The list prices themselves belong to the clouds (each provider package's catalogue under
:mod:`aios_tui.sources.clouds`); this module holds no price, only the rule that picks one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from aios_tui.domain.model import Node
from aios_tui.domain.units import Metric, is_na

__all__ = ["PriceRule", "fill_prices"]


@dataclass(frozen=True, slots=True)
class PriceRule:
    """A node's USD per hour, for the nodes no source prices (``[[prices]]`` in the settings): one node by
    name, the nodes with a ``key=value`` label, or the nodes of an instance type."""

    price: float
    node: str = ""
    label: str = ""
    instance_type: str = ""

    def matches(self, node: Node) -> bool:
        if self.node:
            return node.name == self.node
        if self.label:
            key, _, value = self.label.partition("=")
            return node.labels.get(key) == value
        return bool(self.instance_type) and node.instance_type == self.instance_type


def fill_prices(
    nodes: Sequence[Node], rules: Sequence[PriceRule], list_price: Callable[[Node], Metric]
) -> tuple[Node, ...]:
    """``nodes`` with a price where they had none: the first rule that matches, else ``list_price(node)``
    (a cloud catalogue's figure for its instance type). Nodes a source priced keep their price."""
    out = list(nodes)
    changed = False
    for i, n in enumerate(out):
        if not is_na(n.price_per_hour):
            continue
        rule = next((r for r in rules if r.matches(n)), None)
        price = rule.price if rule is not None else list_price(n)
        if not is_na(price):
            out[i] = replace(n, price_per_hour=price)
            changed = True
    return tuple(out) if changed else tuple(nodes)
