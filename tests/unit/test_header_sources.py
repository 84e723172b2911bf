"""The header's first line at 80 columns: every source's state stays readable (in signs, or in words in
ASCII), the context is what gets cut, and nothing is drawn past the width."""

from __future__ import annotations

from aios_tui.domain import FleetSnapshot, SourceHealth, SourceState
from aios_tui.render.header import header_lines

_SOURCES = (
    SourceHealth("kubernetes", "kubernetes", SourceState.OK, last_ok=90.0),
    SourceHealth("prometheus", "prometheus", SourceState.STALE, last_ok=40.0),
    SourceHealth("ssh", "ssh", SourceState.ERROR),
    SourceHealth("aws", "aws", SourceState.PARTIAL, last_ok=95.0),
    SourceHealth("nvml", "nvml", SourceState.STARTING),
)


def _line1(width: int, *, ascii: bool = False, n: int = 3, read_only: bool = False) -> str:
    snap = FleetSnapshot(timestamp=100.0, sources=_SOURCES[:n], context="prod-us-east-1 (eks, 3 clusters)")
    line1, _ = header_lines(snap, 100.0, width, ascii=ascii, read_only=read_only)
    assert line1.cell_len <= width
    return line1.plain


def test_wide_header_says_each_state_in_words() -> None:
    assert "● kubernetes  ● prometheus stale 60s  ● ssh error" in _line1(160)


def test_80_columns_keep_every_source_state() -> None:
    assert _line1(80) == "aios-tui prod-us-east-1 (eks, 3 … │ ● kubernetes ◐ prometheus ✗ ssh 00:01:40 UTC"
    assert _line1(80, ascii=True) == (
        "aios-tui prod-us-east-1... | kubernetes:ok prometheus:stale ssh:err 00:01:40 UTC"
    )


def test_many_sources_shorten_their_names() -> None:
    unicode, ascii = _line1(80, n=5), _line1(80, n=5, ascii=True)
    assert "● kube ◐ prom ✗ ssh ◐ aws ○ nvml" in unicode
    assert ascii == "aios-tui prod-us-eas... | kub:ok pro:stale ssh:err aws:part nvm:... 00:01:40 UTC"
    assert "READ-ONLY" in _line1(80, n=5, read_only=True)


def test_shortened_names_stay_apart() -> None:
    """Two clusters' sources cut to four letters would both read ``k8s``: they keep what tells them apart."""
    names = ("k8s:prod-us-east", "k8s:prod-eu", "prometheus", "ssh", "aws")
    sources = tuple(SourceHealth(n, "k", SourceState.OK, last_ok=99.0) for n in names)
    line1, _ = header_lines(FleetSnapshot(timestamp=100.0, sources=sources, context="prod"), 100.0, 80)
    assert "● k8s:prod-u ● k8s:prod-e ● prom ● ssh ● aws" in line1.plain
