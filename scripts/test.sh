#!/usr/bin/env bash
# The project's test command: ./scripts/test.sh [pytest arguments…]
#
# On a machine with only python3.11 it creates .venv, installs the package with its test extras, checks what
# pip really installed, then runs the linters, the type checker, the layer contracts and the tests.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON="${PYTHON:-python3.11}"
VENV=.venv

step() { printf '\n==> %s\n' "$*"; }
fail() { printf 'test.sh: %s\n' "$*" >&2; exit 1; }

# --- environment -------------------------------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating $VENV with $PYTHON"
    command -v "$PYTHON" >/dev/null || fail "$PYTHON not found (set PYTHON=/path/to/python3.11)"
    "$PYTHON" -m venv "$VENV"
fi
export PATH="$PWD/$VENV/bin:$PATH"
export VIRTUAL_ENV="$PWD/$VENV"

# Reinstall only when pyproject.toml changed since the last install (the editable install tracks the code).
stamp="$VENV/.aios-tui-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [[ ! -f "$stamp" || "$(cat "$stamp")" != "$want" ]]; then
    step "pip install -e '.[test,gcp,azure]'"
    python -m pip install --quiet -e '.[test,gcp,azure]'
    echo "$want" >"$stamp"
fi

step "checking what pip installed"
# The known trap: kubernetes 37 wants python-dateutil>=3 while botocore wants <3, and pip "resolves" that by
# installing boto3 0.0.3, which has no botocore at all. Fail loudly instead of testing the wrong thing.
python - <<'PY'
import re
import sys
from importlib.metadata import PackageNotFoundError, version


def parse(v: str) -> tuple[int, ...]:
    out = []
    for part in v.split("."):
        m = re.match(r"\d+", part)
        if not m:
            break
        out.append(int(m[0]))
        if m.end() < len(part):  # 37.0.0rc1: the release part ends here
            break
    return tuple(out)


rules = {  # package: (lowest allowed, first refused)
    "boto3": ((1, 34), (2,)),
    "botocore": ((1, 34), (2,)),
    "kubernetes": ((30,), (37,)),
    "python-dateutil": ((2, 8), (3,)),
    "textual": ((8, 2), (8, 3)),
    "prometheus-client": ((0, 20), (1,)),
    "moto": ((5, 0), (6,)),
    "google-cloud-compute": ((1, 20), (2,)),
    "google-cloud-container": ((2, 50), (3,)),
    "azure-identity": ((1, 23), (2,)),
    "azure-mgmt-compute": ((35,), (36,)),
    "azure-mgmt-containerservice": ((40,), (41,)),
}
bad = []
for name, (low, high) in rules.items():
    try:
        v = version(name)
    except PackageNotFoundError:
        bad.append(f"{name} is not installed")
        continue
    if not low <= parse(v) < high:
        bad.append(f"{name} {v} installed, need >= {'.'.join(map(str, low))} and < {'.'.join(map(str, high))}")
    else:
        print(f"  {name} {v}")
if sys.version_info < (3, 11):
    bad.append(f"python {sys.version.split()[0]}, need >= 3.11")
if bad:
    sys.exit("test.sh: wrong packages installed:\n  " + "\n  ".join(bad))
PY
python -m pip check

# --- services --------------------------------------------------------------------------------------------
# Real peers the source tests run against start here (later issues): a Prometheus server scraping a test
# exporter, moto in server mode, an asyncssh server on loopback. Each must export its address for the tests
# and be stopped by a trap on EXIT. Under CI (CI=true) a peer that cannot start is a failure, never a skip.

