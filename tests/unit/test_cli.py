"""The command line: flags anywhere, snapshot text and JSON, errors as exit status 2 with a clear message."""

from __future__ import annotations

import dataclasses
import enum
import io
import json
import os
import stat
import subprocess
import sys
from collections.abc import Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest

from aios_tui import cli
from aios_tui.config import Settings
from aios_tui.domain import (
    NA,
    Condition,
    Endpoint,
    FleetSnapshot,
    Gpu,
    Health,
    Hpa,
    Job,
    JobState,
    NaType,
    Node,
    Pod,
    SourceHealth,
    SourceState,
    Taint,
    Throttle,
)
from aios_tui.render.jsonout import snapshot_to_json

FIVE_LISTS = ("nodes", "gpus", "jobs", "endpoints", "sources")


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test reads the developer's config or writes to their state directory."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for var in [v for v in os.environ if v.startswith("AIOS_TUI_")]:
        monkeypatch.delenv(var)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def snapshot_json(capsys: pytest.CaptureFixture[str], *argv: str) -> dict[str, Any]:
    code, out, err = run(capsys, *argv)
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert isinstance(doc, dict)
    return doc


def shape(doc: Mapping[str, Any]) -> list[tuple[str, str, str, int]]:
    """What a seed decides and time does not change: each node's name, pool, zone and GPU count."""
    return [(n["name"], n["pool"], n["zone"], n["gpus_total"]) for n in doc["nodes"]]


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0
    assert out == f"aios-tui {version('aios-tui')}\n"
    assert out == "aios-tui 0.1.0\n"
    assert run(capsys, "snapshot", "--version")[:2] == (0, out)


