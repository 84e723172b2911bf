"""The argument grammar every action declares, read the same way by the CLI, ``:`` commands, the palette and
the plan screens' fields.

One grammar for amounts everywhere: ``N`` is absolute, ``+N`` and ``-N`` are relative to the current value
(:class:`Amount`). A typed value is read in two steps: :meth:`Param.syntax` checks its form without the fleet
(so that ``aios-tui act scale x y`` is a usage error before any source is asked), then :meth:`Param.resolve`
matches names against the snapshot as users type them: the exact name, else the one name that differs only
in case (``h100`` is ``H100``), else, for an endpoint, the one endpoint of that name in any namespace. Names
are never matched by prefix: ``drain h100-a-000`` must not pick a node.
"""

from __future__ import annotations

import difflib
import enum
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aios_tui.domain import FleetSnapshot
from aios_tui.ops.core import TargetNotFound, join

__all__ = [
    "Amount",
    "ArgError",
    "Defaults",
    "Kind",
    "Param",
    "match_name",
    "parse_yes_no",
]

_AMOUNT = re.compile(r"([+-]?)([0-9]{1,9})")  # ASCII digits: "٣" is not a count anyone typed on purpose
_K8S_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_NAME_LIMIT = 253
"""No name a user types is longer (a Kubernetes object name's limit); longer input is a mistake."""


class ArgError(ValueError):
    """A value does not fit its argument; the message says what was expected."""


@dataclass(frozen=True, slots=True)
class Amount:
    """A count as typed: ``5`` (absolute), ``+2`` or ``-1`` (relative to the current value)."""

    value: int
    relative: bool = False

    @classmethod
    def parse(cls, text: str, what: str = "the amount") -> Amount:
        m = _AMOUNT.fullmatch(text.strip())
        if m is None:
            raise ArgError(
                f"{what} must be a whole number N, or +N / -N to change it by N; got {text.strip()!r}"
            )
        sign, digits = m.groups()
        return cls(-int(digits) if sign == "-" else int(digits), relative=bool(sign))

    def of(self, current: int) -> int:
        """The value this amount sets when the current value is ``current``."""
        return current + self.value if self.relative else self.value

    def __str__(self) -> str:
        return f"{self.value:+d}" if self.relative else str(self.value)


def parse_yes_no(text: str, what: str = "the answer") -> bool:
    value = text.strip().lower()
    if value in ("y", "yes", "true", "1"):
        return True
    if value in ("", "n", "no", "false", "0"):
        return False
    raise ArgError(f"{what}: answer y or n, got {text.strip()!r}")


class Kind(enum.Enum):
    """What an argument is: how it is typed, checked and matched."""

    ENDPOINT = "endpoint"
    """``namespace/name`` (or a name found in one namespace only)."""
    NODES = "nodes"
    """One or more node names."""
    POOL = "pool"
    AMOUNT = "amount"
    """``N``, ``+N`` or ``-N``."""
    COUNT = "count"
    """A whole number within the parameter's ``lo``–``hi``."""
    SECONDS = "seconds"
    FLAG = "flag"
    """On or off: ``--flag`` on the command line, y/n in a field."""
    IMAGE = "image"
    """A container image reference, or ``:TAG``."""
    JOB_NAME = "job name"
    """``namespace/name``, Kubernetes names."""
    GPU_MODEL = "GPU model"
    ZONE = "zone"


@dataclass(frozen=True, slots=True)
class Defaults:
    """What a default may depend on: who acts and when."""

    user: str
    now: float


