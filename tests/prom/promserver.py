"""A real ``prometheus`` (Debian's package, 2.42 here) on 127.0.0.1 with a temporary data directory.

``scripts/test.sh`` installs the binary and exports ``AIOS_TUI_PROMETHEUS_BIN``; the fixtures start one server
per test, each scraping its own targets (job ``fleet``, ``honor_labels: true``; ``jobs`` adds more scrape
jobs, the same target in two of them as a ServiceMonitor and a static job would). ``CI=true`` turns a
missing binary into a failure (see :func:`require_prometheus`), as ``tests/ssh/sshd.py`` does for its server.

``web_config`` is Prometheus' own ``--web.config.file``: TLS (:func:`self_signed`) and basic auth
(:data:`BASIC_AUTH_USER` with :data:`BASIC_AUTH_PASSWORD`), so that the source meets a real certificate it
does not trust and a real 401.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

ENV_BIN = "AIOS_TUI_PROMETHEUS_BIN"


def prometheus_binary() -> str | None:
    """``$AIOS_TUI_PROMETHEUS_BIN`` if set (and executable), else ``prometheus`` on PATH, else None."""
    env = os.environ.get(ENV_BIN, "")
    if env:
        return env if os.access(env, os.X_OK) else None
    return shutil.which("prometheus")


def require_prometheus() -> str:
    """The binary; when there is none the test skips, or fails under ``CI=true``."""
    binary = prometheus_binary()
    if binary is None:
        why = f"no prometheus binary (${ENV_BIN}={os.environ.get(ENV_BIN, '')!r}, none on PATH)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{why} (CI=true: scripts/test.sh installs Debian's prometheus package)")
        pytest.skip(f"{why}: apt-get install prometheus, or run scripts/test.sh")
    return binary


BASIC_AUTH_USER = "admin"
BASIC_AUTH_PASSWORD = "pw-71c2b0"
#: bcrypt of BASIC_AUTH_PASSWORD (cost 4, made once with ``crypt.crypt(pw, crypt.mksalt(METHOD_BLOWFISH,
#: rounds=16))``): Prometheus' web config takes only bcrypt hashes.
BASIC_AUTH_HASH = "$2b$04$Od2CrEBi.iT9JsPEDOjvFu8u31wDgRUDYPmsBY78GeOg2lMehb1Wm"


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate for ``host`` and its key (``cert.pem``, ``key.pem``), valid a day around
    the time it is made."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aios-tui test prometheus")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=12))
        .not_valid_after(now + datetime.timedelta(hours=12))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _duration(seconds: float) -> str:
    return f"{round(seconds * 1000)}ms"


class PromServer:
    """One ``prometheus`` process; ``stop()`` / ``restart()`` keep the data directory and the port."""

    def __init__(
        self,
        binary: str,
        data_dir: Path,
        targets: Sequence[str],
        scrape_interval: float = 1.0,
        scrape_timeout: float | None = None,
        jobs: Mapping[str, Sequence[str]] | None = None,
        web_config: str = "",
    ) -> None:
        self.binary = binary
        self.data_dir = Path(data_dir)
        self.targets = list(targets)
        self.jobs = {"fleet": self.targets, **(jobs or {})}
        """Scrape job → its targets (``fleet`` is ``targets``)."""
        self.web_config = web_config
        self.scheme = "https" if "tls_server_config" in web_config else "http"
        self.scrape_interval = scrape_interval
        self.scrape_timeout = min(scrape_timeout or scrape_interval, scrape_interval)
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = self.data_dir / "prometheus.log"
        self.config_path = self.data_dir / "prometheus.yml"

    @property
    def url(self) -> str:
        if not self.port:
            raise RuntimeError("the server was never started")
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def _write_config(self) -> None:
        jobs = "".join(
            f"  - job_name: {json.dumps(job)}\n"
            "    honor_labels: true\n"
            "    static_configs:\n"
            f"      - targets: [{', '.join(json.dumps(t) for t in targets)}]\n"
            for job, targets in self.jobs.items()
        )
        self.config_path.write_text(
            "global:\n"
            f"  scrape_interval: {_duration(self.scrape_interval)}\n"
            f"  scrape_timeout: {_duration(self.scrape_timeout)}\n"
            f"  evaluation_interval: {_duration(self.scrape_interval)}\n"
            f"scrape_configs:\n{jobs}"
        )
        if self.web_config:
            (self.data_dir / "web.yml").write_text(self.web_config)

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, timeout: float = 30) -> None:
        if self.proc is not None:
            raise RuntimeError("already running")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if not self.port:
            self.port = free_port()
        storage = self.data_dir / "data"
        cmd = [
            self.binary,
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={storage}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--storage.tsdb.retention.time=2h",
            # Debian's defaults point at /etc/prometheus/console*; nothing here uses them.
            f"--web.console.templates={self.data_dir}",
            f"--web.console.libraries={self.data_dir}",
            "--log.level=info",
        ]
        if self.web_config:
            cmd.append(f"--web.config.file={self.data_dir / 'web.yml'}")
        # The readiness probe trusts this server's own certificate and takes a 401 as "up".
        probe = ssl._create_unverified_context() if self.scheme == "https" else None
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                self.proc = None
                raise RuntimeError(f"prometheus exited with status {rc} at startup:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=1, context=probe) as r:
                    if r.status == 200:
                        return
            except urllib.error.HTTPError as e:
                if e.code == 401:
                    return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"prometheus not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self, timeout: float = 10) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)

    def restart(self, timeout: float = 30) -> None:
        self.stop()
        self.start(timeout=timeout)

    # --- queries -------------------------------------------------------------------------------------
    def api(self, path: str, params: dict[str, str] | None = None, timeout: float = 5) -> Any:
        """GET ``/api/v1/<path>`` and return ``data``; raises on a connection error or an API error."""
        q = "?" + urllib.parse.urlencode(params) if params else ""
        with urllib.request.urlopen(f"{self.url}/api/v1/{path}{q}", timeout=timeout) as r:
            body = json.load(r)
        if body.get("status") != "success":
            raise RuntimeError(f"prometheus: {body}")
        return body["data"]

    def query(self, promql: str, at: float | None = None, timeout: float = 5) -> list[Any]:
        """The instant query's result list (empty when nothing matches), now or at Unix time ``at``."""
        params = {"query": promql} if at is None else {"query": promql, "time": f"{at:.3f}"}
        data = self.api("query", params, timeout=timeout)
        result: list[Any] = data["result"]
        return result

    def wait_for(self, promql: str, timeout: float = 20) -> list[Any]:
        """Poll until ``promql`` returns something; the result list."""
        deadline = time.monotonic() + timeout
        last: object = None
        while True:
            try:
                result = self.query(promql)
                if result:
                    return result
                last = result
            except (OSError, RuntimeError) as exc:
                last = exc
            if time.monotonic() > deadline:
                raise TimeoutError(f"{promql!r} still empty after {timeout}s (last: {last!r})")
            time.sleep(0.1)

    def scrapes(self) -> int:
        """Scrapes of job ``fleet`` stored in the last hour (counting every target)."""
        result = self.query('sum(count_over_time(up{job="fleet"}[1h]))')
        return int(float(result[0]["value"][1])) if result else 0

    def wait_for_scrapes(self, n: int = 2, timeout: float | None = None) -> None:
        """Wait until ``n`` more scrapes (of each target) are stored than when called."""
        want = self.scrapes() + n * max(1, len(self.targets))
        deadline = time.monotonic() + (timeout if timeout is not None else 10 + 3 * n * self.scrape_interval)
        while self.scrapes() < want:
            if time.monotonic() > deadline:
                raise TimeoutError(f"fewer than {n} new scrapes; prometheus log:\n{self.log_tail()}")
            time.sleep(0.05)

    def __enter__(self) -> PromServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class WarmPrometheus:
    """Servers started one test ahead, each scraping a socket that already listens.

    Prometheus 2.x applies new scrape targets on a 5 s tick (its discovery and scrape managers both
    throttle), so a server started for a test scrapes for the first time ~5.3 s later, whatever the scrape
    interval. :meth:`take` hands out a server started earlier, with the listening socket its one target
    points at (give it to ``FleetExporter.start(sock=…)``), and starts the next one at once, so the wait
    overlaps the previous test. Connections that arrive before the exporter serves wait in the backlog (a
    scrape then times out: ``up`` is 0 until the exporter runs).
    """

    def __init__(self, binary: str, root: Path, scrape_interval: float = 1.0) -> None:
        self.binary = binary
        self.root = Path(root)
        self.scrape_interval = scrape_interval
        self._n = 0
        self._next: tuple[PromServer, socket.socket] | None = None

    def _spawn(self) -> tuple[PromServer, socket.socket]:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        port = sock.getsockname()[1]
        self._n += 1
        server = PromServer(
            self.binary, self.root / f"prometheus-{self._n}", [f"127.0.0.1:{port}"], self.scrape_interval
        )
        try:
            server.start()
        except BaseException:
            sock.close()
            raise
        return server, sock

    def take(self) -> tuple[PromServer, socket.socket]:
        """A started server and the listening socket it scrapes; the caller stops and closes them."""
        pair = self._next if self._next is not None else self._spawn()
        self._next = None
        self._next = self._spawn()
        return pair

    def close(self) -> None:
        if self._next is not None:
            server, sock = self._next
            self._next = None
            server.stop()
            sock.close()
