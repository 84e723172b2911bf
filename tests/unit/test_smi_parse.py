"""Parsing nvidia-smi ``--query-…`` output, on the real H200 captures in tests/fixtures/nvidia-h200/."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from aios_tui.domain import NA, Health, Throttle, is_na
from aios_tui.sources._smi_parse import (
    APPS_FIELDS,
    GPU_FIELDS,
    KILL_AFTER,
    SmiParseError,
    parse_apps,
    parse_events,
    parse_gpus,
    parse_users,
    poll_command,
    query_command,
    split_sections,
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
    (proc,), skipped = parse_apps(nounits("smi_apps_load.csv"))
    assert (proc.gpu_uuid, proc.pid, proc.name, proc.used_mib, proc.user) == (
        UUID,
        429,
        "/opt/torch/.venv/bin/python3",
        21482.0,
        "",
    )
    assert skipped == ()


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
    assert parse_apps(f"{UUID}, 77, python, [N/A]\n")[0][0].used_mib is NA


def test_uncorrected_ecc_and_thermal_events_flag_the_gpu() -> None:
    line = nounits("smi_query_load.csv").replace(", P0, 0", ", P2, 3")
    (smi,) = parse_gpus(line, node="n", throttle=parse_events("0, 0x0000000000000040\n"))
    assert (smi.pstate, smi.gpu.ecc_uncorrected, smi.gpu.health) == (2, 3, Health.FAIL)
    assert smi.gpu.throttle.is_thermal
    # Bits the model does not know (newer drivers) are dropped, the known ones kept.
    assert parse_events("0, 0x0000000000000104\n") == {0: Throttle.SW_POWER_CAP}


def test_a_process_name_may_hold_commas() -> None:
    (proc,), _ = parse_apps(f"{UUID}, 12, python train.py --a=1, --b=2, 4096\n")
    assert (proc.pid, proc.name, proc.used_mib) == (12, "python train.py --a=1, --b=2", 4096.0)


def test_empty_output_is_no_gpus() -> None:
    assert parse_gpus("\n", node="n") == ()
    assert parse_apps("") == ((), ())


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
    [
        ("just words\n", "line 1: expected 4 fields: 'just words'"),
        (f"{UUID}, pid, python, 1\n", "line 1: pid is not an integer: 'pid'"),
    ],
)
def test_garbage_apps_are_skipped_and_named(text: str, message: str) -> None:
    assert parse_apps(text) == ((), (message,))


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
    with pytest.raises(SmiParseError, match="line 1: expected"):
        parse_events(FAILED)
    assert parse_apps(FAILED) == ((), (f"line 1: expected 4 fields: {clipped!r}",))


@pytest.mark.parametrize(
    ("length", "shown"),
    [(79, "x" * 79), (80, "x" * 80), (81, "x" * 79 + "…"), (200, "x" * 79 + "…")],
)
def test_lines_are_clipped_to_80_characters_in_errors(length: int, shown: str) -> None:
    assert parse_apps("x" * length) == ((), (f"line 1: expected 4 fields: {shown!r}",))
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
        (f"{UUID}, 12\n", f"line 1: expected 4 fields: '{UUID}, 12'"),
        (f"{UUID}, 1, a, 2\nGPU-2, x\n", "line 2: expected 4 fields: 'GPU-2, x'"),
    ],
)
def test_garbage_apps_name_the_line_and_field_and_keep_the_others(text: str, message: str) -> None:
    good = "GPU-9, 99, kept, 9\n"
    processes, skipped = parse_apps(good + text)
    assert skipped == (message.replace("line 2", "line 3").replace("line 1", "line 2"),)
    kept = [99, 1] if text.count("\n") == 2 else [99]  # the good line, and the one before the bad one
    assert [p.pid for p in processes] == kept


def test_apps_fields_in_order() -> None:
    procs, skipped = parse_apps(f"{UUID}, 12, a, 100\n\nGPU-2, 13, b, [N/A]\nMIG-3, 14, c, 1\n")
    assert [(p.gpu_uuid, p.pid, p.name, p.used_mib) for p in procs] == [
        (UUID, 12, "a", 100.0),
        ("GPU-2", 13, "b", NA),
        ("MIG-3", 14, "c", 1.0),
    ]
    assert skipped == ()


def test_a_line_break_in_a_process_name_continues_its_record() -> None:
    text = f"{UUID}, 12, evil\nname, 5\n12, x\n, 7\n{UUID}, 13, ok, 1\nMIG-1, 14, two\nlines, 2\n"
    procs, skipped = parse_apps(text)
    assert [(p.gpu_uuid, p.pid, p.name, p.used_mib) for p in procs] == [
        (UUID, 12, "evil name, 5 12, x", 7.0),
        (UUID, 13, "ok", 1.0),
        ("MIG-1", 14, "two lines", 2.0),
    ]
    assert skipped == ()
    # A first line that starts no record is a record of its own (and not one that can be read).
    assert parse_apps("x\ny\n") == ((), ("line 1: expected 4 fields: 'x y'",))
    # A record that spans lines is named by its first line.
    _, skipped = parse_apps("GPU-1, 1, a, 2\nGPU-2, 2, b\nc\n")
    assert skipped == ("line 2: expected 4 fields: 'GPU-2, 2, b c'",)


def test_names_and_uuids_are_cleaned() -> None:
    line = gpu_line(
        {"name": "NVIDIA H100\x1b[2J\u202e", "uuid": "GPU-2222\x1b]0;t\x07", "pci.bus_id": "0\x9b1m"}
    )
    (smi,) = parse_gpus(line, node="n")
    assert (smi.gpu.model, smi.gpu.uuid, smi.pci_bus_id) == ("H100", "GPU-2222", "0")
    (proc,), _ = parse_apps("GPU-2222\u200b, 7, \x1b[31mpy\u202ethon\x1b[0m , 1\n")
    assert (proc.gpu_uuid, proc.name) == ("GPU-2222", "python")
    long, _ = parse_apps(f"{UUID}, 8, {'x' * 300}, 1\n")
    assert long[0].name == "x" * 255 + "…"


def test_users_from_ps() -> None:
    text = "  429 trainer\n 1 root\nerror: process ID list syntax error\n7\n 12 \x1b[2Jmallory\n"
    assert parse_users(text) == {429: "trainer", 1: "root", 12: "mallory"}
    assert parse_users("") == {}


# --- the command and its sections ---------------------------------------------------------------------------


def test_sections_are_split_on_this_polls_markers() -> None:
    text = (
        "0, a\n\n--aios-tui t1 gpus 0\n"
        "x\n--aios-tui t0 apps 0\n--aios-tui t1 apps 3\n"
        "--aios-tui t1 apps 0\n--aios-tui t1 bogus 0\n--aios-tui t1 events x\n--aios-tui t1 events 9\n"
        "late\n"
    )
    assert split_sections(text, "t1") == {
        "gpus": (0, "0, a\n"),
        "apps": (3, "x\n--aios-tui t0 apps 0"),
        "events": (9, "--aios-tui t1 apps 0\n--aios-tui t1 bogus 0\n--aios-tui t1 events x"),
    }
    assert split_sections("0, a\n", "t1") == {}


def test_the_poll_command_line() -> None:
    command = poll_command("nvidia-smi", limit=7.5, token="abc")
    assert command.startswith("exec sh -c ")
    outer = shlex.split(command)[3]
    assign, _, rest = outer.partition("\nif command")
    inner = shlex.split(assign.removeprefix("s="))[0]
    assert ("if command" + rest).split("\n") == [
        'if command -v timeout >/dev/null 2>&1; then exec timeout -k 2 7.5 sh -c "$s"; fi',
        'sh -c "$s" & p=$!',
        '(sleep 7.5; trap "" TERM; kill -TERM 0; sleep 2; kill -KILL 0) >/dev/null 2>&1 &',
        'wait $p; r=$?; trap "" TERM; kill -TERM 0 2>/dev/null; exit $r',
    ]
    assert inner.split("\n") == [
        'm() { printf "\\n--aios-tui abc %s %s\\n" "$1" "$2"; }',
        f"{query_command('nvidia-smi', 'gpus')}; m gpus $?",
        f'a=$({query_command("nvidia-smi", "apps")} 2>&1); r=$?; printf "%s\\n" "$a"; m apps $r',
        f"{query_command('nvidia-smi', 'events')} 2>&1; m events $?",
        'p=$(printf "%s\\n" "$a" | { n=0; while IFS=", " read -r u i x; do case $i in ""|*[!0-9]*) ;; '
        '*) n=$((n+1)); [ $n -le 1024 ] && echo "$i";; esac; done; })',
        "p=$(echo $p)",
        'if [ -n "$p" ]; then ps -o pid=,user= -p "$p" 2>&1; m users $?; else m users 0; fi',
    ]


FAKE_SMI = """#!/bin/sh
case "$*" in
    *--query-compute-apps=*) printf '%s\\n' "$APPS" ;;
    *clocks_event_reasons*) echo "0, 0x0000000000000004" ;;
    *) [ -n "$HANG" ] && exec sleep 60; echo "0, GPU-1, NVIDIA H200" ;;
