#!/usr/bin/env python3
"""Mutation testing, one module at a time: do the tests notice when the code is wrong?

    .venv/bin/python scripts/mutation.py aios_tui/alloc/scaling.py tests/unit/test_scaling.py

Each mutant is the module with one small change (below). The module is copied with the package and the tests
into a temporary folder, the mutant written over it, and ``pytest -x -q`` run on the given test files there.
A mutant is *killed* when the tests fail (or the module no longer imports), *survives* when they pass, and
*times out* when they run past ten times the unmutated run (plus 10 s), which counts as killed.

Operators (``ast``-based, so the mutant is the unparsed tree: comments and layout are lost, not behaviour):

- comparison: ``<`` → ``<=`` and ``>=``, ``<=`` → ``<`` and ``>``, ``>`` → ``>=`` and ``<=``, ``>=`` → ``>``
  and ``<``, ``==`` ↔ ``!=``, ``is`` ↔ ``is not``, ``in`` ↔ ``not in``;
- boolean: ``and`` ↔ ``or``; ``not x`` → ``x``;
- constant: a number ``n`` → ``n + 1`` and ``n - 1`` (so 0 → 1 and 1 → 0), ``True`` ↔ ``False``, a string →
  ``""`` (an empty one → ``"XX"``);
- return: ``return x`` → ``return None``;
- arithmetic: ``+`` ↔ ``-``, ``*`` ↔ ``/``, ``//`` → ``/``, ``%`` → ``//``, ``&`` ↔ ``|`` (augmented ones
  too).

Not mutated: docstrings, type annotations, decorators, ``__all__``, the literal text of f-strings (their
``{…}`` expressions are), and the value of a ``TypeAlias``.

Survivors that no test can kill because the behaviour is the same are listed in :data:`EQUIVALENT`, each with
the reason; they are reported apart and left out of the score. ``--list`` prints the mutants without running
them; ``--lines 50-60`` runs only those on lines 50 to 60; ``--min-score 95`` exits 1 below 95 %.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from queue import Queue

ROOT = Path(__file__).resolve().parent.parent

#: Survivors whose behaviour is identical to the module's, per module: (source line, column, change) → why.
#: The source line is the stripped original line, so the entries survive edits elsewhere in the module.
EQUIVALENT: dict[str, dict[tuple[str, int, str], str]] = {
    "aios_tui/alloc/drain.py": {
        ("evict.append(_to(move, placed.nodes[0]))", 45, "0 → -1"): (
            "a replica is placed as a gang of one worker: nodes[0] and nodes[-1] are the same node"
        ),
    },
    "aios_tui/alloc/scaling.py": {
        (
            "elif 0 < replicas < current and not is_na(endpoint.qps) and float(endpoint.qps) > 0:",
            10,
            "0 < replicas → 0 <= replicas",
        ): "replicas == 0 reaches here only when current <= 0, and then replicas < current is false",
        (
            "elif 0 < replicas < current and not is_na(endpoint.qps) and float(endpoint.qps) > 0:",
            10,
            "0 → -1",
        ): "-1 < replicas differs from 0 < replicas only at 0: the same as the mutant above",
    },
    "aios_tui/sources/_smi_parse.py": {
        ("f = dict(zip(GPU_FIELDS, fields, strict=True))", 49, "True → False"): (
            "_rows has already refused a line whose field count is not len(GPU_FIELDS)"
        ),
    },
    "aios_tui/domain/units.py": {
        ("return 0x4E41", 16, "20033 → 20034"): "NA's hash is an arbitrary constant: any int does",
        ("return 0x4E41", 16, "20033 → 20032"): "NA's hash is an arbitrary constant: any int does",
    },
}

Rewrite = Callable[[ast.AST], ast.AST]


@dataclass(frozen=True)
class Mutant:
    index: int
    """Position of the node in ``ast.walk`` order of the module's tree (the same in every deep copy)."""
    line: int
    col: int
    operator: str
    change: str
    source: str
    """The original source line, stripped."""
    rewrite: Rewrite = field(repr=False, compare=False)


@dataclass
class Outcome:
    mutant: Mutant
    status: str
    """killed, survived, timeout, or equivalent (a survivor listed in :data:`EQUIVALENT`)."""
    seconds: float
    why: str = ""


# --- generating mutants ----------------------------------------------------------------------------------

