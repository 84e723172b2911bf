"""Actions: plan → execute on fake sources, permissions, confirmation, and the audit log."""

from __future__ import annotations

import datetime as dt
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from aios_tui.domain import Endpoint, FleetSnapshot, Hpa, Node
from aios_tui.ops import (
    ActionRefused,
    Actor,
    AuditEntry,
    AuditError,
    AuditLog,
    ConfirmationError,
    Ops,
    PermissionDenied,
    Role,
    TargetNotFound,
    UnauditedAction,
    default_audit_path,
)
from aios_tui.sources.base import Scalable, Source, SourceData
from aios_tui.ui.harness import START


class FakeScaler:
    """A source that can scale; its endpoints change when asked."""

    kind = "fake"
    interval = 1.0
    timeout = 1.0

    def __init__(self, name: str, endpoints: tuple[Endpoint, ...], nodes: tuple[Node, ...] = ()) -> None:
        self.name = name
        self.endpoints = {e.key: e for e in endpoints}
        self.nodes = nodes
        self.calls: list[tuple[str, str, int]] = []
        self.fail: Exception | None = None
        self.audit_path: Path | None = None
        self.audited_before: list[list[dict[str, object]]] = []
        """The audit log's lines at each call: the intent must already be on disk."""

    async def fetch(self) -> SourceData:
        return SourceData(nodes=self.nodes, endpoints=tuple(self.endpoints.values()))

    async def close(self) -> None:
        pass

    async def scale_endpoint(self, namespace: str, name: str, replicas: int) -> None:
        self.audited_before.append(_lines(self.audit_path))
        if self.fail is not None:
            raise self.fail
        self.calls.append((namespace, name, replicas))
        key = f"{namespace}/{name}"
        self.endpoints[key] = replace(self.endpoints[key], replicas_desired=replicas)


def _lines(path: Path | None) -> list[dict[str, object]]:
    if path is None or not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


class FakeReadOnlySource:
    """A source without any capability (like Prometheus)."""

    name = "prom"
    kind = "prometheus"
    interval = 1.0
    timeout = 1.0

    async def fetch(self) -> SourceData:
        return SourceData()

    async def close(self) -> None:
        pass


def h100(name: str, free: int) -> Node:
    return Node(
        name=name,
        source="sim",
        pool="h100",
        zone="z1",
        instance_type="p5.48xlarge",
        gpu_model="H100",
        gpus_total=8,
        gpus_allocatable=8,
        gpus_requested=8 - free,
        price_per_hour=98.32,
    )


def endpoint(
    namespace: str = "ml-staging", name: str = "llm-serve", replicas: int = 3, **kw: object
) -> Endpoint:
    return Endpoint(
        namespace=namespace,
        name=name,
        source="sim",
        replicas_desired=replicas,
        replicas_ready=replicas,
        gpus_per_replica=4,
        gpu_model="H100",
        **kw,  # type: ignore[arg-type]
    )


@dataclass
class World:
    ops: Ops
    source: FakeScaler
    audit: AuditLog
    pokes: list[str] = field(default_factory=list)

    def lines(self) -> list[dict[str, object]]:
        """Every line of the audit log: intents, steps and ends."""
        if not self.audit.path.exists():
            return []
        return [json.loads(line) for line in self.audit.path.read_text().splitlines()]

    def ends(self) -> list[dict[str, object]]:
        """How each attempt ended (a refusal is only that line)."""
        return [line for line in self.lines() if line.get("phase", "end") == "end"]


def make_world(
    tmp_path: Path,
    *endpoints: Endpoint,
    role: Role = Role.OPERATOR,
    read_only: bool = False,
    audit_path: Path | None = None,
    extra: tuple[Source, ...] = (),
) -> World:
    src = FakeScaler("sim", endpoints or (endpoint(),), nodes=(h100("a", 8), h100("b", 4)))
    audit = AuditLog(audit_path or tmp_path / "state" / "aios-tui" / "audit.jsonl")
    src.audit_path = audit.path

    def snapshot() -> FleetSnapshot:
        return FleetSnapshot(timestamp=0.0, nodes=src.nodes, endpoints=tuple(src.endpoints.values()))

    world = World(ops=None, source=src, audit=audit)  # type: ignore[arg-type]
    world.ops = Ops(
        {"sim": src, **{s.name: s for s in extra}},
        snapshot,
        audit,
        actor=Actor("alice", role),
        read_only=read_only,
        after_action=world.pokes.append,
    )
    return world


