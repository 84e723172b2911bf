#!/usr/bin/env bash
# Checks that need a real NVIDIA GPU, run by hand on a machine that has one (CI has none).
#
#   scripts/gpu_check.sh [OUT_DIR]
#
# 1. The real-binding NVML tests (tests/unit/test_nvml.py -k real) against the machine's driver.
# 2. bench/bench_nvml.py --real: fetch times, the event loop's worst stall and every NVML call's real cost.
# 3. The SSH source's poll command (the one it sends over SSH) run locally, parsed as the source parses it.
# 4. The NVML source polled while a matmul loads the GPU (needs torch), to see util, power and throttle move.
#
# Needs python3 with nvidia-ml-py, pytest and pytest-asyncio; the GPU machine lent to sessions lacks
# pytest-asyncio and carries it as a wheel in .whl/ (installed below when present).
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_check}}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=$PWD
if compgen -G ".whl/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl || exit 1
    export PYTHONPATH=$PWD:/tmp/site
fi

echo "== nvidia-smi"
nvidia-smi --query-gpu=name,driver_version,memory.total,power.limit --format=csv | tee "$out/smi.txt"

echo "== 1. real-binding tests"
python3 -m pytest -p no:cacheprovider -o addopts="" -o asyncio_mode=auto -q -rs tests/unit/test_nvml.py -k real

echo "== 2. bench_nvml --real"
python3 bench/bench_nvml.py --real --fetches 20 --slow-every 5 | tee "$out/bench_nvml_real.txt"

echo "== 3. the SSH source's poll command on real nvidia-smi"
python3 - <<'PY' 2>&1 | tee "$out/smi_parse.txt"
import secrets, subprocess
from aios_tui.sources._smi_parse import (
    parse_apps, parse_events, parse_gpus, parse_users, poll_command, split_sections,
)

token = secrets.token_hex(8)
cmd = poll_command("nvidia-smi", limit=10, token=token)  # exactly what the source runs over SSH
done = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, timeout=30)
print(f"status {done.returncode}, {len(done.stdout)} bytes: {done.stdout[:600]!r} {done.stderr[:300]!r}")
sections = split_sections(done.stdout, token)
print("  sections:", {k: v[0] for k, v in sections.items()})
events = parse_events(sections["events"][1])
for g in parse_gpus(sections["gpus"][1], node="here", throttle=events):
    print("  parsed:", g)
print("  apps:", parse_apps(sections["apps"][1]))
print("  users:", parse_users(sections["users"][1]))
PY

echo "== 4. NVML source while the GPU is loaded"
python3 - <<'PY' 2>&1 | tee "$out/nvml_load.txt"
import asyncio, subprocess, sys, time
from aios_tui.config import NvmlSettings
from aios_tui.sources.nvml import NvmlSource

LOAD = """
import time, torch
a = torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16)
end = time.time() + 14
while time.time() < end:
    for _ in range(50):
        a = (a @ a).clamp_(-1, 1)
    torch.cuda.synchronize()
"""

async def main():
    src = NvmlSource(settings=NvmlSettings(enabled=True, slow_every=3))
    load = subprocess.Popen([sys.executable, "-c", LOAD])
    try:
        for i in range(16):
            began = time.perf_counter()
            data = await src.fetch()
            took = (time.perf_counter() - began) * 1000
            for g in data.gpus:
                print(f"t={i:2d}s util={g.util} mem={g.mem_used}/{g.mem_total} temp={g.temp} "
                      f"power={g.power}/{g.power_limit} sm={g.sm_clock}/{g.sm_clock_max} "
                      f"throttle={g.throttle!r} health={g.health} fetch={took:.1f}ms")
            for uuid, d in src.details().items():
                if i % 5 == 0:
                    print("   detail", uuid[:12], d)
            await asyncio.sleep(1)
    finally:
        load.wait(timeout=30)
        await src.close()

asyncio.run(main())
PY