def test_snapshot_json_says_which_endpoints_breach_and_what_happened(
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = snapshot_json(capsys, "snapshot", "--json", "--sim-nodes", "40", "--seed", "7")
    by_key = {e["namespace"] + "/" + e["name"]: e for e in doc["endpoints"]}
    breaching = {
        k for k, e in by_key.items() if e["p99_ms"] > e["p99_slo_ms"] or e["error_rate"] > e["error_slo"]
    }
    assert "ml-prod/ranking-dlrm-feed" in breaching and set(doc["slo_breached_since"]) == breaching
    assert (
        doc["events"] and {"time", "kind", "key", "reason", "message", "warning"} <= doc["events"][0].keys()
    )
    times = [e["time"] for e in doc["events"]]
    assert times == sorted(times, reverse=True)
    assert any(e["reason"] == "XID 79" and e["kind"] == "gpu" for e in doc["events"])


def test_snapshot_json_shape(capsys: pytest.CaptureFixture[str]) -> None:
    doc = snapshot_json(capsys, "--sim-nodes", "12", "snapshot", "--json")
    for key in FIVE_LISTS:
        assert isinstance(doc[key], list), key
    assert {"pods", "totals", "timestamp", "context"} <= doc.keys()
    assert isinstance(doc["pods"], int)
    assert len(doc["nodes"]) == 12
    names = {n["name"] for n in doc["nodes"]}
    assert len(names) == 12
    assert {g["node"] for g in doc["gpus"]} <= names
    assert len(doc["gpus"]) == sum(n["gpus_total"] for n in doc["nodes"])
    t = doc["totals"]
    assert (t["nodes"], t["gpus"], t["endpoints"]) == (12, len(doc["gpus"]), len(doc["endpoints"]))
    assert t["gpus_used"] == sum(1 for g in doc["gpus"] if g["pod"])
    assert t["jobs_queued"] == sum(1 for j in doc["jobs"] if j["state"] == "Queued")
    assert [s["name"] for s in doc["sources"]] == ["sim"]
    assert doc["sources"][0]["state"] == "ok"
    gpu = doc["gpus"][0]
    assert {f.name for f in dataclasses.fields(Gpu)} == gpu.keys()
    assert {f.name for f in dataclasses.fields(Node)} == doc["nodes"][0].keys()
    assert isinstance(doc["nodes"][0]["labels"], dict)
    assert isinstance(doc["nodes"][0]["health"], int)


def test_snapshot_is_deterministic_for_a_seed(capsys: pytest.CaptureFixture[str]) -> None:
    a = snapshot_json(capsys, "snapshot", "--json", "--sim-nodes", "20", "--seed", "3")
    b = snapshot_json(capsys, "snapshot", "--json", "--sim-nodes", "20", "--seed", "3")
    c = snapshot_json(capsys, "snapshot", "--json", "--sim-nodes", "20", "--seed", "4")
    assert shape(a) == shape(b)
    assert [g["uuid"] for g in a["gpus"]] == [g["uuid"] for g in b["gpus"]]
    assert shape(a) != shape(c) or [g["uuid"] for g in a["gpus"]] != [g["uuid"] for g in c["gpus"]]


def test_global_flags_before_or_after_the_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    before = snapshot_json(capsys, "--sim-nodes", "9", "--seed", "5", "snapshot", "--json")
    after = snapshot_json(capsys, "snapshot", "--sim-nodes", "9", "--json", "--seed", "5")
    mixed = snapshot_json(capsys, "--seed", "5", "snapshot", "--sim-nodes", "9", "--json")
    assert len(before["nodes"]) == 9
    assert shape(before) == shape(after) == shape(mixed)


def test_flags_after_the_subcommand_win(capsys: pytest.CaptureFixture[str]) -> None:
    doc = snapshot_json(capsys, "--sim-nodes", "4", "snapshot", "--sim-nodes", "6", "--json")
    assert len(doc["nodes"]) == 6


def test_snapshot_text(capsys: pytest.CaptureFixture[str]) -> None:
    doc = snapshot_json(capsys, "snapshot", "--json", "--sim-nodes", "30", "--seed", "2")
    code, out, err = run(capsys, "snapshot", "--sim-nodes", "30", "--seed", "2")
    assert (code, err) == (0, "")
    t = doc["totals"]
    assert out.startswith("aios-tui snapshot ")
    assert f"{t['nodes_ready']}/{t['nodes']} ready" in out
    assert f"{t['gpus']} total, {t['gpus_used']} used" in out
    assert "sim ok" in out
    for title in ("Nodes with problems", "Queued and failed jobs", "Endpoints"):
        assert f"\n{title} (" in out
    assert f"\nEndpoints ({len(doc['endpoints'])})\n" in out
    assert "\x1b[" not in out  # no colour codes when not a terminal


def test_config_file_and_read_only_reach_the_console(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[Settings] = []

    def fake_console(settings: Settings) -> int:
        seen.append(settings)
        return 0

    monkeypatch.setattr(cli, "run_console", fake_console)
    path = tmp_path / "c.toml"
    path.write_text("role = 'viewer'\n[sim]\nnodes = 5\n")
    assert run(capsys, "--config", str(path), "--read-only", "--seed", "9") == (0, "", "")
    (s,) = seen
    assert (s.role, s.read_only, s.sim.nodes, s.sim.seed, s.config_file) == ("viewer", True, 5, 9, path)


# --- errors ----------------------------------------------------------------------------------------------


def test_unknown_flag_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "snapshot", "--bogus")
    assert code == 2
    assert out == ""
    assert "unrecognized arguments: --bogus" in err


def test_bad_flag_value_names_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "snapshot", "--sim-nodes", "lots")
    assert (code, out) == (2, "")
    assert err == 'aios-tui: --sim-nodes: expected an integer from 1 to 5000, got "lots"\n'


def test_bad_config_names_file_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text("[sim]\nnodes = 'lots'\n")
    code, out, err = run(capsys, "--config", str(path), "snapshot")
    assert (code, out) == (2, "")
    assert err == f'aios-tui: {path}: [sim] nodes: expected an integer from 1 to 5000, got "lots"\n'


def test_bad_default_config_is_an_error_too(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "config" / "aios-tui"
    home.mkdir(parents=True)
    (home / "config.toml").write_text("[sim]\nnoeds = 3\n")
    code, _, err = run(capsys, "snapshot")
    assert code == 2
    assert '[sim] noeds: unknown setting; did you mean "nodes"?' in err


def test_missing_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "snapshot", "--config", str(tmp_path / "nope.toml"))
    assert code == 2
    assert "nope.toml: no such file (given by --config)" in err
    # The default path missing is not an error: the embedded fleet runs.
    assert run(capsys, "snapshot", "--sim-nodes", "3")[0] == 0