def test_fake_scaler_is_scalable() -> None:
    assert isinstance(FakeScaler("sim", ()), Scalable)
    assert isinstance(FakeScaler("sim", ()), Source)


async def test_plan_then_execute_scales_with_the_intent_on_disk_before_the_change(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)

    assert plan.ok
    assert plan.action == "scale"
    assert plan.target == "ml-staging/llm-serve"
    assert plan.source == "sim"
    assert plan.title == "Scale ml-staging/llm-serve from 3 to 5 replicas"
    assert plan.confirm_phrase is None
    params = {"namespace": "ml-staging", "name": "llm-serve", "replicas": 5, "asked": "5"}
    assert dict(plan.params) == params
    rows = dict(plan.lines)
    assert rows["Replicas"] == "3 → 5"
    assert rows["GPUs"] == "+8 × H100 (fits: 3 free slots)"
    assert rows["Capacity cost"] == "+$98.32/h (GPU-hours committed)"

    result = await w.ops.execute(plan)

    assert result.ok
    assert result.done == (plan.title,) and result.not_done == ()
    assert w.source.calls == [("ml-staging", "llm-serve", 5)]
    assert w.source.endpoints["ml-staging/llm-serve"].replicas_desired == 5
    assert w.pokes == ["sim"]
    intent, step, end = w.lines()
    # The intent was durable before the source was asked to change anything.
    assert w.source.audited_before == [[intent]]
    assert intent["phase"] == "intent" and intent["outcome"] == "started"
    assert intent["digest"] == plan.digest and len(plan.digest) == 16
    assert intent["steps"] == [plan.title]
    assert intent["pid"] == os.getpid()
    assert (step["phase"], step["step"], step["outcome"]) == ("step", plan.title, "ok")
    assert end["phase"] == "end"
    assert intent["id"] == step["id"] == end["id"] and len(str(intent["id"])) == 16
    for line in (intent, end):
        assert line["user"] == "alice"
        assert line["role"] == "operator"
        assert line["host"]
        assert line["action"] == "scale"
        assert line["target"] == "ml-staging/llm-serve"
        assert line["source"] == "sim"
        assert line["title"] == plan.title
        assert line["params"] == params
        assert line["warnings"] == list(plan.warnings)
    assert end["outcome"] == "ok"
    ts = dt.datetime.fromisoformat(str(end["ts"]))
    assert ts == dt.datetime.fromtimestamp(START, dt.UTC)  # the pinned clock, never the wall's
    [record] = w.audit.records()
    assert record.outcome == "ok" and record.done == [plan.title] and record.planned == (plan.title,)
    assert record.end is not None and record.end.params["replicas"] == 5


async def test_read_only_refuses_audits_and_leaves_the_source_alone(tmp_path: Path) -> None:
    w = make_world(tmp_path, read_only=True)
    assert w.ops.check("scale", "ml-staging/llm-serve") == "read-only mode: scale is not allowed"
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)
    assert not plan.ok
    assert "read-only mode: scale is not allowed" in plan.blockers

    with pytest.raises(PermissionDenied, match="read-only mode: scale is not allowed"):
        await w.ops.execute(plan)
    # Even a plan made elsewhere, without the blocker, is refused.
    with pytest.raises(PermissionDenied):
        await w.ops.execute(replace(plan, blockers=()))

    assert w.source.calls == []
    assert w.pokes == []
    assert [(line["outcome"], line["message"]) for line in w.lines()] == [
        ("refused", "read-only mode: scale is not allowed"),
    ] * 2
    assert not any("digest" in line for line in w.lines())  # no intent: nothing was to run


async def test_viewer_may_not_scale(tmp_path: Path) -> None:
    w = make_world(tmp_path, role=Role.VIEWER)
    assert w.ops.check("scale", "ml-staging/llm-serve") == "role viewer may not scale (it needs operator)"
    refused = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)
    # Refused before any plan is built: no assessment, only why.
    assert refused.blockers == ("role viewer may not scale (it needs operator)",) and refused.source == ""
    plan = replace(refused, blockers=(), source="sim")
    with pytest.raises(PermissionDenied, match="role viewer may not scale"):
        await w.ops.execute(plan)
    assert w.source.calls == []
    assert [line["outcome"] for line in w.lines()] == ["refused"]


async def test_admin_may_scale(tmp_path: Path) -> None:
    w = make_world(tmp_path, role=Role.ADMIN)
    assert w.ops.check("scale", "ml-staging/llm-serve") is None
    assert (await w.ops.execute(w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=4))).ok


