"""Parsing nvidia-smi ``--query-…`` output, on the real H200 captures in tests/fixtures/nvidia-h200/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aios_tui.domain import NA, Health, Throttle, is_na
from aios_tui.sources._smi_parse import (
    APPS_FIELDS,
    GPU_FIELDS,
    SmiParseError,
    parse_apps,
    parse_events,
    parse_gpus,
    query_command,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "nvidia-h200"
UUID = "GPU-bd0e6523-8cf2-155b-091e-05fdce84f39f"


def nounits(name: str, columns: int | None = None) -> str:
    """A ``--format=csv`` capture as ``--format=csv,noheader,nounits`` prints it."""
    lines = (FIXTURES / name).read_text(encoding="utf-8").splitlines()
    rows = [[re.sub(r" (%|MiB|W|MHz)$", "", f) for f in line.split(", ")][:columns] for line in lines[1:]]
    return "".join(", ".join(row) + "\n" for row in rows)


def test_the_captures_ask_for_the_fields_the_query_asks_for() -> None:
    header = (FIXTURES / "smi_query_load.csv").read_text(encoding="utf-8").splitlines()[0].split(", ")
    assert len(header) == len(GPU_FIELDS)
    apps_header = (FIXTURES / "smi_apps_load.csv").read_text(encoding="utf-8").splitlines()[0].split(", ")
    assert len(apps_header) == len(APPS_FIELDS)
    assert query_command("/usr/bin/nvidia-smi", "gpus") == (
        "/usr/bin/nvidia-smi --query-gpu=" + ",".join(GPU_FIELDS) + " --format=csv,noheader,nounits"
    )


def test_idle_h200() -> None:
    (smi,) = parse_gpus(nounits("smi_query_idle.csv"), node="box")
    g = smi.gpu
    assert (g.node, g.index, g.uuid, g.model) == ("box", 0, UUID, "H200")
    assert (g.util, g.mem_used, g.mem_total, g.temp) == (0.0, 0.0, 143771.0, 34.0)
    assert (g.power, g.power_limit, g.sm_clock) == (76.84, 700.0, 345.0)
    assert is_na(g.sm_clock_max)
    assert (g.ecc_uncorrected, g.throttle, g.health) == (0, Throttle.NONE, Health.OK)
    assert (smi.pci_bus_id, smi.pstate, smi.mem_util, smi.mem_clock) == ("00000000:00:06.0", 0, 0.0, 3201.0)


def test_loaded_h200_with_its_clock_events_and_process() -> None:
    events = parse_events(nounits("smi_events_load.csv", columns=2))
    assert events == {0: Throttle.SW_POWER_CAP}
    (smi,) = parse_gpus(nounits("smi_query_load.csv"), node="box", throttle=events)
    assert (smi.gpu.util, smi.gpu.mem_used, smi.gpu.power) == (100.0, 21491.0, 689.2)
    assert smi.gpu.throttle == Throttle.SW_POWER_CAP
    (proc,) = parse_apps(nounits("smi_apps_load.csv"))
    assert (proc.gpu_uuid, proc.pid, proc.name, proc.used_mib) == (
        UUID,
        429,
        "/opt/torch/.venv/bin/python3",
        21482.0,
    )


def test_what_nvidia_smi_cannot_tell_is_na() -> None:
    line = (
        "3, [N/A], NVIDIA A100-SXM4-80GB, [N/A], [Not Supported], [N/A], 81920, 10, 81910, "
        "[N/A], [Unknown Error], [N/A], [N/A], [N/A], [N/A], [N/A]\n"
    )
    (smi,) = parse_gpus(line, node="n1")
    g = smi.gpu
    assert (g.index, g.uuid, g.model) == (3, "n1/gpu3", "A100")
    assert all(is_na(v) for v in (g.util, g.temp, g.power, g.power_limit, g.sm_clock))
    assert (g.mem_total, g.mem_used, g.ecc_uncorrected) == (81920.0, 10.0, 0)
    assert (smi.pstate, smi.pci_bus_id) == (None, "")
    assert parse_events("3, [Not Supported]\n") == {}
    assert parse_apps(f"{UUID}, 77, python, [N/A]\n")[0].used_mib is NA


def test_uncorrected_ecc_and_thermal_events_flag_the_gpu() -> None:
    line = nounits("smi_query_load.csv").replace(", P0, 0", ", P2, 3")
    (smi,) = parse_gpus(line, node="n", throttle=parse_events("0, 0x0000000000000040\n"))
    assert (smi.pstate, smi.gpu.ecc_uncorrected, smi.gpu.health) == (2, 3, Health.FAIL)
    assert smi.gpu.throttle.is_thermal
    # Bits the model does not know (newer drivers) are dropped, the known ones kept.
    assert parse_events("0, 0x0000000000000104\n") == {0: Throttle.SW_POWER_CAP}


def test_a_process_name_may_hold_commas() -> None:
    (proc,) = parse_apps(f"{UUID}, 12, python train.py --a=1, --b=2, 4096\n")
    assert (proc.pid, proc.name, proc.used_mib) == (12, "python train.py --a=1, --b=2", 4096.0)


def test_empty_output_is_no_gpus() -> None:
    assert parse_gpus("\n", node="n") == ()
    assert parse_apps("") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.\n",
            "expected 16 fields, got 1",
        ),
        ("index, uuid, name\n", "expected 16 fields, got 3"),
        ("zero" + nounits("smi_query_idle.csv")[1:], "line 1: index is not an integer: 'zero'"),
        (
            nounits("smi_query_idle.csv").replace("76.84", "lots"),
            "line 1: power.draw is not a number: 'lots'",
        ),
        (nounits("smi_query_idle.csv").replace("P0", "fast"), "line 1: pstate is not P0..P15: 'fast'"),
        (nounits("smi_query_idle.csv") + "1, 2\n", "line 2: expected 16 fields, got 2"),
    ],
)
def test_garbage_is_an_error_naming_the_line(text: str, message: str) -> None:
    with pytest.raises(SmiParseError, match=re.escape(message)):
        parse_gpus(text, node="n")


@pytest.mark.parametrize(
    ("text", "message"),
    [("just words\n", "line 1: expected 4 fields"), (f"{UUID}, pid, python, 1\n", "pid is not an integer")],
)
def test_garbage_apps_are_an_error(text: str, message: str) -> None:
    with pytest.raises(SmiParseError, match=message):
        parse_apps(text)


def test_garbage_events_are_an_error() -> None:
    with pytest.raises(SmiParseError, match="clock-event reasons are not a hex mask: 'Active'"):
        parse_events("0, Active\n")
