"""The cloud registry: one package per provider, each with its catalogue; the settings' cloud sections and
their checks; list prices by region and the settings' overrides."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aios_tui.config import (
    CLOUDS,
    AzureSettings,
    CloudPriceSettings,
    ConfigError,
    GcpSettings,
    Settings,
    load_settings,
    real_sources_enabled,
    sim_only,
)
from aios_tui.domain import NA
from aios_tui.sources.clouds import PROVIDERS, instance_type, list_price, one_source
from aios_tui.sources.clouds.base import CloudProvider, price_overrides
from aios_tui.sources.clouds.catalogue import Catalogue, InstanceType


def test_every_cloud_section_is_a_registered_provider_and_back() -> None:
    assert [s.name for s in PROVIDERS] == list(CLOUDS)
    for spec in PROVIDERS:
        assert spec.catalogue.provider == spec.name
        assert hasattr(Settings(), spec.name)


def test_no_machine_type_is_in_two_catalogues() -> None:
    seen: dict[str, str] = {}
    for spec in PROVIDERS:
        for name in spec.catalogue.types:
            assert name not in seen, f"{name} is in the {seen.get(name)} and {spec.name} catalogues"
            seen[name] = spec.name


def test_each_provider_class_has_what_the_cloud_source_asks_of_it() -> None:
    wanted = [n for n in CloudProvider.__annotations__] + [
        "instances", "pools", "spot_prices", "scale_pool", "close",
    ]  # fmt: skip
    for module, cls in (
        ("aios_tui.sources.clouds.aws.provider", "AwsProvider"),
        ("aios_tui.sources.clouds.gcp.provider", "GcpProvider"),
        ("aios_tui.sources.clouds.azure.provider", "AzureProvider"),
    ):
        provider = getattr(pytest.importorskip(module), cls)
        missing = [
            n for n in wanted if not hasattr(provider, n) and n not in ("scopes", "context", "regions")
        ]
        assert not missing, f"{cls} lacks {missing}"


CAT = Catalogue.of(
    "test",
    "home-1",
    "2025-01",
    (
        InstanceType(
            "big", "H100", 8, 81559, 192, 2048, 90.0, spot_price_per_hour=30.0, region_prices={"far-2": 99.0}
        ),
        InstanceType("plain", "L4", 1, 23034, 4, 16, 1.0),
    ),
)


def test_a_catalogue_prices_by_region_then_home_region_and_overrides_win() -> None:
    assert CAT.price("big") == 90.0
    assert CAT.price("big", "far-2") == 99.0
    assert CAT.price("big", "elsewhere-3") == 90.0  # a region the table lacks: the home region's figure
    assert CAT.price("big", spot=True) == 30.0
    assert CAT.price("plain", spot=True) is NA  # no spot list price: unknown, not the on-demand one
    assert CAT.price("nope") is NA
    overrides = price_overrides(
        [
            CloudPriceSettings(instance_type="big", price=50.0),
            CloudPriceSettings(instance_type="big", price=60.0, region="far-2"),
        ]
    )
    assert CAT.price("big", "far-2", overrides) == 60.0  # the region's own override first
    assert CAT.price("big", "home-1", overrides) == 50.0  # then the one for every region
    assert CAT.price("plain", "home-1", overrides) == 1.0


def test_list_prices_come_from_whichever_cloud_has_the_type() -> None:
    assert list_price("p5.48xlarge") == 98.32
    assert instance_type("p5.48xlarge") is not None
    assert list_price("homebuilt-box") is NA
    for spec in PROVIDERS:
        for t in spec.catalogue.types.values():
            if math.isnan(t.price_per_hour):  # no list price bundled: unpriced, never 0 or NaN
                assert list_price(t.name) is NA
            else:
                assert list_price(t.name) == t.price_per_hour > 0
            assert math.isnan(t.spot_price_per_hour) or t.spot_price_per_hour > 0
            assert (t.gpus > 0) == bool(t.gpu_model), t.name


def _load(tmp_path: Path, text: str) -> Settings:
    f = tmp_path / "config.toml"
    f.write_text(text)
    return load_settings(f, env={})


@pytest.mark.parametrize(
    ("text", "key", "says"),
    [
        ('[gcp]\nregions = ["us-central1-a"]\n', "[gcp] regions", 'region names such as "us-central1"'),
        ('[gcp]\nprojects = ["My Project"]\n', "[gcp] projects", "a Google Cloud project ID"),
        ('[azure]\nsubscriptions = ["prod"]\n', "[azure] subscriptions", "an Azure subscription ID"),
        ('[azure]\nregions = ["East US"]\n', "[azure] regions", 'region names such as "eastus"'),
        (
            '[azure]\nendpoint_url = "management.azure.com"\n',
            "[azure] endpoint_url",
            "an http:// or https://",
        ),
        ('[[gcp.prices]]\ninstance_type = " "\nprice = 1.0\n', "[[gcp.prices]] #1 instance_type", "empty"),
        (
            '[[aws.prices]]\ninstance_type = "p5.48xlarge"\nprice = 1.0\nregion = "us-east-1a"\n',
            "[[aws.prices]] #1 region",
            'region names such as "us-east-1"',
        ),
    ],
)
def test_cloud_sections_are_checked_when_the_file_loads(
    tmp_path: Path, text: str, key: str, says: str
) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert err.value.key == key
    assert says in str(err.value) and "config.toml" in str(err.value)


def test_good_cloud_sections_load(tmp_path: Path) -> None:
    s = _load(
        tmp_path,
        '[gcp]\nenabled = true\nprojects = ["ml-prod", "example.com:research-1"]\n'
        'regions = ["europe-west4"]\n'
        '[azure]\nenabled = true\nsubscriptions = ["0b1f6471-1bf0-4dda-aec3-111122223333"]\n'
        'regions = ["eastus2", "swedencentral"]\n',
    )
    assert s.gcp == GcpSettings(enabled=True, projects=("ml-prod", "example.com:research-1"),
                                regions=("europe-west4",))  # fmt: skip
    assert s.azure.subscriptions == ("0b1f6471-1bf0-4dda-aec3-111122223333",)
    assert [label for _, label in real_sources_enabled(s)] == ["Google Cloud", "Azure"]
    off = sim_only(s)
    assert not off.gcp.enabled and not off.azure.enabled and off.sim.enabled


def test_a_cloud_whose_libraries_are_missing_is_a_config_error_saying_what_to_install() -> None:
    settings = Settings(azure=AzureSettings(enabled=True))
    with pytest.raises(ConfigError) as err:
        one_source(settings, name="azure", label="Azure", scopes="subscriptions",
                   provider="aios_tui_no_such_sdk.provider:AzureProvider")  # fmt: skip
    assert err.value.key == "[azure] enabled"
    assert "pip install 'aios-tui[azure]'" in str(err.value)


def test_a_spot_machine_no_source_priced_gets_a_spot_list_price_or_none() -> None:
    """The poller fills in prices no source gave from the catalogues: for a spot machine never the on-demand
    figure (about three times too high), for a capacity block nothing."""
    assert list_price("p5.48xlarge", lifecycle="spot") is NA  # AWS bundles no spot figures
    assert list_price("p5.48xlarge", lifecycle="capacity-block") is NA
    assert list_price("p5.48xlarge", lifecycle="on-demand") == 98.32
    gcp = next(s.catalogue for s in PROVIDERS if s.name == "gcp")
    t4 = gcp.types["nvidia-tesla-t4"]
    assert list_price("nvidia-tesla-t4", lifecycle="spot") == t4.spot_price_per_hour < t4.price_per_hour