async def test_production_needs_the_typed_name(tmp_path: Path) -> None:
    w = make_world(tmp_path, endpoint(namespace="ml-prod"))
    plan = w.ops.plan("scale", endpoint="ml-prod/llm-serve", replicas=5)
    assert plan.confirm_phrase == "llm-serve"

    with pytest.raises(ConfirmationError, match="type 'llm-serve' to confirm"):
        await w.ops.execute(plan)
    with pytest.raises(ConfirmationError, match="does not match"):
        await w.ops.execute(plan, confirmation="llm-serv")
    assert w.source.calls == []

    result = await w.ops.execute(plan, confirmation=" llm-serve ")
    assert result.ok
    assert w.source.calls == [("ml-prod", "llm-serve", 5)]
    assert [line["outcome"] for line in w.ends()] == ["refused", "refused", "ok"]


async def test_scale_to_zero_needs_the_typed_name(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=0)
    assert plan.confirm_phrase == "llm-serve"
    assert any("will serve no traffic" in warning for warning in plan.warnings)
    with pytest.raises(ConfirmationError):
        await w.ops.execute(plan, confirmation="yes")
    assert w.source.calls == []
    assert (await w.ops.execute(plan, confirmation="llm-serve")).ok
    assert w.source.endpoints["ml-staging/llm-serve"].replicas_desired == 0


async def test_staging_scale_up_needs_no_phrase(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    assert w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=4).confirm_phrase is None


async def test_a_blocked_plan_is_refused(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=3)
    assert plan.blockers == ("ml-staging/llm-serve is already at 3 replicas.",)
    with pytest.raises(ActionRefused, match="already at 3 replicas"):
        await w.ops.execute(plan)
    assert w.source.calls == []
    assert [line["outcome"] for line in w.lines()] == ["refused"]


def test_out_of_bounds_is_refused_before_planning(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas="-5")
    assert plan.blockers == ("ml-staging/llm-serve has 3 replicas: -5 would leave -2.",)
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=10**6)
    assert plan.blockers == ("1,000,000 replicas is above the hard cap of 1,000: is it a typo?",)
    assert plan.lines == (("Endpoint", "ml-staging/llm-serve"), ("Replicas", "1000000"))


def test_unknown_endpoint_is_a_lookup_error(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    with pytest.raises(LookupError) as info:
        w.ops.plan("scale", endpoint="ml/nope", replicas=2)
    assert str(info.value) == "endpoint ml/nope not found"


async def test_a_target_that_vanished_is_not_scaled(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)
    del w.source.endpoints["ml-staging/llm-serve"]
    with pytest.raises(TargetNotFound, match="no longer exists"):
        await w.ops.execute(plan)
    assert w.source.calls == []
    assert [line["outcome"] for line in w.lines()] == ["refused"]


async def test_audit_file_is_0600_in_a_0700_directory(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    await w.ops.execute(w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=4))
    assert stat.S_IMODE(w.audit.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(w.audit.path.parent.stat().st_mode) == 0o700


async def test_unwritable_audit_log_means_the_action_does_not_run(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the audit directory should be")
    w = make_world(tmp_path, audit_path=blocker / "audit.jsonl")
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)
    with pytest.raises(AuditError, match="cannot write the audit log"):
        await w.ops.execute(plan)
    assert w.source.calls == []
    assert w.pokes == []


async def test_a_full_disk_refuses_before_any_change(tmp_path: Path) -> None:
    """/dev/full opens and takes no byte: the intent cannot be written, so nothing runs."""
    if not os.path.exists("/dev/full"):  # noqa: PTH110, ASYNC240 - a device, before anything runs
        pytest.skip("no /dev/full here")
    w = make_world(tmp_path, audit_path=Path("/dev/full"))
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)
    with pytest.raises(AuditError, match="No space left on device"):
        await w.ops.execute(plan)
    assert w.source.calls == [] and w.source.audited_before == []


async def test_a_step_that_cannot_be_journaled_stops_the_action(tmp_path: Path) -> None:
    """The intent got on disk, then the disk filled: the end cannot be written either, and it says so."""
    w = make_world(tmp_path)
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)
    real_append = w.audit.append
    written: list[str] = []

    def append(entry: AuditEntry) -> None:
        if entry.phase != "intent":
            raise AuditError("cannot write the audit log: No space left on device")
        written.append(entry.phase)
        real_append(entry)

    w.audit.append = append  # type: ignore[method-assign]
    with pytest.raises(UnauditedAction, match="its end could not be audited") as info:
        await w.ops.execute(plan)
    assert written == ["intent"]
    assert w.source.calls == [("ml-staging", "llm-serve", 5)]  # the one step ran; its line is what failed
    assert info.value.result.done == (plan.title,)


