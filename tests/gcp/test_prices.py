"""The bundled Compute Engine catalogue: what it holds is consistent, and where it has no figure it says so
(NaN, shown as unpriced) rather than inventing one. Needs no Google library."""

from __future__ import annotations

import math

import pytest

from aios_tui.domain import NA
from aios_tui.sources.clouds.gcp.prices import ACCELERATORS, CATALOGUE

MODELS = {"H100", "H200", "B200", "A100", "L4", "T4", "V100", "P100", "P4"}


def test_the_catalogue_is_dated_and_homed() -> None:
    assert (CATALOGUE.provider, CATALOGUE.home_region, CATALOGUE.as_of) == ("gcp", "us-central1", "2024")


@pytest.mark.parametrize("t", list(CATALOGUE.types.values()), ids=lambda t: t.name)
def test_every_type_has_gpus_a_short_model_and_sane_prices(t: object) -> None:
    from aios_tui.sources.clouds.catalogue import InstanceType

    assert isinstance(t, InstanceType)
    assert t.gpus >= 1 and t.gpu_model in MODELS and t.gpu_mem_mib > 7000
    assert t.region_prices == {}, "no regional figure is bundled"
    if math.isnan(t.price_per_hour):
        assert math.isnan(t.spot_price_per_hour), "no spot figure without an on-demand one"
    else:
        assert 0.2 * t.price_per_hour <= t.spot_price_per_hour <= 0.5 * t.price_per_hour


def test_shapes_follow_google_s_machine_types() -> None:
    types = CATALOGUE.types
    shapes = {n: (t.gpu_model, t.gpus, t.vcpus, t.mem_gib) for n, t in types.items()}
    assert shapes["a3-highgpu-8g"] == ("H100", 8, 208, 1872)
    assert shapes["a3-megagpu-8g"] == ("H100", 8, 208, 1872)
    assert shapes["a3-ultragpu-8g"] == ("H200", 8, 224, 2952)
    assert shapes["a4-highgpu-8g"] == ("B200", 8, 224, 3968)
    assert shapes["a2-megagpu-16g"] == ("A100", 16, 96, 1360)
    assert (types["a2-highgpu-1g"].gpu_mem_mib, types["a2-ultragpu-1g"].gpu_mem_mib) == (40960, 81920)
    assert shapes["g2-standard-48"] == ("L4", 4, 48, 192)
    # The 1/2/4-GPU A3 High shapes are the 8-GPU price pro rata.
    per_gpu = types["a3-highgpu-8g"].price_per_hour / 8
    for n in (1, 2, 4):
        assert types[f"a3-highgpu-{n}g"].price_per_hour == pytest.approx(per_gpu * n, abs=0.01)


def test_n1_gpus_are_priced_per_gpu_by_their_accelerator_name() -> None:
    t4 = CATALOGUE.types["nvidia-tesla-t4"]
    assert (t4.gpu_model, t4.gpus, t4.vcpus, t4.mem_gib, t4.price_per_hour, t4.spot_price_per_hour) == (
        "T4", 1, 0, 0, 0.35, 0.11,
    )  # fmt: skip
    for name in ("nvidia-tesla-v100", "nvidia-tesla-p100", "nvidia-tesla-p4"):
        assert CATALOGUE.types[name].gpus == 1 and name in ACCELERATORS


def test_prices_by_region_and_what_has_none() -> None:
    assert CATALOGUE.price("a3-highgpu-8g", "europe-west4") == CATALOGUE.price("a3-highgpu-8g") == 88.254
    assert CATALOGUE.price("g2-standard-4", spot=True) == 0.28
    assert math.isnan(CATALOGUE.price("a4-highgpu-8g"))  # type: ignore[arg-type]
    assert CATALOGUE.price("a4-highgpu-8g", spot=True) is NA
    assert CATALOGUE.price("n1-standard-8") is NA, "an N1 machine's own vCPUs and memory are not in the table"