@dataclass(frozen=True)
class Param:
    """One argument of an action.

    ``option`` is the ``--flag`` that carries it (None: positional). ``default`` is a value or a function of
    :class:`Defaults`; a parameter without one is required. ``label`` names it in a plan screen's field; the
    targets (which come from the cursor) have none.
    """

    name: str
    kind: Kind
    help: str
    option: str | None = None
    default: Any = None
    required: bool = True
    lo: float | None = None
    hi: float | None = None
    label: str = ""
    metavar: str = ""

    @property
    def needed(self) -> bool:
        """Whether a user must give it (required, with no default)."""
        return self.required and self.default is None

    @property
    def positional(self) -> bool:
        return self.option is None

    @property
    def is_target(self) -> bool:
        return self.kind in (Kind.ENDPOINT, Kind.NODES, Kind.POOL)

    @property
    def shown_as(self) -> str:
        """How usage lines name it: ``ENDPOINT``, ``NODE…``, ``--image IMAGE``, ``--yes``."""
        meta = self.metavar or self.name.upper()
        if self.kind is Kind.NODES:
            meta = f"{meta}…"
        if self.positional:
            return meta
        return self.option or "" if self.kind is Kind.FLAG else f"{self.option} {meta}"

    def default_for(self, defaults: Defaults) -> Any:
        return self.default(defaults) if callable(self.default) else self.default

    # --- reading -----------------------------------------------------------------------------------------

    def syntax(self, value: Any) -> Any:
        """Check the form of ``value`` (text as typed, or an already typed value) without the fleet.

        Raises :class:`ArgError`."""
        what = self.label or self.name.replace("_", " ")
        if self.kind is Kind.AMOUNT:
            if isinstance(value, Amount):
                return value
            if isinstance(value, int) and not isinstance(value, bool):
                return Amount(value)
            return Amount.parse(str(value), what)
        if self.kind is Kind.COUNT:
            return self._bounded(_whole(value, what), what)
        if self.kind is Kind.SECONDS:
            return self._bounded(_seconds(value, what), what)
        if self.kind is Kind.FLAG:
            return value if isinstance(value, bool) else parse_yes_no(str(value), what)
        if self.kind is Kind.NODES:
            names = _split_names(value)
            if not names:
                raise ArgError("name at least one node")
            return names
        text = "" if value is None else str(value).strip()
        if len(text) > _NAME_LIMIT:
            raise ArgError(f"{what} is {len(text):,} characters long; names are at most {_NAME_LIMIT}")
        if self.kind is Kind.JOB_NAME:
            return job_name(text)
        if self.kind in (Kind.ENDPOINT, Kind.POOL) and not text:
            raise ArgError(f"name the {self.kind.value}")
        return text

    def resolve(self, value: Any, snapshot: FleetSnapshot) -> Any:
        """Match a checked value against the fleet: canonical names, or :class:`TargetNotFound` /
        :class:`ArgError` naming what is there."""
        if self.kind is Kind.ENDPOINT:
            return match_endpoint(value, snapshot)
        if self.kind is Kind.NODES:
            return match_nodes(value, snapshot)
        if self.kind is Kind.POOL:
            return match_name(value, snapshot.pools_by_name, "node pool")
        if self.kind is Kind.GPU_MODEL and value:
            models = sorted({n.gpu_model for n in snapshot.nodes if n.gpu_model})
            return _match_choice(value, models, "GPU model")
        if self.kind is Kind.ZONE and value:
            zones = sorted({n.zone for n in snapshot.nodes if n.zone})
            return _match_choice(value, zones, "zone")
        return value

    def _bounded(self, value: float, what: str) -> Any:
        if self.lo is not None and value < self.lo:
            raise ArgError(f"{what} must be at least {self.lo:g}, got {value:g}")
        if self.hi is not None and value > self.hi:
            raise ArgError(f"{what} must be at most {self.hi:g}, got {value:g}")
        return value