def test_unusable_real_source_is_refused_unless_sim(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[aws]\nenabled = true\nprofiles = ["nope"]\n')
    (tmp_path / "aws-config").write_text("")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    code, out, err = run(capsys, "--config", str(path), "snapshot", "--sim-nodes", "3")
    assert (code, out) == (2, "")
    assert err == (
        f"aios-tui: {path}: [aws] profiles: AWS profile nope is not defined in the AWS config or credentials "
        "files (none defines a profile)\n"
    )
    doc = snapshot_json(capsys, "--config", str(path), "snapshot", "--sim", "--sim-nodes", "3", "--json")
    assert len(doc["nodes"]) == 3


def test_ssh_host_without_known_hosts_is_an_error_on_that_host_not_a_silent_accept(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    missing = tmp_path / "no_known_hosts"
    path.write_text(f"[[ssh_hosts]]\nhost = 'gpu-7'\nknown_hosts = '{missing}'\ntimeout = 2.0\n")
    code, out, err = run(capsys, "--config", str(path), "snapshot")
    assert code == 1  # its only source failed: nothing in the snapshot is data, and the exit status says so
    assert "ssh error" in out and "known_hosts" in out and "host keys are always verified" in out
    assert err.startswith("aios-tui: source ssh failed: ")


def test_ctrl_c_exits_130_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    async def interrupted(*_: object) -> FleetSnapshot:
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "_fetch_once", interrupted)
    assert run(capsys, "snapshot", "--sim-nodes", "3") == (130, "", "")


def test_logs_go_to_the_state_file_not_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, "snapshot", "--sim-nodes", "3")
    assert (code, err) == (0, "")
    log = (tmp_path / "state" / "aios-tui" / "aios-tui.log").read_text()
    assert "aios-tui 0.1.0: snapshot" in log


def test_the_log_and_its_directory_are_private_even_when_they_were_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The state directory and aios-tui.log used to be 0755 and 0644: a log names hosts, nodes and errors."""
    state = tmp_path / "state" / "aios-tui"
    state.mkdir(parents=True, mode=0o755)
    state.chmod(0o755)  # as an older version left it
    log = state / "aios-tui.log"
    log.write_text("")
    log.chmod(0o644)
    assert run(capsys, "snapshot", "--sim-nodes", "3")[0] == 0
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE(log.stat().st_mode) == 0o600


def test_a_bad_log_level_is_a_usage_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIOS_TUI_LOG_LEVEL", "bogus")
    code, out, err = run(capsys, "snapshot", "--sim-nodes", "3")
    assert (code, out) == (2, "")
    expected = "DEBUG, INFO, WARNING, ERROR or CRITICAL"
    assert err == f'aios-tui: environment: AIOS_TUI_LOG_LEVEL: expected {expected}, got "bogus"\n'
    monkeypatch.setenv("AIOS_TUI_LOG_LEVEL", "debug")
    assert run(capsys, "snapshot", "--sim-nodes", "3")[0] == 0


# --- JSON conversion ----------------------------------------------------------------------------------------


def _reference(value: Any) -> Any:
    """The slow, obvious conversion the fast one must agree with."""
    if value is NA or isinstance(value, NaType):
        return None
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _reference(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _reference(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_reference(v) for v in value]
    return value


def test_json_conversion_matches_the_reference() -> None:
    node = Node(
        name="n1",
        source="sim",
        pool="p",
        zone="z",
        instance_type="p5",
        gpus_total=8,
        conditions=(Condition("Ready", "True"),),
        taints=(Taint("gpu", "bad"),),
        labels={"topology.kubernetes.io/zone": "z"},
        health=Health.WARN,
    )
    gpu = Gpu(node="n1", index=0, uuid="GPU-1", model="H100", util=55.5, throttle=Throttle.HW_THERMAL)
    snap = FleetSnapshot(
        timestamp=12.5,
        nodes=(node,),
        gpus=(gpu,),
        pods=(Pod("ml", "p0"),),
        jobs=(Job("ml", "j", "sim", 2, 8, state=JobState.QUEUED),),
        endpoints=(Endpoint("ml", "e", "sim", hpa=Hpa("h", 1, 4, "qps", 10.0)),),
        sources=(SourceHealth("sim", "sim", SourceState.OK, last_ok=12.0),),
        context="sim",
    )
    doc = snapshot_to_json(snap)
    for key in ("nodes", "gpus", "jobs", "endpoints", "sources"):
        assert doc[key] == _reference(getattr(snap, key)), key
    assert doc["totals"] == _reference(snap.totals)
    assert (doc["pods"], doc["timestamp"], doc["context"]) == (1, 12.5, "sim")
    assert doc["gpus"][0]["temp"] is None
    assert doc["gpus"][0]["throttle"] == int(Throttle.HW_THERMAL)
    assert doc["nodes"][0]["taints"] == [{"key": "gpu", "value": "bad", "effect": "NoSchedule"}]
    assert doc["jobs"][0]["state"] == "Queued"
    assert doc["endpoints"][0]["hpa"]["current"] is None
    assert doc["endpoints"][0]["qps"] is None
    json.dumps(doc, allow_nan=False)  # strict JSON: no NaN anywhere


def test_json_has_no_nan() -> None:
    gpu = Gpu(node="n", index=0, uuid="u", model="m", util=float("nan"), power=float("inf"))
    doc = snapshot_to_json(FleetSnapshot(timestamp=0.0, gpus=(gpu,)))
    assert (doc["gpus"][0]["util"], doc["gpus"][0]["power"]) == (None, None)
    json.dumps(doc, allow_nan=False)


# --- as a real process -----------------------------------------------------------------------------------


def test_runs_as_a_process(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIOS_TUI_")}
    env |= {"XDG_CONFIG_HOME": str(tmp_path / "c"), "XDG_STATE_HOME": str(tmp_path / "s")}
    cmd = [sys.executable, "-m", "aios_tui.cli"]
    done = subprocess.run(
        [*cmd, "--sim-nodes", "40", "snapshot", "--json"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["nodes"]) == 40
    bad = tmp_path / "bad.toml"
    bad.write_text("[sim]\nseed = -1\n")
    done = subprocess.run(
        [*cmd, "snapshot", "--config", str(bad)],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"aios-tui: {bad}: [sim] seed: expected an integer from 0 to 4294967295, got -1\n"


# --- plan and act ------------------------------------------------------------------------------------------


def sim_nodes(capsys: pytest.CaptureFixture[str], n: int = 12) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = snapshot_json(capsys, "snapshot", "--json", "--sim-nodes", str(n))["nodes"]
    return nodes


def audit_lines(tmp_path: Path, phase: str = "end") -> list[dict[str, Any]]:
    """The audit log's lines of one phase: ``end`` (how each attempt ended), ``intent``, ``step``; or all."""
    path = tmp_path / "state" / "aios-tui" / "audit.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return [ln for ln in lines if phase == "all" or ln.get("phase", "end") == phase]