_COMPARISONS: dict[type[ast.cmpop], tuple[type[ast.cmpop], ...]] = {
    ast.Lt: (ast.LtE, ast.GtE),
    ast.LtE: (ast.Lt, ast.Gt),
    ast.Gt: (ast.GtE, ast.LtE),
    ast.GtE: (ast.Gt, ast.Lt),
    ast.Eq: (ast.NotEq,),
    ast.NotEq: (ast.Eq,),
    ast.Is: (ast.IsNot,),
    ast.IsNot: (ast.Is,),
    ast.In: (ast.NotIn,),
    ast.NotIn: (ast.In,),
}
_ARITHMETIC: dict[type[ast.operator], type[ast.operator]] = {
    ast.Add: ast.Sub,
    ast.Sub: ast.Add,
    ast.Mult: ast.Div,
    ast.Div: ast.Mult,
    ast.FloorDiv: ast.Div,
    ast.Mod: ast.FloorDiv,
    ast.BitAnd: ast.BitOr,
    ast.BitOr: ast.BitAnd,
}
_SYMBOL = {
    ast.Lt: "<",
    ast.LtE: "<=",
    ast.Gt: ">",
    ast.GtE: ">=",
    ast.Eq: "==",
    ast.NotEq: "!=",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.FloorDiv: "//",
    ast.Mod: "%",
    ast.BitAnd: "&",
    ast.BitOr: "|",
    ast.And: "and",
    ast.Or: "or",
}


def _not_mutated(tree: ast.Module) -> set[int]:
    """ids of the nodes left alone: docstrings, annotations, decorators, ``__all__``, f-string text."""
    skip: set[ast.AST] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            skip.add(node)  # docstrings, and the attribute docstrings under dataclass fields
        elif isinstance(node, ast.arg) and node.annotation is not None:
            skip.add(node.annotation)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            skip.update(node.decorator_list)
            if not isinstance(node, ast.ClassDef) and node.returns is not None:
                skip.add(node.returns)
        elif isinstance(node, ast.AnnAssign):
            skip.add(node.annotation)
            if node.value is not None and "TypeAlias" in ast.unparse(node.annotation):
                skip.add(node.value)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            skip.add(node.value)
        elif isinstance(node, ast.JoinedStr):
            skip.update(v for v in node.values if isinstance(v, ast.Constant))
        elif isinstance(node, ast.FormattedValue) and node.format_spec is not None:
            skip.add(node.format_spec)
    return {id(sub) for node in skip for sub in ast.walk(node)}


def _constant_changes(value: object) -> list[tuple[object, str]]:
    if isinstance(value, bool):
        return [(not value, f"{value} → {not value}")]
    if isinstance(value, int | float):
        return [(value + 1, f"{value!r} → {value + 1!r}"), (value - 1, f"{value!r} → {value - 1!r}")]
    if isinstance(value, str):
        return [("", f"{_short(value)} → ''")] if value else [("XX", "'' → 'XX'")]
    return []  # None, bytes, Ellipsis


def _short(value: str, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 2] + "…" + text[-1]


def _code(node: ast.AST, limit: int = 40) -> str:
    text = ast.unparse(node)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _set(attr: str, value: object) -> Rewrite:
    def rewrite(node: ast.AST) -> ast.AST:
        setattr(node, attr, value)
        return node

    return rewrite


def _set_op(position: int, op: type[ast.cmpop]) -> Rewrite:
    def rewrite(node: ast.AST) -> ast.AST:
        assert isinstance(node, ast.Compare)
        node.ops[position] = op()
        return node

    return rewrite


def _operand(node: ast.AST) -> ast.AST:
    assert isinstance(node, ast.UnaryOp)
    return node.operand