def _whole(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = str(value).strip()
    if not re.fullmatch(r"-?[0-9]{1,12}", text):
        raise ArgError(f"{what} must be a whole number, got {text!r}")
    return int(text)


def _seconds(value: Any, what: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        raise ArgError(f"{what} must be a number of seconds, got {text!r}") from None
    if math.isnan(seconds):
        raise ArgError(f"{what} must be a number of seconds, got {text!r}")
    return seconds


def _split_names(value: Any) -> tuple[str, ...]:
    parts: Iterable[str] = re.split(r"[\s,]+", value) if isinstance(value, str) else (str(v) for v in value)
    names = tuple(dict.fromkeys(p.strip() for p in parts if p and p.strip()))
    long = next((n for n in names if len(n) > _NAME_LIMIT), None)
    if long is not None:
        raise ArgError(f"a node name of {len(long):,} characters? Names are at most {_NAME_LIMIT}")
    return names


def job_name(text: str) -> str:
    """``namespace/name`` with Kubernetes names (``name`` alone is in ``default``)."""
    namespace, _, name = text.partition("/")
    if not name:
        namespace, name = "default", namespace
    for part in (namespace, name):
        if len(part) > 63 or not _K8S_NAME.fullmatch(part):
            raise ArgError(
                f"{part!r} is not a valid Kubernetes name (in {text!r}): lowercase letters, digits and '-'"
            )
    return f"{namespace}/{name}"


def k8s_name(text: str, fallback: str = "user") -> str:
    """``text`` made into a Kubernetes name: lowercase, other characters as '-', at most 40 characters."""
    name = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:40].strip("-")
    return name or fallback


def _hint(typed: str, names: Iterable[str]) -> str:
    close = difflib.get_close_matches(typed, list(names), n=3, cutoff=0.75)
    return f" (did you mean {join(close)}?)" if close else ""


def match_name(typed: str, names: Iterable[str], what: str) -> str:
    """The name in ``names`` that the user meant by ``typed``: the same, or the only one equal but for
    case. Raises :class:`TargetNotFound`."""
    pool = names if isinstance(names, set | frozenset | dict) else list(names)
    if typed in pool:
        return typed
    folded = typed.casefold()
    same = [n for n in pool if n.casefold() == folded]
    if len(same) == 1:
        return same[0]
    if len(same) > 1:
        raise TargetNotFound(f"{what} {typed} is ambiguous: {join(sorted(same))}")
    raise TargetNotFound(f"{what} {typed} not found{_hint(typed, pool)}")


def match_endpoint(typed: str, snapshot: FleetSnapshot) -> str:
    """``ns/name`` as typed, or ``name`` when one namespace has an endpoint of that name."""
    keys = snapshot.endpoint_by_key
    if "/" not in typed and typed not in keys:
        folded = typed.casefold()
        named = sorted(k for k in keys if k.rpartition("/")[2].casefold() == folded)
        if len(named) == 1:
            return named[0]
        if len(named) > 1:
            raise TargetNotFound(f"endpoint {typed} is in several namespaces: {join(named)}")
    return match_name(typed, keys, "endpoint")


def match_nodes(names: Sequence[str], snapshot: FleetSnapshot) -> tuple[str, ...]:
    """Every node named, canonical, each once; :class:`TargetNotFound` naming all that are missing."""
    found: list[str] = []
    missing: list[str] = []
    for typed in names:
        try:
            found.append(match_name(typed, snapshot.node_by_name, "node"))
        except TargetNotFound:
            missing.append(typed)
    if missing:
        hint = _hint(missing[0], snapshot.node_by_name) if len(missing) == 1 else ""
        raise TargetNotFound(f"node{'s' if len(missing) > 1 else ''} {join(missing)} not found{hint}")
    return tuple(dict.fromkeys(found))


def _match_choice(typed: str, choices: Sequence[str], what: str) -> str:
    try:
        return match_name(typed, choices, what)
    except TargetNotFound:
        raise ArgError(f"no {what} {typed!r} in the fleet; it has {join(choices) or 'none'}") from None


Completer = Callable[[FleetSnapshot], Sequence[str]]


def candidates(kind: Kind, snapshot: FleetSnapshot) -> Sequence[str]:
    """What a user may type for an argument of ``kind``, for completion."""
    if kind is Kind.ENDPOINT:
        return [e.key for e in snapshot.endpoints]
    if kind is Kind.NODES:
        return [n.name for n in snapshot.nodes]
    if kind is Kind.POOL:
        return [p.name for p in snapshot.pools]
    if kind is Kind.GPU_MODEL:
        return sorted({n.gpu_model for n in snapshot.nodes if n.gpu_model})
    if kind is Kind.ZONE:
        return sorted({n.zone for n in snapshot.nodes if n.zone})
    return ()