def test_plan_launch_json_places_the_gang(capsys: pytest.CaptureFixture[str]) -> None:
    nodes = {n["name"]: n for n in sim_nodes(capsys)}
    code, out, err = run(
        capsys,
        "plan",
        "launch",
        "--workers",
        "1",
        "--gpus-per-worker",
        "2",
        "--name",
        "ml/t1",
        "--json",
        "--sim-nodes",
        "12",
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert (doc["action"], doc["target"], doc["ok"], doc["placed"]) == ("launch", "ml/t1", True, True)
    [host] = doc["placement"]["nodes"]
    assert nodes[host]["gpus_allocatable"] - nodes[host]["gpus_requested"] >= 2
    assert doc["params"]["placement"] == [host]
    assert {"label": "Placement", "value": f"rank 0 → {host}"} in doc["lines"]


def test_plan_launch_that_cannot_fit_exits_3_with_the_reason(capsys: pytest.CaptureFixture[str]) -> None:
    args = ("--sim-nodes", "12", "plan", "launch", "--gpu-model", "h100", "--json")
    code, out, err = run(capsys, *args, "--workers", "3", "--gpus-per-worker", "8")
    assert code == 3
    doc = json.loads(out)
    assert doc["ok"] is False and doc["placed"] is False
    assert doc["params"]["gpu_model"] == "H100"  # "h100" as typed, matched to the fleet's name
    assert doc["placement"]["reason"] in err
    assert err.startswith("aios-tui: cannot launch ")
    assert doc["whatif"]["nodes"] >= 1
    # Queueing is offered where the backend starts queued gangs whole; --queue takes it.
    queue = {"label": "queue it: it starts, whole, when it fits", "args": {"queue": "y"}}
    assert queue in doc["alternatives"]
    code, out, err = run(capsys, *args, "--workers", "3", "--gpus-per-worker", "8", "--queue")
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["ok"] and doc["queued"] and doc["params"]["placement"] == []
    # Larger than the fleet and its pools grown to their limits: refused before any placement is tried.
    code, out, err = run(capsys, *args, "--workers", "400", "--gpus-per-worker", "8")
    assert code == 3 and "3200 needs" not in err
    assert "400×8 needs 3,200 H100s: the fleet has " in err


def test_plan_drain_json_has_the_drain_plan(capsys: pytest.CaptureFixture[str]) -> None:
    name = sim_nodes(capsys)[1]["name"]
    code, out, err = run(capsys, "plan", "drain", name, "--allow-empty-dir", "--json", "--sim-nodes", "12")
    doc = json.loads(out)
    assert doc["action"] == "drain" and doc["params"]["nodes"] == [name]
    assert doc["params"]["allow_empty_dir"] is True
    dp = doc["drain_plan"]
    assert dp["nodes"] == [name]
    assert {m["node"] for m in dp["evict"] + dp["blocked"] + dp["skipped"]} <= {name}
    assert code == (0 if doc["ok"] else 3)
    assert (err == "") == doc["ok"]


def test_plan_of_an_unknown_target_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "plan", "scale", "ml/absent", "2", "--sim-nodes", "5")
    assert (code, out, err) == (3, "", "aios-tui: endpoint ml/absent not found\n")
    code, _, err = run(capsys, "plan", "cordon", "nope-1", "nope-2", "--sim-nodes", "5")
    assert (code, err) == (3, "aios-tui: nodes nope-1, nope-2 not found\n")