async def test_a_failing_source_gives_a_failed_result_and_audit_line(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    w.source.fail = RuntimeError("409 Conflict: the object has been modified (token=s3cr3t)")
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=5)
    result = await w.ops.execute(plan)
    assert not result.ok
    assert result.message.startswith(f"{plan.title} failed: RuntimeError: 409 Conflict")
    assert result.not_done == (plan.title,) and result.done == ()
    assert "s3cr3t" not in result.message
    assert w.pokes == ["sim"]  # show whatever state the source is in now
    intent, step, end = w.lines()
    assert (intent["phase"], step["outcome"], end["outcome"]) == ("intent", "failed", "failed")
    assert end["message"] == result.message
    assert "s3cr3t" not in w.audit.path.read_text()


def test_check_knows_which_source_can_act(tmp_path: Path) -> None:
    prom_endpoint = Endpoint(namespace="ml", name="metrics-only", source="prom")
    w = make_world(tmp_path, extra=(FakeReadOnlySource(),))
    assert w.ops.check("scale") is None
    assert w.ops.check("scale", "ml-staging/llm-serve") is None
    assert w.ops.check("scale", "ml/absent") == "endpoint ml/absent not found"
    assert w.ops.check("launch") == "no source can launch"
    assert w.ops.check("cordon", "a") == "source sim (fake) cannot cordon"
    assert w.ops.check("explode") == "unknown action 'explode'"
    w.source.endpoints[prom_endpoint.key] = prom_endpoint
    assert w.ops.check("scale", prom_endpoint.key) == "source prom (prometheus) cannot scale"


async def test_hpa_owned_plan_shows_the_hpa(tmp_path: Path) -> None:
    hpa = Hpa(name="llm-hpa", min_replicas=2, max_replicas=8, metric="gpu_util", target=60.0, current=90.0)
    w = make_world(tmp_path, endpoint(hpa=hpa))
    plan = w.ops.plan("scale", endpoint="ml-staging/llm-serve", replicas=7)
    assert dict(plan.lines)["HPA"] == "llm-hpa: 2–8 replicas, gpu_util, wants 5"
    assert any("set the replicas back to 5" in warning for warning in plan.warnings)


# --- audit log ------------------------------------------------------------------------------------------


def _entry(n: int) -> AuditEntry:
    return AuditEntry(
        ts=f"2025-01-01T00:00:{n:02d}.000+00:00",
        user="alice",
        host="h",
        role="operator",
        action="scale",
        target=f"ml/e{n}",
        source="sim",
        title=f"Scale ml/e{n}",
        outcome="ok",
        message="done",
        params={"replicas": n},
        warnings=("w",),
    )


def test_audit_read_is_oldest_first_limited_and_tolerates_a_torn_last_line(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "a" / "audit.jsonl")
    assert log.read() == []
    for n in range(5):
        log.append(_entry(n))
    with log.path.open("a") as f:
        f.write('{"ts": "2025-01-01T00:01:00", "user": "bob", "act')  # a crash mid-write
    entries = log.read()
    assert [e.target for e in entries] == [f"ml/e{n}" for n in range(5)]
    assert entries[0] == _entry(0)
    assert [e.target for e in log.read(limit=2)] == ["ml/e3", "ml/e4"]
    assert log.read(limit=0) == []
    assert [e.target for e in log.read(limit=50)] == [f"ml/e{n}" for n in range(5)]
    # The next append starts a fresh line instead of extending the torn one.
    log.append(_entry(5))
    assert [e.target for e in log.read()] == [f"ml/e{n}" for n in range(6)]
    assert [e.target for e in log.read(limit=1)] == ["ml/e5"]


def test_audit_tail_read_spans_blocks(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    for n in range(60):
        log.append(replace(_entry(n % 60), message="x" * 3000))
    assert [e.params["replicas"] for e in log.read(limit=30)] == list(range(30, 60))


def test_default_audit_path_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_audit_path() == tmp_path / "xdg" / "aios-tui" / "audit.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_audit_path() == tmp_path / "home" / ".local" / "state" / "aios-tui" / "audit.jsonl"


def test_actor_current_is_the_logged_in_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOGNAME", "carol")
    monkeypatch.setenv("USER", "carol")
    assert Actor.current(Role.VIEWER) == Actor("carol", Role.VIEWER)


def test_importing_ops_and_poll_does_not_load_textual() -> None:
    code = "import sys, aios_tui.ops, aios_tui.poll; sys.exit('textual' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False, env={**os.environ}).returncode == 0
