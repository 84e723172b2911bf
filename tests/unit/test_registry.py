"""Walk the action registry: every action is offered by the CLI, help and ``:`` completion, and the backend
enforces its least role and read-only mode — tested against a table written here, not read back from the
actions, so that lowering an action's role (or forgetting one) fails a test."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from aios_tui import cli
from aios_tui.ops import (
    ActionRefused,
    Actor,
    AuditLog,
    Ops,
    PermissionDenied,
    Plan,
    Role,
    all_actions,
    get,
    lookup,
)
from aios_tui.ops.argv import parse_words
from aios_tui.poll import Poller
from aios_tui.sources.sim import SimSource
from aios_tui.ui.commands import command_names
from aios_tui.ui.screens.help import action_rows

#: The least role of each action, and the higher one for several targets / a shrink. Written by hand: the
#: point is that a change to an action's roles must change this table too.
ROLES: Mapping[str, tuple[Role, Role | None, Role | None]] = {
    "scale": (Role.OPERATOR, None, None),
    "redeploy": (Role.OPERATOR, None, None),
    "cordon": (Role.OPERATOR, None, None),
    "uncordon": (Role.OPERATOR, None, None),
    "drain": (Role.OPERATOR, Role.ADMIN, None),
    "launch": (Role.OPERATOR, None, None),
    "scale-pool": (Role.OPERATOR, None, Role.ADMIN),
}

#: Arguments that make a runnable plan of each action on the 12-node embedded fleet (seed 0, pinned clock).
EXAMPLES: Mapping[str, dict[str, Any]] = {
    "scale": {"endpoint": "ml-staging/llama-3-8b-canary", "replicas": "+1"},
    "redeploy": {"endpoint": "ml-staging/llama-3-8b-canary"},
    "cordon": {"nodes": ["a100-a-0001"]},
    "uncordon": {"nodes": ["h100-b-0002"]},
    "drain": {"nodes": ["cpu-a-0001"], "allow_empty_dir": True, "allow_unmanaged": True},
    "launch": {"workers": 1, "gpus_per_worker": 1, "gpu_model": "l4"},
    "scale-pool": {"pool": "l4-a", "desired": "+1"},
}
#: Several targets at once, and a shrink.
MANY: Mapping[str, dict[str, Any]] = {"drain": {"nodes": ["cpu-a-0001", "l4-a-0001"]}}
SHRINK: Mapping[str, dict[str, Any]] = {"scale-pool": {"pool": "h100-a", "desired": "-1"}}

NAMES = [a.name for a in all_actions()]


def test_the_tables_cover_every_registered_action() -> None:
    assert set(ROLES) == set(NAMES)
    assert set(EXAMPLES) == set(NAMES)
    assert NAMES == ["scale", "redeploy", "cordon", "uncordon", "drain", "launch", "scale-pool"]


@pytest.mark.parametrize("name", NAMES)
def test_roles_are_the_ones_written_down(name: str) -> None:
    action = get(name)
    assert (action.min_role, action.min_role_many, action.min_role_shrink) == ROLES[name]


def _ops(tmp_path: Path, role: Role, *, read_only: bool = False) -> Ops:
    sim = SimSource(seed=0, nodes=12)
    poller = Poller([sim])
    asyncio.run(poller.refresh())
    return Ops(
        {sim.name: sim},
        lambda: poller.snapshot,
        AuditLog(tmp_path / "audit.jsonl"),
        actor=Actor("tester", role),
        read_only=read_only,
    )


def _admin_plan(tmp_path: Path, name: str, args: Mapping[str, Any]) -> Plan[Any]:
    plan = _ops(tmp_path, Role.ADMIN).plan(name, **args)
    assert plan.ok, plan.blockers
    return plan


@pytest.mark.parametrize("name", NAMES)
def test_each_role_below_the_least_is_refused_in_the_backend(tmp_path: Path, name: str) -> None:
    least = ROLES[name][0]
    plan = _admin_plan(tmp_path, name, EXAMPLES[name])
    for role in Role:
        ops = _ops(tmp_path, role)
        allowed = role.allows(least)
        assert (ops.allowed(name) is None) == allowed, role
        refused = ops.plan(name, **EXAMPLES[name])
        assert refused.ok == allowed, (role, refused.blockers)
        if not allowed:
            assert refused.blockers == (f"role {role} may not {name} (it needs {least})",)
            # A plan made by someone allowed, handed to this session, is refused all the same.
            with pytest.raises(PermissionDenied, match=f"role {role} may not {name}"):
                asyncio.run(ops.execute(plan, confirmation=plan.confirm_phrase))


@pytest.mark.parametrize("name", NAMES)
def test_read_only_refuses_every_action_for_every_role(tmp_path: Path, name: str) -> None:
    plan = _admin_plan(tmp_path, name, EXAMPLES[name])
    for role in Role:
        ops = _ops(tmp_path, role, read_only=True)
        assert ops.allowed(name) == f"read-only mode: {name} is not allowed"
        assert ops.plan(name, **EXAMPLES[name]).blockers == (f"read-only mode: {name} is not allowed",)
        with pytest.raises(PermissionDenied, match="read-only mode"):
            asyncio.run(ops.execute(plan, confirmation=plan.confirm_phrase))
    lines = AuditLog(tmp_path / "audit.jsonl").read()
    assert [e.outcome for e in lines] == ["refused"] * len(Role)


@pytest.mark.parametrize("name", sorted(MANY))
def test_several_targets_need_the_higher_role(tmp_path: Path, name: str) -> None:
    higher = ROLES[name][1]
    assert higher is not None
    args = {**EXAMPLES[name], **MANY[name]}
    plan = _admin_plan(tmp_path, name, args)
    for role in Role:
        ops = _ops(tmp_path, role)
        ok = role.allows(higher)
        assert ops.plan(name, **args).ok == ok, role
        if not ok:
            with pytest.raises(PermissionDenied):
                asyncio.run(ops.execute(plan, confirmation=plan.confirm_phrase))
        single = EXAMPLES[name]
        assert ops.plan(name, **single).ok == role.allows(ROLES[name][0])


@pytest.mark.parametrize("name", sorted(SHRINK))
def test_a_shrink_needs_the_higher_role(tmp_path: Path, name: str) -> None:
    higher = ROLES[name][2]
    assert higher is not None
    plan = _admin_plan(tmp_path, name, SHRINK[name])
    assert plan.shrinks
    for role in Role:
        ops = _ops(tmp_path, role)
        ok = role.allows(higher)
        assert ops.plan(name, **SHRINK[name]).ok == ok, role
        if not ok:
            why = "down" if role.allows(ROLES[name][0]) else "it needs"
            with pytest.raises(PermissionDenied, match=why):
                asyncio.run(ops.execute(plan, confirmation=plan.confirm_phrase))
            # A grow of the same pool is the least role's.
            assert ops.plan(name, **EXAMPLES[name]).ok == role.allows(ROLES[name][0])


@pytest.mark.parametrize("name", NAMES)
def test_a_plan_whose_blocker_was_dropped_is_refused_anyway(tmp_path: Path, name: str) -> None:
    ops = _ops(tmp_path, Role.ADMIN)
    plan = ops.plan(name, **EXAMPLES[name])
    bad = replace(plan, blockers=("made up",))
    with pytest.raises(ActionRefused, match="made up"):
        asyncio.run(ops.execute(bad, confirmation=plan.confirm_phrase))


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_a_cli_subcommand_with_its_help(
    name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    action = get(name)
    for verb in ("plan", "act"):
        assert cli.main([verb, name, "--help"]) == 0
        out = capsys.readouterr().out
        assert f"usage: aios-tui {verb} {name}" in out
        assert action.summary[1:40] in " ".join(out.split())
        for param in action.params:
            assert (param.option or param.metavar) in out


@pytest.mark.parametrize("name", NAMES)
def test_every_action_is_in_help_and_command_completion(name: str) -> None:
    action = get(name)
    assert any(f":{action.usage};" in text for _, text in action_rows(lambda _: True))
    assert name in command_names([])
    assert not [text for _, text in action_rows(lambda n: n != name) if f":{action.usage};" in text]


@pytest.mark.parametrize("name", NAMES)
def test_the_example_words_parse_as_the_cli_reads_them(name: str) -> None:
    """The words a ``:`` command or the CLI gets give the same values as the keyword arguments."""
    action = get(name)
    words: list[str] = []
    for param in action.params:
        value = EXAMPLES[name].get(param.name)
        if value is None or value is False:
            continue
        if param.positional:
            words += [str(v) for v in value] if isinstance(value, list) else [str(value)]
        elif value is True:
            words.append(param.option or "")
        else:
            words += [param.option or "", str(value)]
    parsed = parse_words(action, words, targets_optional=False)
    expected = {k: [str(x) for x in v] if isinstance(v, list) else v for k, v in EXAMPLES[name].items()}
    assert parsed == {k: (str(v) if not isinstance(v, list | bool) else v) for k, v in expected.items()}


def test_aliases_find_their_action() -> None:
    assert lookup("scalepool") is get("scale-pool")
    assert lookup("nothing") is None
    with pytest.raises(KeyError, match="the actions are scale, redeploy"):
        get("nothing")
