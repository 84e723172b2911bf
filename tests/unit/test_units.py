"""Units and NA, value by value: every cut-off of the formatters at its exact value and either side of it.

Written against the mutants of ``scripts/mutation.py aios_tui/domain/units.py``: each assertion pins one
value a changed comparison, constant or return would print differently.
"""

from __future__ import annotations

import math
import pickle

import pytest

from aios_tui.domain import NA, NaType, fmt, fmt_age, fmt_mib, fmt_money, fmt_pct, is_na, num

# --- NA ---------------------------------------------------------------------------------------------------


def test_na_is_one_object_that_pickles_to_itself() -> None:
    assert NaType() is NA
    assert NaType() is NaType()
    assert isinstance(NA, NaType)
    assert pickle.loads(pickle.dumps(NA)) is NA
    assert NA.__reduce__() == "NA"


def test_na_prints_and_converts() -> None:
    assert repr(NA) == "NA"
    assert str(NA) == "N/A"
    assert format(NA, "") == "N/A"
    assert f"{NA:.1f}" == "N/A"
    assert bool(NA) is False
    assert math.isnan(float(NA))


def test_na_arithmetic_is_na_itself() -> None:
    assert NA + 1 is NA
    assert 1.5 * NA is NA
    assert -NA is NA
    assert abs(NA) is NA


def test_na_compares_false_with_bools_not_none() -> None:
    assert (NA < 1) is False
    assert (NA <= 1) is False
    assert (NA > 1) is False
    assert (NA >= 1) is False
    assert (NA == NA) is True
    assert (NA == 0) is False
    assert (NA != NA) is False


def test_na_hashes_like_itself_and_fits_in_a_set() -> None:
    assert hash(NA) == hash(NaType())
    assert {NA, NA} == {NA}
    assert {NA: 1}[NA] == 1


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (NA, True),
        (None, True),
        (math.nan, True),
        (0.0, False),
        (1.0, False),
        (0, False),
        (math.inf, False),
        ("N/A", False),
    ],
)
def test_is_na(value: object, expected: bool) -> None:
    assert is_na(value) is expected


def test_num() -> None:
    assert num(NA) == 0.0
    assert num(math.nan) == 0.0
    assert num(NA, 5.0) == 5.0
    assert num(2.5) == 2.5
    assert num(2.5, 5.0) == 2.5


# --- fmt, fmt_pct ---------------------------------------------------------------------------------------


def test_fmt() -> None:
    assert fmt(math.inf) == "inf"  # lower case: the default spec is "f", not "F"
    assert fmt(3.6) == "4"
    assert fmt(3) == "3"
    assert fmt(2.25, ".1f", " W") == "2.2 W"
    assert fmt(NA) == "N/A"
    assert fmt(None, ".1f", " W") == "N/A"


def test_fmt_pct() -> None:
    assert fmt_pct(97.4) == "97%"
    assert fmt_pct(-math.inf) == "-inf%"
    assert fmt_pct(12.34, ".1f") == "12.3%"
    assert fmt_pct(NA) == "N/A"


# --- fmt_mib: 1024 MiB and 100 GiB ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mib", "expected"),
    [
        (0, "0MiB"),
        (812, "812MiB"),
        (1023, "1023MiB"),
        (1023.4, "1023MiB"),
        (1023.6, "1.0GiB"),  # rounds to 1024: the next unit, not "1024MiB"
        (1024, "1.0GiB"),  # the cut-off itself
        (1536, "1.5GiB"),
        (60 * 1024, "60.0GiB"),  # off by one in the divisor: 59.9 or 60.1
        (99.5 * 1024, "99.5GiB"),
        (99.94 * 1024, "99.9GiB"),
        (99.96 * 1024, "100GiB"),  # rounds to 100.0: not "100.0GiB"
        (100 * 1024, "100GiB"),  # the cut-off itself
        (143_771, "140GiB"),
        (NA, "N/A"),
    ],
)
def test_fmt_mib(mib: float, expected: str) -> None:
    assert fmt_mib(mib) == expected


# --- fmt_money: the sign, the cents and $10k ------------------------------------------------------------


@pytest.mark.parametrize(
    ("dollars", "expected"),
    [
        (0.0, "$0.00/h"),
        (-0.0, "$0.00/h"),
        (-0.001, "$0.00/h"),  # rounds to zero cents: no sign
        (-0.004, "$0.00/h"),
        (0.004, "$0.00/h"),
        (-0.01, "-$0.01/h"),
        (0.5, "$0.50/h"),
        (-0.5, "-$0.50/h"),
        (1, "$1.00/h"),
        (-3, "-$3.00/h"),
        (98.321, "$98.32/h"),
        (1234.5, "$1,234.50/h"),
        (9_999.99, "$9,999.99/h"),
        (9_999.996, "$10.0k/h"),  # $10,000.00 to the cent: past the cut-off
        (10_000, "$10.0k/h"),  # the cut-off itself
        (-10_000, "-$10.0k/h"),
        (12_400, "$12.4k/h"),
        (1_000_000, "$1000.0k/h"),  # off by one in the divisor: 999.0k or 1001.0k
        (NA, "N/A"),
    ],
)
def test_fmt_money(dollars: float, expected: str) -> None:
    assert fmt_money(dollars) == expected


def test_fmt_money_per() -> None:
    assert fmt_money(2, per="") == "$2.00"
    assert fmt_money(-12_400, per="/mo") == "-$12.4k/mo"


# --- fmt_age: 120 s, 60 min, 24 h ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-10, "0s"),
        (0, "0s"),
        (59.9, "59s"),
        (119, "119s"),
        (120, "2m"),  # the cut-off itself
        (179, "2m"),
        (150, "2m"),
        (3_540, "59m"),
        (3_599, "59m"),
        (3_600, "1h"),  # the cut-off itself
        (7_200, "2h"),
        (3 * 3600 + 5 * 60, "3h05m"),
        (3 * 3600 + 12 * 60, "3h12m"),
        (23 * 3600, "23h"),
        (86_399, "23h59m"),
        (86_400, "1d"),  # the cut-off itself
        (48 * 3600, "2d"),
        (49 * 3600 + 59 * 60, "2d1h"),
        (5 * 86_400, "5d"),
        (23 * 86_400, "23d"),  # off by one in the divisor: 24d
        (23 * 86_400 + 3600, "23d1h"),
        (NA, "N/A"),
    ],
)
def test_fmt_age(seconds: float, expected: str) -> None:
    assert fmt_age(seconds) == expected
