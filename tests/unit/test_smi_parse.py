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


# --- every field, by name ---------------------------------------------------------------------------------

#: One ``--query-gpu`` line, a distinct value per field so that reading one field for another shows.
FIELDS = {
    "index": "2",
    "uuid": "GPU-2222",
    "name": "NVIDIA H100 80GB HBM3",
    "pci.bus_id": "00000000:2A:00.0",
    "utilization.gpu": "11",
    "utilization.memory": "22",
    "memory.total": "81559",
    "memory.used": "1234",
    "memory.free": "80325",
    "temperature.gpu": "45",
    "power.draw": "312.5",
    "power.limit": "700.00",
    "clocks.sm": "1980",
    "clocks.mem": "2619",
    "pstate": "P2",
    "ecc.errors.uncorrected.volatile.total": "0",
}


ECC = "ecc.errors.uncorrected.volatile.total"


def gpu_line(values: dict[str, str] | None = None) -> str:
    """A ``--query-gpu`` line of :data:`FIELDS`, with ``values`` (by field name) in their place."""
    fields = {**FIELDS, **(values or {})}
    return ", ".join(fields[name] for name in GPU_FIELDS) + "\n"


def test_the_queries_ask_for_these_fields_in_this_order() -> None:
    assert list(FIELDS) == list(GPU_FIELDS)
    assert query_command("nvidia-smi", "gpus") == (
        "nvidia-smi --query-gpu=index,uuid,name,pci.bus_id,utilization.gpu,utilization.memory,memory.total,"
        "memory.used,memory.free,temperature.gpu,power.draw,power.limit,clocks.sm,clocks.mem,pstate,"
        "ecc.errors.uncorrected.volatile.total --format=csv,noheader,nounits"
    )
    assert query_command("/opt/bin/nvidia-smi", "apps") == (
        "/opt/bin/nvidia-smi --query-compute-apps=gpu_uuid,pid,process_name,used_memory "
        "--format=csv,noheader,nounits"
    )
    assert query_command("nvidia-smi", "events") == (
        "nvidia-smi --query-gpu=index,clocks_event_reasons.active --format=csv,noheader,nounits"
    )


def test_every_field_lands_where_it_belongs() -> None:
    (smi,) = parse_gpus(gpu_line(), node="n7")
    g = smi.gpu
    assert (g.node, g.index, g.uuid, g.model) == ("n7", 2, "GPU-2222", "H100")
    assert (g.util, g.mem_total, g.mem_used, g.temp) == (11.0, 81559.0, 1234.0, 45.0)
    assert (g.power, g.power_limit, g.sm_clock, g.ecc_uncorrected) == (312.5, 700.0, 1980.0, 0)
    assert (smi.pci_bus_id, smi.pstate, smi.mem_util, smi.mem_clock) == ("00000000:2A:00.0", 2, 22.0, 2619.0)
    assert g.throttle == Throttle.NONE


def test_throttle_is_looked_up_by_index() -> None:
    events = {1: Throttle.HW_SLOWDOWN, 2: Throttle.SW_THERMAL}
    (smi,) = parse_gpus(gpu_line(), node="n7", throttle=events)
    assert smi.gpu.throttle == Throttle.SW_THERMAL
    (smi,) = parse_gpus(gpu_line({"index": "3"}), node="n7", throttle=events)
    assert smi.gpu.throttle == Throttle.NONE


def test_an_unknown_name_and_pstate_p15() -> None:
    (smi,) = parse_gpus(gpu_line({"name": "[N/A]", "pstate": "P15", ECC: "[N/A]"}), node="n")
    assert (smi.gpu.model, smi.pstate, smi.gpu.ecc_uncorrected) == ("", 15, 0)
    (smi,) = parse_gpus(gpu_line({"name": "", "uuid": "", "pci.bus_id": "N/A"}), node="n")
    assert (smi.gpu.model, smi.gpu.uuid, smi.pci_bus_id) == ("", "n/gpu2", "")


def test_several_gpus_keep_their_order_and_blank_lines_do_not_count() -> None:
    text = "\n" + gpu_line({"index": "0"}) + "   \n" + gpu_line({"index": "1", ECC: "4"})
    smis = parse_gpus(text, node="n")
    assert [(s.gpu.index, s.gpu.ecc_uncorrected) for s in smis] == [(0, 0), (1, 4)]
    with pytest.raises(SmiParseError, match=re.escape("line 5: pstate is not P0..P15: 'P100'")):
        parse_gpus(text + gpu_line({"pstate": "P100"}), node="n")


