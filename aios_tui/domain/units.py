"""Units and the NA value.

A metric a source cannot give is ``NA``: it prints as ``N/A``, compares false, and behaves like NaN in
arithmetic, so a missing reading never raises (the idea of nvitop's ``NaType``).
"""

from __future__ import annotations

import math
from typing import Any, Final, TypeAlias

__all__ = ["NA", "Metric", "NaType", "fmt", "fmt_age", "fmt_mib", "fmt_money", "fmt_pct", "is_na", "num"]


class NaType:
    """The single "not available" value."""

    __slots__ = ()
    _instance: NaType | None = None

    def __new__(cls) -> NaType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "NA"

    def __str__(self) -> str:
        return "N/A"

    def __format__(self, spec: str) -> str:
        return "N/A"

    def __bool__(self) -> bool:
        return False

    def __float__(self) -> float:
        return math.nan

    def __reduce__(self) -> str:
        return "NA"

    def _na(self, *_: Any) -> NaType:
        return self

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _na
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __pow__ = _na
    __neg__ = __pos__ = __abs__ = _na

    def _false(self, _: Any) -> bool:
        return False

    __lt__ = __le__ = __gt__ = __ge__ = _false

    def __eq__(self, other: object) -> bool:
        return other is self

    def __hash__(self) -> int:
        return 0x4E41


NA: Final = NaType()

#: A reading: a number, or NA when the source cannot give it.
Metric: TypeAlias = float | NaType


def is_na(value: object) -> bool:
    """True for NA, None and NaN."""
    return value is NA or value is None or (isinstance(value, float) and math.isnan(value))


def num(value: Metric, default: float = 0.0) -> float:
    """The value as a float, ``default`` where it is NA."""
    return default if is_na(value) else float(value)


def fmt(value: Metric | int | None, spec: str = ".0f", unit: str = "") -> str:
    """Format a reading; NA (or NaN, or None) gives ``N/A``."""
    if is_na(value):
        return "N/A"
    return f"{value:{spec}}{unit}"


def fmt_pct(value: Metric, spec: str = ".0f") -> str:
    return fmt(value, spec, "%")


def fmt_mib(value: Metric) -> str:
    """MiB as a short human figure, labelled with the binary units it is in: 812MiB, 21.4GiB, 140GiB. Rounded
    before the unit is chosen, so 1023.6 MiB is 1.0GiB (not 1024MiB) and 102,399 MiB is 100GiB."""
    if is_na(value):
        return "N/A"
    mib = float(value)
    if round(mib) < 1024:
        return f"{mib:.0f}MiB"
    gib = mib / 1024
    return f"{gib:.1f}GiB" if round(gib, 1) < 100 else f"{gib:.0f}GiB"


def fmt_money(value: Metric, per: str = "/h") -> str:
    """Dollars: $98.32/h, $12.4k/h; N/A when unknown or not finite (never "$infk/h")."""
    if is_na(value) or not math.isfinite(value):  # type: ignore[arg-type]
        return "N/A"
    # Rounded to the cents printed before the sign is taken: -0.001 is $0.00, not -$0.00.
    v = round(float(value), 2)
    sign = "-" if v < 0 else ""
    v = abs(v)
    if v >= 10_000:
        return f"{sign}${v / 1000:.1f}k{per}"
    return f"{sign}${v:,.2f}{per}"


def fmt_age(seconds: Metric) -> str:
    """A duration the way kubectl prints ages: 42s, 7m, 3h12m, 5d."""
    if is_na(seconds):
        return "N/A"
    s = max(0, int(float(seconds)))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 60:
        return f"{m}m"
    h, m = divmod(m, 60)
    if h < 24:
        return f"{h}h{m:02d}m" if m else f"{h}h"
    return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