def test_plan_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "plan")[0] == 2
    assert run(capsys, "plan", "launch", "--workers", "0", "--gpus-per-worker", "1")[0] == 2
    code, _, err = run(capsys, "plan", "launch", "--workers", "1", "--gpus-per-worker", "1", "--name", "A/B")
    assert code == 2 and "not a valid Kubernetes name" in err


def test_act_cordon_with_yes_runs_and_audits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = sim_nodes(capsys)[0]["name"]
    code, out, err = run(capsys, "--sim-nodes", "12", "act", "cordon", name, "--yes")
    assert code == 0, err
    assert out.startswith(f"Cordon {name}\n")
    assert f"Cordon {name}: done\n  done: cordon {name}\n" in out
    [line] = audit_lines(tmp_path)
    assert (line["action"], line["outcome"], line["params"]["nodes"]) == ("cordon", "ok", [name])


def test_act_without_a_terminal_or_yes_refuses(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    name = sim_nodes(capsys)[0]["name"]
    code, _, err = run(capsys, "act", "cordon", name, "--sim-nodes", "12")
    assert code == 3
    assert "no terminal to confirm on: pass --yes" in err
    [refused] = audit_lines(tmp_path, "all")  # refused, and audited: nothing ran, no intent
    assert (refused["outcome"], refused["action"], refused["target"]) == ("refused", "cordon", name)
    assert refused["message"].startswith("no terminal to confirm on")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_act_asks_on_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    name = sim_nodes(capsys)[0]["name"]
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    code, _, err = run(capsys, "act", "uncordon", name, "--sim-nodes", "12")
    assert code == 3  # not cordoned: nothing to do
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    code, _, err = run(capsys, "act", "cordon", name, "--sim-nodes", "12")
    assert code == 3 and err.endswith("aios-tui: not confirmed: nothing was done\n")
    assert "Proceed? [y/N]" in err
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    code, _, err = run(capsys, "act", "cordon", name, "--sim-nodes", "12")
    assert code == 0, err
    outcomes = [(line["action"], line["outcome"], line["message"]) for line in audit_lines(tmp_path)]
    assert outcomes == [
        (
            "uncordon",
            "refused",
            f"cannot uncordon {name}: {name} is already uncordoned: did you mean cordon (c)?",
        ),
        ("cordon", "refused", "not confirmed: nothing was done"),
        ("cordon", "ok", f"Cordon {name}: done"),
    ]


def test_act_drain_of_two_nodes_needs_admin_and_the_phrase(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a, b = (n["name"] for n in sim_nodes(capsys)[1:3])  # two whose pods fit elsewhere at the pinned hour
    args = ("act", "drain", a, b, "--allow-empty-dir", "--allow-unmanaged", "--sim-nodes", "12", "--yes")
    code, _, err = run(capsys, *args)
    assert code == 3 and "role operator may not drain 2 at once" in err
    config = tmp_path / "admin.toml"
    config.write_text("role = 'admin'\n")
    code, _, err = run(capsys, "--config", str(config), *args)
    assert code == 3 and "add --confirm '2 nodes'" in err
    code, out, err = run(
        capsys, "--config", str(config), *args, "--confirm", "2 nodes", "--pdb-timeout", "0", "--json"
    )
    doc = json.loads(out)
    assert doc["plan"]["confirm_phrase"] == "2 nodes"
    result = doc["result"]
    assert code == (0 if result["ok"] else 4)
    assert result["done"][:2] == [f"cordon {a}", f"cordon {b}"]
    assert audit_lines(tmp_path)[-1]["outcome"] == ("ok" if result["ok"] else "failed")


def test_act_failing_midway_exits_4_and_lists_what_was_done(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aios_tui.sources.sim import SimSource

    a, b = (n["name"] for n in sim_nodes(capsys)[:2])

    async def broken(self: SimSource, node: str, cordoned: bool) -> None:
        if node == b:
            raise RuntimeError("connection reset")
        await original(self, node, cordoned)

    original = SimSource.set_cordon
    monkeypatch.setattr(SimSource, "set_cordon", broken)
    code, out, err = run(capsys, "act", "cordon", a, b, "--yes", "--sim-nodes", "12")
    assert code == 4
    assert f"  done: cordon {a}\n" in out
    assert f"  not done: cordon {b}: RuntimeError: connection reset\n" in out
    assert "1 of 2 steps done" in err


def test_read_only_act_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    name = sim_nodes(capsys)[0]["name"]
    code, _, err = run(capsys, "act", "cordon", name, "--yes", "--read-only", "--sim-nodes", "12")
    assert code == 3 and "read-only mode: cordon is not allowed" in err


def test_act_ctrl_c_exits_130(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from aios_tui.ops import Ops

    name = sim_nodes(capsys)[0]["name"]

    async def interrupted(*_: object, **__: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Ops, "execute", interrupted)
    assert run(capsys, "act", "cordon", name, "--yes", "--sim-nodes", "12")[0] == 130


def _h100_pool() -> dict[str, Any]:
    """The first H100 pool of the 12-node fleet ``--sim-nodes 12`` draws (seed 0)."""
    from aios_tui.sources.sim import SimSource

    p = next(p for p in SimSource(seed=0, nodes=12).fetch_now().pools if p.gpu_model == "H100")
    return {"name": p.name, "nodes": p.nodes, "max_size": p.max_size, "price_per_hour": p.price_per_hour}


def test_plan_scale_pool_json_and_limits(capsys: pytest.CaptureFixture[str]) -> None:
    pool = _h100_pool()
    code, out, err = run(
        capsys, "plan", "scale-pool", pool["name"], str(pool["max_size"]), "--json", "--sim-nodes", "12"
    )
    assert (code, err) == (0, "")
    doc = json.loads(out)
    assert doc["action"] == "scale-pool" and doc["params"]["desired"] == pool["max_size"]
    assert doc["pool_scale"]["from"] == pool["nodes"]
    added = pool["max_size"] - pool["nodes"]
    assert abs(doc["pool_scale"]["cost_delta_per_hour"] - added * pool["price_per_hour"]) < 0.01
    code, _, err = run(
        capsys, "plan", "scale-pool", pool["name"], str(pool["max_size"] + 1), "--sim-nodes", "12"
    )
    assert code == 3 and "outside the pool's limits" in err
    code, _, err = run(capsys, "plan", "scale-pool", "nope", "1", "--sim-nodes", "12")
    assert (code, err) == (3, "aios-tui: node pool nope not found\n")


def test_act_scale_pool_runs_and_audits(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pool = _h100_pool()
    code, out, err = run(
        capsys,
        "--sim-nodes",
        "12",
        "act",
        "scale-pool",
        pool["name"],
        str(pool["max_size"]),
        "--yes",
        "--json",
    )
    assert code == 0, err
    assert json.loads(out)["result"]["ok"] is True
    [line] = audit_lines(tmp_path)
    assert (line["action"], line["target"], line["outcome"]) == ("scale-pool", pool["name"], "ok")
    # shrinking needs admin (exit 3, refused before anything runs)
    code, _, err = run(capsys, "--sim-nodes", "12", "act", "scale-pool", pool["name"], "0", "--yes")
    assert code == 3 and "may not scale-pool down" in err


def test_act_of_a_one_step_action_says_done_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``act scale-pool`` used to print ``done`` three times: in the progress, the result and its step."""
    code, out, err = run(capsys, "--sim-nodes", "40", "act", "scale-pool", "h100-a", "+1", "--yes")
    assert code == 0, err
    title = out.splitlines()[0]
    assert (out + err).count("done") == 1, out + err
    assert f"{title}: done\n" in out and f"  {title} …\n" in err
