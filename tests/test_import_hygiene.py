"""The core never loads textual; the command line loads it only when the console starts.

Each check runs in a fresh interpreter, since this one may have imported textual for other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    for var in [v for v in os.environ if v.startswith("AIOS_TUI_")]:
        monkeypatch.delenv(var)


def _loaded_after(code: str) -> set[str]:
    """Top-level packages in sys.modules after running ``code`` in a new interpreter."""
    probe = code + "\nimport sys\nprint('\\n' + ' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n"
    done = subprocess.run(
        [sys.executable, "-c", probe], check=False, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return set(done.stdout.splitlines()[-1].split())


def test_the_core_does_not_load_textual() -> None:
    core = ("ops", "alloc", "sources", "poll", "domain", "config")
    loaded = _loaded_after("import " + ", ".join(f"aios_tui.{m}" for m in core))
    assert "aios_tui" in loaded  # the probe works
    assert "textual" not in loaded


@pytest.mark.parametrize("module", ["aios_tui.domain", "aios_tui.alloc"])
def test_the_pure_core_loads_no_ui_and_no_sdk(module: str) -> None:
    loaded = _loaded_after(f"import {module}")
    assert not loaded & {
        "textual",
        "rich",
        "kubernetes",
        "boto3",
        "asyncssh",
        "requests",
        "pynvml",
    }


def test_the_command_line_loads_textual_only_for_the_console() -> None:
    assert "textual" not in _loaded_after("import aios_tui.cli")
    # A headless command runs to the end without it.
    snapshot = (
        "import aios_tui.cli as c; assert c.main(['snapshot', '--sim', '--sim-nodes', '3', '--json']) == 0"
    )
    assert "textual" not in _loaded_after(snapshot)
    # The console itself does need it (proved without running the app).
    assert "textual" in _loaded_after("import aios_tui.ui.app")
