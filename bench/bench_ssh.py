"""Benchmark the SSH source: one full poll of N hosts (the issue asks for 500 within a 10 s interval).

The hosts are one real asyncssh server (``tests/ssh/sshd.py``, answering with the recorded H200 outputs)
running in a child process on 127.0.0.1, reached as N "hosts" with distinct names: N separate SSH connections
(key exchange, public-key login), each polled with the source's three nvidia-smi queries. The server runs
in its own process so that the time measured is the console's, not the server's; on a small machine the
two still share the CPUs, so the figures are an upper bound on what the console spends.

Reported: the first poll (opening every connection) and the following ones (connections reused).

    .venv/bin/python bench/bench_ssh.py [--hosts 100 500] [--max-connections 64] [--polls 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import multiprocessing.connection
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.ssh

import asyncssh

from aios_tui.config import SshHostSettings
from aios_tui.sources.ssh import SshSource

INTERVAL = 10.0


def _serve(client_public: str, pipe: multiprocessing.connection.Connection) -> None:
    from tests.ssh.sshd import start

    async def main() -> None:
        server = await start(asyncssh.import_public_key(client_public))
        pipe.send((server.port, server.known_hosts_line()))
        await asyncio.Event().wait()

    asyncio.run(main())


async def bench(hosts: int, max_connections: int, polls: int, port: int, tmp: Path) -> list[float]:
    """Seconds per full poll: the first (connecting), then the reused ones."""
    inventory = [
        SshHostSettings(
            name=f"gpu-{i:04d}",
            host="127.0.0.1",
            port=port,
            user="gpu",
            known_hosts=tmp / "known_hosts",
            identity_file=tmp / "id_ed25519",
            interval=1.0,
            timeout=60.0,
        )
        for i in range(hosts)
    ]
    now = [0.0]
    src = SshSource(hosts=inventory, clock=lambda: now[0], max_connections=max_connections)
    times = []
    try:
        for _ in range(polls):
            now[0] += 2.0  # every host is due
            start = time.perf_counter()
            data = await src.fetch()
            times.append(time.perf_counter() - start)
            ready = sum(n.ready for n in data.nodes)
            if ready != hosts or len(data.gpus) != hosts:
                raise SystemExit(f"only {ready} of {hosts} hosts answered: {src.details()}")
    finally:
        await src.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument("--polls", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_s:
        tmp = Path(tmp_s)
        key = asyncssh.generate_private_key("ssh-ed25519")
        key.write_private_key(str(tmp / "id_ed25519"))
        ctx = multiprocessing.get_context("spawn")
        ours, theirs = ctx.Pipe()
        server = ctx.Process(target=_serve, args=(key.export_public_key().decode(), theirs), daemon=True)
        server.start()
        try:
            port, known = ours.recv()
            (tmp / "known_hosts").write_text(known)
            print(f"max_connections={args.max_connections}, one asyncssh server in a child process")
            for n in args.hosts:
                times = asyncio.run(bench(n, args.max_connections, args.polls, port, tmp))
                reused = times[1:] or times
                fits = "yes" if max(times) < INTERVAL else "NO"
                print(
                    f"{n:5d} hosts: first poll (connecting) {times[0]:6.2f} s, "
                    f"reused {min(reused):6.2f}-{max(reused):6.2f} s; fits a {INTERVAL:g} s interval: {fits}"
                )
        finally:
            server.terminate()
            server.join()


if __name__ == "__main__":
    main()