@pytest.mark.parametrize(
    "field",
    [
        "utilization.gpu",
        "utilization.memory",
        "memory.total",
        "memory.used",
        "temperature.gpu",
        "power.draw",
        "power.limit",
        "clocks.sm",
        "clocks.mem",
    ],
)
def test_a_reading_that_is_not_a_number_is_named(field: str) -> None:
    text = gpu_line({field: "lots"})
    with pytest.raises(SmiParseError) as raised:
        parse_gpus(text, node="n")
    assert str(raised.value) == f"line 1: {field} is not a number: 'lots'"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"index": "[N/A]"}, "line 1: index is not a number: '[N/A]'"),
        ({"index": "2.0"}, "line 1: index is not an integer: '2.0'"),
        ({ECC: "many"}, f"line 1: {ECC} is not an integer: 'many'"),
    ],
)
def test_integers_that_are_not_are_named(values: dict[str, str], message: str) -> None:
    with pytest.raises(SmiParseError) as raised:
        parse_gpus(gpu_line(values), node="n")
    assert str(raised.value) == message


# --- long output is clipped in the error, and still the module's own error ---------------------------------

FAILED = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest "
    "NVIDIA driver is installed and running."
)


def test_a_long_nvidia_smi_has_failed_line_is_a_parse_error_with_the_line_clipped() -> None:
    with pytest.raises(SmiParseError) as raised:
        parse_gpus(FAILED + "\n", node="n")
    clipped = FAILED[:79] + "…"
    assert str(raised.value) == f"line 1: expected 16 fields, got 1: {clipped!r}"
    for parse in (parse_apps, parse_events):
        with pytest.raises(SmiParseError, match="line 1: expected"):
            parse(FAILED)


@pytest.mark.parametrize(
    ("length", "shown"),
    [(79, "x" * 79), (80, "x" * 80), (81, "x" * 79 + "…"), (200, "x" * 79 + "…")],
)
def test_lines_are_clipped_to_80_characters_in_errors(length: int, shown: str) -> None:
    with pytest.raises(SmiParseError) as raised:
        parse_apps("x" * length)
    assert str(raised.value) == f"line 1: expected 4 fields: {shown!r}"
    with pytest.raises(SmiParseError) as raised:
        parse_gpus(gpu_line({"power.draw": "W" * length}), node="n")
    assert str(raised.value) == f"line 1: power.draw is not a number: {shown.replace('x', 'W')!r}"


# --- apps and events, field by field -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"{UUID}, [N/A], python, 1\n", "line 1: pid is not a number: '[N/A]'"),
        (f"{UUID}, 1, a, 2\n{UUID}, pid, python, 1\n", "line 2: pid is not an integer: 'pid'"),
        (f"{UUID}, 12, python, lots\n", "line 1: used_memory is not a number: 'lots'"),
        (
            f"{UUID}, 12, python\n",
            "line 1: expected 4 fields: 'GPU-bd0e6523-8cf2-155b-091e-05fdce84f39f, 12, python'",
        ),
        (f"{UUID}, 12\n", "line 1: expected 4 fields"),
        (f"{UUID}, 1, a, 2\n12, x\n", "line 2: expected 4 fields: '12, x'"),
    ],
)
def test_garbage_apps_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(SmiParseError) as raised:
        parse_apps(text)
    assert str(raised.value).startswith(message)


def test_apps_fields_in_order() -> None:
    procs = parse_apps(f"{UUID}, 12, a, 100\n\nGPU-2, 13, b, [N/A]\n")
    assert [(p.gpu_uuid, p.pid, p.name, p.used_mib) for p in procs] == [
        (UUID, 12, "a", 100.0),
        ("GPU-2", 13, "b", NA),
    ]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[N/A], 0x1\n", "line 1: index is not a number: '[N/A]'"),
        ("zero, 0x1\n", "line 1: index is not an integer: 'zero'"),
        ("0, 0x1, 2\n", "line 1: expected 2 fields, got 3: '0, 0x1, 2'"),
    ],
)
def test_garbage_events_name_the_line_and_field(text: str, message: str) -> None:
    with pytest.raises(SmiParseError) as raised:
        parse_events(text)
    assert str(raised.value) == message


def test_every_known_clock_event_bit_is_kept() -> None:
    assert parse_events("0, [N/A]\n1, 0x4\n") == {1: Throttle.SW_POWER_CAP}, "NA skips only its own GPU"
    assert parse_events("0, 0x1\n1, 0xFF\n2, 0x80\n3, 0x100\n4, 0\n") == {
        0: Throttle.GPU_IDLE,
        1: Throttle(0xFF),
        2: Throttle.HW_POWER_BRAKE,
        3: Throttle.NONE,
        4: Throttle.NONE,
    }