esac
"""


def run_poll(tmp: Path, *, limit: float = 5.0, path: str | None = None, **env: str) -> tuple[int, str, float]:
    """:func:`poll_command` run by ``bash`` in a session of its own, as sshd runs it, with a fake
    ``nvidia-smi``: its exit status, output and seconds taken."""
    smi = tmp / "nvidia-smi"
    smi.write_text(FAKE_SMI)
    smi.chmod(0o755)
    environ = {"PATH": path or os.environ["PATH"], **env}
    began = time.monotonic()
    done = subprocess.run(
        ["/bin/bash", "-c", poll_command(str(smi), limit=limit, token="t")],
        check=False,
        capture_output=True,
        text=True,
        env=environ,
        start_new_session=True,
        timeout=30,
    )
    return done.returncode, done.stdout, time.monotonic() - began


def alive(tmp: Path) -> list[str]:
    """Command lines of the processes still running that name ``tmp`` or run the fake's ``sleep 60``."""
    out = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        line = b" ".join(argv).decode(errors="replace")
        if entry.name.isdigit() and (str(tmp) in line or line.strip() == "sleep 60"):
            out.append(line)
    return out


def test_the_poll_command_runs_the_queries_and_ps_in_sh(tmp_path: Path) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    apps = f"GPU-1, {os.getpid()}, python, 100\nGPU-1, 1, init, 2"
    status, out, _ = run_poll(tmp_path, APPS=apps)
    sections = split_sections(out, "t")
    assert status == 0
    assert sections["gpus"] == (0, "0, GPU-1, NVIDIA H200\n")
    assert sections["apps"] == (0, apps + "\n")
    assert sections["events"] == (0, "0, 0x0000000000000004\n")
    users_status, users = sections["users"]
    assert (users_status, parse_users(users)) == (
        0,
        {os.getpid(): me, 1: Path("/proc/1").owner()},
    )
    status, out, _ = run_poll(tmp_path, APPS="")
    assert split_sections(out, "t")["users"] == (0, "")