def _sites(node: ast.AST) -> Iterator[tuple[str, str, Rewrite]]:
    """(operator, change, rewrite) for each mutant of ``node`` itself (not of its children)."""
    if isinstance(node, ast.Compare):
        operands = [node.left, *node.comparators]
        for position, op in enumerate(node.ops):
            left, right = _code(operands[position], 30), _code(operands[position + 1], 30)
            for new in _COMPARISONS.get(type(op), ()):
                change = f"{left} {_SYMBOL[type(op)]} {right} → {left} {_SYMBOL[new]} {right}"
                yield "comparison", change, _set_op(position, new)
    elif isinstance(node, ast.BoolOp):
        new_bool = ast.Or if isinstance(node.op, ast.And) else ast.And
        yield "boolean", f"{_SYMBOL[type(node.op)]} → {_SYMBOL[new_bool]}", _set("op", new_bool())
    elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
        yield "boolean", f"not {_code(node.operand)} → {_code(node.operand)}", _operand
    elif isinstance(node, ast.Constant):
        for new_value, change in _constant_changes(node.value):
            yield "constant", change, _set("value", new_value)
    elif isinstance(node, ast.Return) and node.value is not None:
        if not (isinstance(node.value, ast.Constant) and node.value.value is None):
            yield "return", f"return {_code(node.value)} → return None", _set("value", None)
    elif isinstance(node, ast.BinOp | ast.AugAssign) and type(node.op) in _ARITHMETIC:
        new_op = _ARITHMETIC[type(node.op)]
        yield "arithmetic", f"{_SYMBOL[type(node.op)]} → {_SYMBOL[new_op]}", _set("op", new_op())


def mutants(source: str) -> list[Mutant]:
    tree = ast.parse(source)
    lines = source.splitlines()
    skip = _not_mutated(tree)
    found = []
    for index, node in enumerate(ast.walk(tree)):
        if id(node) in skip:
            continue
        line, col = getattr(node, "lineno", 0), getattr(node, "col_offset", 0) + 1
        for operator, change, rewrite in _sites(node):
            text = lines[line - 1].strip() if line else ""
            found.append(Mutant(index, line, col, operator, change, text, rewrite))
    return sorted(found, key=lambda m: (m.line, m.col, m.index))


def apply(source: str, mutant: Mutant) -> str:
    """The module's source with ``mutant`` applied."""
    tree = ast.parse(source)
    nodes = list(ast.walk(tree))
    target = nodes[mutant.index]
    new = mutant.rewrite(target)
    if new is not target:  # replaced, not changed in place: put it where the old node was
        for parent in nodes:
            for name, value in ast.iter_fields(parent):
                if value is target:
                    setattr(parent, name, new)
                elif isinstance(value, list):
                    value[:] = [new if item is target else item for item in value]
    return ast.unparse(ast.fix_missing_locations(tree)) + "\n"


# --- running them ----------------------------------------------------------------------------------------