# Prometheus (Debian's package): the tests/prom fixtures start one per test, each with its own scrape
# targets, so the script only makes sure the binary is there and says where.
step "prometheus"
# $EUID, not `id -u`: on some sandboxes /usr/bin/id reports another uid than the one the shell runs as.
if ! command -v prometheus >/dev/null && [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "  installing Debian's prometheus package"
    # The package's init script would start a daemon on 0.0.0.0:9090; policy-rc.d (101: "action forbidden")
    # keeps it from doing so where the image does not already forbid it, as Docker's Debian images do.
    policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    fi
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus \
        >/dev/null || echo "  apt-get install prometheus failed" >&2
    [[ -z "$policy" ]] || rm -f "$policy"
fi
if prom_bin="$(command -v prometheus)"; then
    export AIOS_TUI_PROMETHEUS_BIN="$prom_bin"
    echo "  $("$prom_bin" --version 2>&1 | head -n1) at $prom_bin"
elif [[ "${CI:-}" == "true" ]]; then
    fail "prometheus is not installed and could not be (CI=true: the Prometheus tests must run; apt-get install prometheus as root)"
else
    echo "  WARNING: no prometheus binary: the Prometheus tests (tests/prom) will skip" >&2
fi

# OpenSSH (Debian's openssh-server): tests/ssh/openssh.py starts one sshd per test on 127.0.0.1 with a
# temporary host key, so the script only makes sure the binary is there and says where. The package's own
# daemon (0.0.0.0:22) is kept from starting the same way as Prometheus's.
step "sshd"
sshd_bin="$(command -v sshd || echo /usr/sbin/sshd)"
if [[ ! -x "$sshd_bin" ]] && [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "  installing Debian's openssh-server"
    policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy"
    fi
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        openssh-server >/dev/null; } || echo "  apt-get install openssh-server failed" >&2
    [[ -z "$policy" ]] || rm -f "$policy"
fi
if [[ -x "$sshd_bin" ]]; then
    export AIOS_TUI_SSHD_BIN="$sshd_bin"
    echo "  $("$sshd_bin" -V 2>&1 | head -n1) at $sshd_bin"
elif [[ "${CI:-}" == "true" ]]; then
    fail "sshd is not installed and could not be (CI=true: the OpenSSH tests must run; apt-get install openssh-server as root)"
else
    echo "  WARNING: no sshd: the OpenSSH tests (tests/ssh/test_openssh.py) will skip" >&2
fi

# tmux: the terminal tests (tests/e2e) type into a real terminal.
step "tmux"
if ! command -v tmux >/dev/null && [[ $EUID -eq 0 ]] && command -v apt-get >/dev/null; then
    echo "  installing Debian's tmux"
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        tmux >/dev/null; } || echo "  apt-get install tmux failed" >&2
fi
if command -v tmux >/dev/null; then
    echo "  $(tmux -V) at $(command -v tmux)"
elif [[ "${CI:-}" == "true" ]]; then
    fail "tmux is not installed and could not be (CI=true: apt-get install tmux as root)"
else
    echo "  WARNING: no tmux: the terminal tests (tests/e2e) will skip" >&2
fi

# --- checks ----------------------------------------------------------------------------------------------
step "ruff check"
ruff check .
step "ruff format --check"
ruff format --check .
step "mypy"
mypy
step "lint-imports"
lint-imports

step "pytest $*"
status=0
pytest "$@" || status=$?
if [[ $status -eq 5 ]]; then
    fail "pytest collected no tests (exit status 5)"
fi
((status == 0)) || exit "$status"

# No test may depend on the date or the hour: the console's and the CLI's tests again at two other wall
# clocks (tests/conftest.py moves time.time and datetime.now with time-machine; the monotonic clock that
# timers and timeouts use is left alone). Skipped when pytest was given its own arguments (a subset).
if (($# == 0)); then
    for when in "2027-02-28T23:59:30+00:00" "2026-06-30T04:10:00+00:00"; do
        step "pytest with the wall clock at $when"
        WALL_CLOCK_FOR_TESTS="$when" pytest -q -p no:cacheprovider \
            tests/unit/test_cli.py tests/unit/test_cli_act.py tests/unit/test_registry.py tests/ui tests/e2e
    done
fi