def test_the_poll_command_without_nvidia_smi(tmp_path: Path) -> None:
    smi = str(tmp_path / "absent")
    command = poll_command(smi, limit=5, token="t")
    done = subprocess.run(
        ["/bin/bash", "-c", command], check=False, capture_output=True, text=True, timeout=30
    )
    sections = split_sections(done.stdout, "t")
    assert [(name, status) for name, (status, _) in sections.items()] == [
        ("gpus", 127),
        ("apps", 127),
        ("events", 127),
        ("users", 0),
    ]
    assert "absent" in done.stderr


@pytest.mark.parametrize("with_timeout", [True, False])
def test_a_hung_command_is_killed_with_its_children(tmp_path: Path, with_timeout: bool) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "sleep", "ps", "cat") + (("timeout",) if with_timeout else ()):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    status, out, took = run_poll(tmp_path, limit=0.3, path=str(bin_dir), HANG="1")
    # coreutils timeout: 124 after TERM; the shell's own watchdog: the session killed by TERM.
    assert status == (124 if with_timeout else -signal.SIGTERM)
    assert (split_sections(out, "t"), took < 0.3 + KILL_AFTER) == ({}, True)
    # Nothing left but, for a moment, the shell's watchdog making sure with KILL.
    deadline = time.monotonic() + KILL_AFTER + 1.0
    while (left := alive(tmp_path)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert left == []


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
