"""Prices for the nodes no source prices (a bare-metal host, a node only Prometheus knows): ``[[prices]]``
rules by name, label or instance type, then the bundled list price of the node's instance type."""

from __future__ import annotations

from pathlib import Path

import pytest

from aios_tui.alloc.prices import PriceRule, fill_prices
from aios_tui.config import ConfigError, load_settings
from aios_tui.domain import NA, Node
from aios_tui.poll import Poller
from aios_tui.sources.base import SourceData
from aios_tui.sources.clouds import list_price


def node(
    name: str, itype: str = "", labels: dict[str, str] | None = None, price: float | None = None
) -> Node:
    return Node(
        name=name,
        source="ssh",
        pool="",
        zone="",
        instance_type=itype,
        labels=labels or {},
        price_per_hour=NA if price is None else price,
    )


def test_the_first_matching_rule_prices_a_node_and_the_table_the_rest() -> None:
    rules = [
        PriceRule(12.5, node="box-1"),
        PriceRule(30.0, label="rack=r12"),
        PriceRule(50.0, instance_type="dgx-h100"),
        PriceRule(99.0, label="rack=r12"),  # never reached: the earlier rule matches first
    ]
    nodes = (
        node("box-1", labels={"rack": "r12"}),
        node("box-2", labels={"rack": "r12"}),
        node("box-3", "dgx-h100"),
        node("cloud", "p5.48xlarge"),
        node("odd", "homebuilt"),
        node("priced", "dgx-h100", price=7.0),
    )
    prices = [n.price_per_hour for n in fill_prices(nodes, rules, lambda n: list_price(n.instance_type))]
    assert prices[:4] == [12.5, 30.0, 50.0, 98.32]  # p5.48xlarge from the bundled table
    assert prices[4] is NA and prices[5] == 7.0  # unknown stays unknown; a source's own price wins


async def test_the_poller_prices_what_its_sources_do_not() -> None:
    class Bare:
        name, kind, interval, timeout = "ssh", "ssh", 1.0, 1.0

        async def fetch(self) -> SourceData:
            return SourceData(nodes=(node("box-1"), node("box-2", labels={"pool": "lab"})))

        async def close(self) -> None:
            pass

    snap = await Poller([Bare()], prices=[PriceRule(8.0, label="pool=lab")]).refresh()
    assert [n.price_per_hour for n in snap.nodes] == [NA, 8.0]
    assert snap.totals.cost_per_hour == 8.0


@pytest.mark.parametrize(
    ("table", "error"),
    [
        ("price = 1.0\n", '[[prices]] #1: expected one of node, label or instance_type, got "none"'),
        (
            "price = 1.0\nnode = 'a'\nlabel = 'x=y'\n",
            '[[prices]] #1: expected one of node, label or instance_type, got "node, label"',
        ),
        ("price = 1.0\nlabel = 'rack'\n", '[[prices]] #1 label: expected key=value, got "rack"'),
        ("node = 'a'\n", "[[prices]] #1 price: required setting is missing"),
    ],
)
def test_a_price_rule_names_exactly_one_thing(tmp_path: Path, table: str, error: str) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[[prices]]\n" + table)
    with pytest.raises(ConfigError) as info:
        load_settings(config, env={})
    assert error in str(info.value) and str(config) in str(info.value)


def test_price_rules_load(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[[prices]]\nlabel = 'rack=r1'\nprice = 4.5\n[[prices]]\nnode = 'box'\nprice = 2\n")
    rules = load_settings(config, env={}).prices
    assert [(r.label, r.node, r.price) for r in rules] == [("rack=r1", "", 4.5), ("", "box", 2.0)]
