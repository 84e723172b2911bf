"""The cleaning boundary: nothing a remote system writes can move the cursor, clear the screen, set the title,
write the clipboard, reorder text or hide characters once it has passed :func:`clean`."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from aios_tui.domain.text import LIMIT, clean, clean_lines, is_clean

HOSTILE = [
    ("\x1b[2J\x1b[H", ""),  # clear the screen, cursor home
    ("a\x1b]0;pwned\x07b", "ab"),  # set the window title (BEL)
    ("a\x1b]52;c;cm0gLXJmIH4=\x1b\\b", "ab"),  # write the clipboard (ST)
    ("a\x9d52;c;Zm9v\x9cb", "ab"),  # the same in 8-bit C1 form
    ("a\x1bP+q544e\x1b\\b", "ab"),  # a DCS request
    ("\x9b31mred\x9b0m", "red"),  # 8-bit CSI
    ("a\x1b[?1049hb", "ab"),  # alternate screen
    ("a\x1b(Bb", "ab"),  # designate a character set
    ("a\x1b]8;;http://evil/\x1b\\link\x1b]8;;\x1b\\b", "alinkb"),  # a hyperlink
    ("unterminated \x1b]0;title", "unterminated "),
    ("evil\u202egnp.exe", "evilgnp.exe"),  # right-to-left override
    ("a\u2066b\u2069c\u200fd", "abcd"),  # isolates and a mark
    ("pa\u200bss\u200d\ufeff", "pass"),  # zero-width characters
    ("soft\u00adhyphen", "softhyphen"),
    ("bell\x07 nul\x00 del\x7f", "bell nul del"),
    ("tab\there\nnext\rline", "tab here next line"),
    ("para\u2029sep", "para sep"),
    ("\ud800lone", "lone"),
]


@pytest.mark.parametrize(("hostile", "shown"), HOSTILE)
def test_hostile_strings_come_out_plain(hostile: str, shown: str) -> None:
    assert clean(hostile) == shown
    assert is_clean(clean(hostile))


def test_ordinary_text_passes_untouched() -> None:
    for text in (
        "nvcr.io/nvidia/pytorch:24.08-py3",
        "0/8 nodes are available: 8 Insufficient nvidia.com/gpu.",
        "naïve café",
        "日本語のノード",
        "GPU 👍",
        "",
    ):
        assert clean(text) == text


def test_length_is_capped_with_an_ellipsis() -> None:
    assert clean("x" * 5000) == "x" * (LIMIT - 1) + "…"
    assert len(clean("y" * 5000, limit=40)) == 40
    assert clean("short", limit=40) == "short"
    assert clean(None) == "" and clean(42) == "42"


def test_lines_keep_their_breaks_and_lose_the_rest() -> None:
    assert clean_lines("ok\r\n\x1b[31mred\x1b[0m\n\ttabbed") == "ok\nred\n tabbed"


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400), st.integers(min_value=1, max_value=500))
def test_whatever_comes_in_comes_out_clean_short_and_stable(text: str, limit: int) -> None:
    out = clean(text, limit)
    assert is_clean(out)
    assert len(out) <= limit
    assert "\x1b" not in out and not any(0x80 <= ord(c) <= 0x9F for c in out)
    assert clean(out, limit) == out  # idempotent: cleaning twice changes nothing more


@given(st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=200))
def test_printable_ascii_is_never_changed(text: str) -> None:
    assert clean(text, 1000) == text