class Sandbox:
    """A temporary copy of the package and the tests where one mutant at a time is written."""

    def __init__(self, module: str, tests: list[str], pytest_args: list[str]) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="mutation-"))
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        package = Path(module).parts[0]
        shutil.copytree(ROOT / package, self.dir / package, ignore=ignore)
        shutil.copytree(ROOT / "tests", self.dir / "tests", ignore=ignore)
        shutil.copy2(ROOT / "pyproject.toml", self.dir / "pyproject.toml")  # pytest's settings
        self.module = self.dir / module
        self.original = self.module.read_text(encoding="utf-8")
        self.tests = tests
        self.pytest_args = pytest_args

    def run(self, source: str | None, timeout: float) -> tuple[str, float, str]:
        """Run the tests with ``source`` as the module (None: unmutated): (status, seconds, last lines)."""
        self.module.write_text(self.original if source is None else source, encoding="utf-8")
        shutil.rmtree(self.dir / ".hypothesis", ignore_errors=True)  # no failing examples carried over
        env = {
            **os.environ,
            "PYTHONPATH": str(self.dir),  # ahead of the editable install's finder
            "PYTHONDONTWRITEBYTECODE": "1",  # no stale .pyc of an earlier mutant
            "PYTHONHASHSEED": "0",
        }
        command = [
            sys.executable,
            "-m",
            "pytest",
            "-x",
            "-q",
            "-p",
            "no:cacheprovider",
            "--hypothesis-seed=0",
            *self.pytest_args,
            *self.tests,
        ]
        start = time.monotonic()
        try:
            done = subprocess.run(
                command, cwd=self.dir, env=env, capture_output=True, text=True, timeout=timeout, check=False
            )
        except subprocess.TimeoutExpired:
            return "timeout", time.monotonic() - start, ""
        seconds = time.monotonic() - start
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-3:])
        return ("survived" if done.returncode == 0 else "killed"), seconds, tail

    def check_imports_the_copy(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(self.dir)}
        name = ".".join(Path(self.module.relative_to(self.dir)).with_suffix("").parts)
        where = subprocess.run(
            [sys.executable, "-c", f"import {name} as m; print(m.__file__)"],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        if Path(where).resolve() != self.module.resolve():
            raise SystemExit(f"the tests would import {where}, not the copy {self.module}")

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def run_all(
    module: str, tests: list[str], todo: list[Mutant], jobs: int, pytest_args: list[str]
) -> list[Outcome]:
    sandboxes = [Sandbox(module, tests, pytest_args) for _ in range(jobs)]
    try:
        sandboxes[0].check_imports_the_copy()
        status, baseline, tail = sandboxes[0].run(None, timeout=600)
        if status != "survived":
            raise SystemExit(f"the tests fail without any mutant:\n{tail}")
        timeout = 10 * baseline + 10
        print(f"unmutated run: {baseline:.1f} s; timeout per mutant {timeout:.0f} s", file=sys.stderr)
        free: Queue[Sandbox] = Queue()
        for box in sandboxes:
            free.put(box)
        equivalent = EQUIVALENT.get(module, {})

        def one(mutant: Mutant) -> Outcome:
            box = free.get()
            try:
                status, seconds, tail = box.run(apply(box.original, mutant), timeout)
            finally:
                free.put(box)
            why = ""
            key = (mutant.source, mutant.col, mutant.change)
            if status == "survived" and key in equivalent:
                status, why = "equivalent", equivalent[key]
            print(f"  {status:10} {mutant.line:4}:{mutant.col:<3} {mutant.change}", file=sys.stderr)
            return Outcome(mutant, status, seconds, why or (tail.splitlines()[-1] if tail else ""))

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            return list(pool.map(one, todo))
    finally:
        for box in sandboxes:
            box.remove()


def report(module: str, outcomes: list[Outcome]) -> float:
    count = {s: sum(o.status == s for o in outcomes) for s in ("killed", "timeout", "survived", "equivalent")}
    scored = len(outcomes) - count["equivalent"]
    dead = count["killed"] + count["timeout"]
    score = 100.0 * dead / scored if scored else 100.0
    print(f"\n{module}: {len(outcomes)} mutants")
    print(
        f"  killed {count['killed']}, timeout {count['timeout']}, survived {count['survived']}, "
        f"equivalent {count['equivalent']} (left out of the score)"
    )
    print(f"  score: {dead}/{scored} = {score:.1f} %")
    for status in ("survived", "equivalent"):
        listed = [o for o in outcomes if o.status == status]
        if listed:
            print(f"  {status}:")
        for o in listed:
            m = o.mutant
            reason = f"  ({o.why})" if status == "equivalent" else ""
            print(f"    {m.line:4}:{m.col:<3} [{m.operator}] {m.change}: {m.source}{reason}")
    return score


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("module", help="the module to mutate, relative to the repository root")
    parser.add_argument(
        "tests", nargs="*", help="test files (or pytest node ids) that should kill its mutants"
    )
    parser.add_argument("-j", "--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--lines", help="only mutants on these lines, e.g. 50-60")
    parser.add_argument("--list", action="store_true", help="list the mutants, run nothing")
    parser.add_argument(
        "--pytest-args", default="", help='more pytest arguments, one string: --pytest-args="--noconftest"'
    )
    parser.add_argument("--json", type=Path, help="also write the outcomes to this file")
    parser.add_argument("--min-score", type=float, default=0.0, help="exit 1 when the score is below this")
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    module = Path(args.module).as_posix()
    source = (ROOT / module).read_text(encoding="utf-8")
    todo = mutants(source)
    if args.lines:
        first, _, last = args.lines.partition("-")
        todo = [m for m in todo if int(first) <= m.line <= int(last or first)]
    if args.list:
        for m in todo:
            print(f"{m.line:4}:{m.col:<3} [{m.operator}] {m.change}: {m.source}")
        print(f"{len(todo)} mutants")
        return 0
    if not args.tests:
        parser.error("give the test files to run")
    outcomes = run_all(module, args.tests, todo, max(1, args.jobs), shlex.split(args.pytest_args))
    score = report(module, outcomes)
    if args.json:
        rows = [
            {**asdict(o), "mutant": {k: v for k, v in asdict(o.mutant).items() if k != "rewrite"}}
            for o in outcomes
        ]
        args.json.write_text(
            json.dumps({"module": module, "score": score, "outcomes": rows}, indent=1) + "\n"
        )
    return 1 if score < args.min_score else 0


if __name__ == "__main__":
    sys.exit(main())
