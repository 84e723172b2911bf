"""Typed settings, layered: defaults → TOML file → environment → command-line flags.

Every setting is a field of a frozen dataclass with a docstring (the model is posting's ``config.py``).
The file is ``$XDG_CONFIG_HOME/aios-tui/config.toml`` unless ``--config`` or ``AIOS_TUI_CONFIG`` names
another; with no file the defaults run the embedded fleet. Top-level settings can be set in the environment
as ``AIOS_TUI_<NAME>`` (``AIOS_TUI_READ_ONLY=1``). Anything wrong raises :class:`ConfigError`, whose message
names the file (or variable, or flag), the key, what was expected and what was found.

This module imports nothing from the rest of the package, and neither textual nor rich.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import os
import re
import tomllib
import types
import typing
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

__all__ = [
    "CLOUDS",
    "CONFIG_ENV",
    "ENV_PREFIX",
    "PANES",
    "ROLES",
    "AwsSettings",
    "AzureSettings",
    "CloudPriceSettings",
    "ConfigError",
    "GcpSettings",
    "GrafanaSettings",
    "KubernetesSettings",
    "NvmlSettings",
    "Override",
    "PromQuerySettings",
    "PrometheusSettings",
    "ServeSettings",
    "Settings",
    "SimSettings",
    "SloSettings",
    "SshHostSettings",
    "SshSettings",
    "check_cloud",
    "default_config_path",
    "default_log_path",
    "env_overrides",
    "load_settings",
    "real_sources_enabled",
    "setting_keys",
    "sim_only",
]

ENV_PREFIX: Final = "AIOS_TUI_"
CONFIG_ENV: Final = "AIOS_TUI_CONFIG"
#: Roles, weakest first (``ops.Role`` has the same values).
ROLES: Final = ("viewer", "operator", "admin")
PANES: Final = ("nodes", "gpus", "jobs", "endpoints")
MAX_SIM_NODES: Final = 5000
#: Model servers with built-in Prometheus queries, and the endpoint figures a query can give.
MODEL_SERVERS: Final = ("vllm", "triton", "tfserving", "torchserve")
ENDPOINT_METRICS: Final = ("qps", "p50_ms", "p99_ms", "mean_ms", "error_rate", "queue")


def _opt(
    default: Any,
    *,
    lo: float | None = None,
    hi: float | None = None,
    choices: Sequence[str] | None = None,
) -> Any:
    """A field with its default and the constraints the loader checks."""
    return field(
        default=default, metadata={"lo": lo, "hi": hi, "choices": tuple(choices) if choices else None}
    )


# --- sections ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SimSettings:
    """``[sim]``: the embedded, simulated fleet."""

    enabled: bool = False
    """Run the simulated fleet next to the real sources. It runs anyway when no real source is enabled."""
    seed: int = _opt(0, lo=0, hi=2**32 - 1)
    """Random seed: the same seed gives the same fleet and the same evolution."""
    nodes: int = _opt(200, lo=1, hi=MAX_SIM_NODES)
    """Number of simulated nodes (8 GPUs each, most of them)."""
    interval: float = _opt(2.0, lo=0.1, hi=3600)
    """Seconds between two polls of the simulated fleet."""
    telemetry_period: float = _opt(30.0, lo=0, hi=3600)
    """Seconds in which every simulated GPU's reading is refreshed once, staggered across polls like a DCGM
    exporter's scrape (30 s: dcgm-exporter's own collection interval; at least 512 GPUs a poll); 0 re-reads
    every GPU at every poll, which costs more CPU on a large fleet."""


@dataclass(frozen=True, slots=True)
class KubernetesSettings:
    """``[kubernetes]``: nodes, pods, training Jobs and serving Deployments from one or more clusters."""

    enabled: bool = False
    """Poll Kubernetes."""
    kubeconfig: Path | None = None
    """Kubeconfig file; unset (or "") means ``$KUBECONFIG``, then ``~/.kube/config``, then in-cluster."""
    contexts: tuple[str, ...] = _opt(())
    """Kubeconfig contexts to watch, each as its own source; empty means the current context."""
    namespaces: tuple[str, ...] = _opt(())
    """Namespaces to list pods, Jobs and Deployments in; empty means all namespaces."""
    gpu_resource_names: tuple[str, ...] = _opt(("nvidia.com/gpu",))
    """Extended resource names that count as GPUs."""
    job_label_selector: str = ""
    """Label selector for the Jobs shown as training jobs ("" means every Job that requests GPUs)."""
    endpoint_label_selector: str = ""
    """Label selector for the Deployments shown as endpoints ("" means every one that requests GPUs)."""
    read_only: bool = False
    """Never change anything in these clusters, whatever the role."""
    read_only_contexts: tuple[str, ...] = _opt(())
    """Contexts never changed, whatever the role, while the others may be (``read_only`` covers all)."""
    rack_label: str = ""
    """Node label naming the rack (or network spine) below the zone; "" means
    ``topology.k8s.aws/network-node-layer-3``."""
    kueue_queue: str = ""
    """Kueue LocalQueue that launched training Jobs go to (created suspended; Kueue admits and places
    them); "" means each Job is created pinned to the nodes the plan chose."""
    interval: float = _opt(5.0, lo=0.5, hi=3600)
    """Seconds between two polls."""
    timeout: float = _opt(10.0, lo=0.5, hi=600)
    """Seconds before one API call is abandoned (the client's own default is to wait forever): a list page,
    or the ``/readyz`` probe each poll makes (a hung server is shown stale then). A whole list has no
    deadline while its pages keep coming."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudPriceSettings:
    """``[[aws.prices]]``, ``[[gcp.prices]]``, ``[[azure.prices]]``: a machine type's USD per hour, instead of
    the bundled list price (your discount, a committed-use or Savings Plan rate, a type the table lacks)."""

    instance_type: str
    """The machine type as the cloud names it (required): ``p5.48xlarge``, ``a3-highgpu-8g``,
    ``Standard_ND96isr_H100_v5``."""
    price: float = field(metadata={"lo": 0, "hi": 100000})
    """USD per machine-hour (required)."""
    region: str = ""
    """Only in this region ("" for every region)."""


@dataclass(frozen=True, slots=True)
class AwsSettings:
    """``[aws]``: EC2 GPU instances, Auto Scaling groups and EKS node groups as node pools, with prices."""

    enabled: bool = False
    """Poll AWS."""
    regions: tuple[str, ...] = _opt(("us-east-1",))
    """Regions to list instances and node groups in (all of them in one source per profile)."""
    profiles: tuple[str, ...] = ()
    """Profiles from ``~/.aws/config``, one source each (``aws:<profile>``); empty means one source, ``aws``,
    on the standard credential chain (``AWS_PROFILE``, the environment, the config files)."""
    endpoint_url: str = ""
    """Endpoint to send API calls to instead of AWS (a local moto server, for instance)."""
    read_only: bool = False
    """Never change desired capacities, whatever the role."""
    interval: float = _opt(60.0, lo=5, hi=3600)
    """Seconds between two polls."""
    timeout: float = _opt(10.0, lo=0.5, hi=600)
    """Seconds before one API call is abandoned."""
    max_attempts: int = _opt(3, lo=1, hi=10)
    """Tries of one API call in all, the first included (as in the AWS config files), with jittered back-off
    between them on throttling and server errors."""
    spot_prices: bool = True
    """Ask EC2 for the current spot price of the spot instances' types (else their price is unknown)."""
    prices: tuple[CloudPriceSettings, ...] = ()
    """Prices that replace the bundled table's, one ``[[aws.prices]]`` table each."""


@dataclass(frozen=True, slots=True)
class GcpSettings:
    """``[gcp]``: Compute Engine instances with GPUs, managed instance groups and GKE node pools as node
    pools, with prices; Application Default Credentials (``gcloud auth application-default login``, a
    service account key in ``GOOGLE_APPLICATION_CREDENTIALS``, the metadata server)."""

    enabled: bool = False
    """Poll Google Cloud."""
    projects: tuple[str, ...] = ()
    """Project IDs to list (all in one source, ``gcp``); empty means the credentials' own project
    (``GOOGLE_CLOUD_PROJECT``, or the one ``gcloud config set project`` chose)."""
    regions: tuple[str, ...] = ()
    """Regions to show (``us-central1``); empty means every region."""
    endpoint_url: str = ""
    """Endpoint to send API calls to instead of Google's (Compute Engine and GKE alike; a test server)."""
    read_only: bool = False
    """Never resize pools, whatever the role."""
    interval: float = _opt(60.0, lo=5, hi=3600)
    """Seconds between two polls."""
    timeout: float = _opt(10.0, lo=0.5, hi=600)
    """Seconds before one API call is abandoned."""
    max_attempts: int = _opt(3, lo=1, hi=10)
    """Tries of one API call in all, the first included, with back-off on 429 and 503."""
    prices: tuple[CloudPriceSettings, ...] = ()
    """Prices that replace the bundled table's, one ``[[gcp.prices]]`` table each."""


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """``[azure]``: virtual machines with GPUs, VM scale sets and AKS agent pools as node pools, with prices;
    ``DefaultAzureCredential`` (the environment, workload or managed identity, ``az login``)."""

    enabled: bool = False
    """Poll Azure."""
    subscriptions: tuple[str, ...] = ()
    """Subscription IDs to list (all in one source, ``azure``); empty means ``AZURE_SUBSCRIPTION_ID``, else
    the default subscription of ``az login`` (``az account set``)."""
    regions: tuple[str, ...] = ()
    """Regions to show (``eastus``); empty means every region."""
    endpoint_url: str = ""
    """Azure Resource Manager endpoint instead of ``https://management.azure.com`` (a sovereign cloud, a test
    server)."""
    read_only: bool = False
    """Never change capacities, whatever the role."""
    interval: float = _opt(60.0, lo=5, hi=3600)
    """Seconds between two polls."""
    timeout: float = _opt(10.0, lo=0.5, hi=600)
    """Seconds before one API call is abandoned."""
    max_attempts: int = _opt(3, lo=1, hi=10)
    """Tries of one API call in all, the first included, with back-off on 429 and 503 (Retry-After)."""
    prices: tuple[CloudPriceSettings, ...] = ()
    """Prices that replace the bundled table's, one ``[[azure.prices]]`` table each."""


CLOUDS: Final = {"aws": "AWS", "gcp": "Google Cloud", "azure": "Azure"}
"""The cloud sections of the settings and what they are called; each is a provider package of
:mod:`aios_tui.sources.clouds` (a test checks that the two lists agree)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PromQuerySettings:
    """``[[prometheus.queries]]``: one endpoint metric from your own PromQL (after the built-in ones, so it
    wins where both answer)."""

    metric: str = _opt("qps", choices=ENDPOINT_METRICS)
    """Which figure the query gives: qps, p50_ms, p99_ms, mean_ms, error_rate (0..1) or queue (requests
    waiting)."""
    query: str
    """The PromQL (required); each series must carry ``namespace`` and the endpoint label."""


@dataclass(frozen=True, slots=True)
class PrometheusSettings:
    """``[prometheus]``: DCGM GPU metrics and endpoint traffic, and the history behind the sparklines."""

    enabled: bool = False
    """Poll Prometheus."""
    url: str = "http://localhost:9090"
    """Base URL of the Prometheus server, ``http://`` or ``https://`` (``https://user:password@host`` logs in
    with HTTP basic auth; the password is never shown)."""
    timeout: float = _opt(5.0, lo=0.5, hi=600)
    """Seconds before one query is abandoned."""
    max_answer_mb: float = _opt(32.0, lo=0.01, hi=4096)
    """Largest answer read, in MB (after gzip): a larger one is refused, not decoded. The largest at
    40,000 GPUs is 8-10 MB; decoding an answer takes about 19 times its size in memory."""
    interval: float = _opt(15.0, lo=1, hi=3600)
    """Seconds between two polls."""
    verify_tls: bool = True
    """Check the server's TLS certificate."""
    bearer_token_env: str = ""
    """Name of an environment variable that holds a bearer token (the token itself never goes in a file)."""
    servers: tuple[str, ...] = _opt(MODEL_SERVERS, choices=MODEL_SERVERS)
    """Model servers whose built-in queries give endpoint traffic: vllm, triton, tfserving, torchserve."""
    rate_window: float = _opt(60.0, lo=1, hi=86400)
    """Seconds over which request rates and latency quantiles are taken; at least 4 scrape intervals."""
    endpoint_label: str = "service"
    """Label that names the endpoint (its Deployment) in model-server series, next to ``namespace``."""
    node_label: str = ""
    """Label that names the node in DCGM series; "" means ``Hostname`` (older dcgm-exporter) or ``hostname``
    (newer). Where those name the exporter's pod rather than its node, relabel the node name into a label of
    its own (``kubernetes_node``, say) and name it here."""
    context: str = ""
    """Kubernetes context these series describe: with several contexts, node and namespace names are
    qualified with it, as the Kubernetes source does; "" means a single cluster."""
    queries: tuple[PromQuerySettings, ...] = ()
    """Custom PromQL for endpoint metrics, one ``[[prometheus.queries]]`` table each."""


_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _masked_url(url: str) -> str:
    """``url`` with whatever precedes an ``@`` in its authority masked, scheme or none: a password written
    where a URL was expected must not be echoed back."""
    scheme, sep, rest = url.rpartition("://") if "://" in url else ("", "", url)
    authority = rest.split("/", 1)[0]
    at = authority.rfind("@")
    return f"{scheme}{sep}***{rest[at:]}" if at >= 0 else url


_REGION: Final = {
    # us-east-1, ap-southeast-2, us-gov-west-1, cn-northwest-1: as AWS names its regions.
    "aws": (re.compile(r"[a-z]{2}(?:-[a-z]+)+-[0-9]{1,2}"), "us-east-1"),
    # us-central1, europe-west4, me-central2: as Google Cloud names its regions (zones add -a).
    "gcp": (re.compile(r"[a-z]+-[a-z]+[0-9]{1,2}"), "us-central1"),
    # eastus, westeurope, eastus2, swedencentral: as Azure names its regions (az account list-locations).
    "azure": (re.compile(r"[a-z]+[0-9]?"), "eastus"),
}
_SCOPE: Final = {
    # A project ID (lower-case letters, digits, dashes: 6-30 of them for new projects, some old ones are
    # shorter), or a domain-scoped one (example.com:my-project). Not a number, a name, a space.
    "projects": (re.compile(r"(?:[a-z0-9.-]+:)?[a-z][a-z0-9-]{0,61}[a-z0-9]"), "a Google Cloud project ID"),
    "subscriptions": (
        re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"),
        "an Azure subscription ID (a GUID)",
    ),
}


def check_cloud(name: str, section: Any, path: str | os.PathLike[str] | None) -> None:
    """What the field types cannot say of cloud section ``name`` (``aws``, ``gcp``, ``azure``): region
    names that cloud could have (a stray space or a zone name would otherwise fail only at the first poll),
    project or subscription IDs of the right shape, an endpoint URL its SDK can use, prices with a type."""
    pattern, example = _REGION[name]
    if name == "aws" and not section.regions:
        raise ConfigError(path, "[aws] regions", detail="name at least one region")
    for region in section.regions:
        if not pattern.fullmatch(region):
            raise ConfigError(
                path, f"[{name}] regions", f'{CLOUDS[name]} region names such as "{example}"', region
            )
    if len(set(section.regions)) != len(section.regions):
        raise ConfigError(path, f"[{name}] regions", detail="a region is named twice")
    for key, (shape, what) in _SCOPE.items():
        values = getattr(section, key, ())
        for value in values:
            if not shape.fullmatch(value):
                raise ConfigError(path, f"[{name}] {key}", what, value)
        if len(set(values)) != len(values):
            raise ConfigError(path, f"[{name}] {key}", detail="one is named twice")
    url = section.endpoint_url
    if url:
        try:
            parts = urllib.parse.urlsplit(url)
            usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
        except ValueError:  # a port that is not a number
            usable = False
        if not usable or url != url.strip():
            raise ConfigError(path, f"[{name}] endpoint_url", "an http:// or https:// URL", _masked_url(url))
    for i, p in enumerate(section.prices, start=1):
        if not p.instance_type.strip():
            raise ConfigError(path, f"[[{name}.prices]] #{i} instance_type", detail="empty")
        if p.region and not pattern.fullmatch(p.region):
            raise ConfigError(
                path,
                f"[[{name}.prices]] #{i} region",
                f'{CLOUDS[name]} region names such as "{example}"',
                p.region,
            )


def _check_prometheus(p: PrometheusSettings, path: str | os.PathLike[str] | None) -> None:
    """What the field types cannot say: a URL the source can use, label names PromQL accepts."""
    try:
        parts = urllib.parse.urlsplit(p.url)
        usable = parts.scheme in ("http", "https") and bool(parts.hostname) and parts.port != 0
    except ValueError:  # a port that is not a number
        usable = False
    if not usable:
        raise ConfigError(
            path,
            "[prometheus] url",
            detail=f"expected a URL such as http://prometheus:9090 (http:// or https://, then the host), "
            f"got {_show(_masked_url(p.url))}",
        )
    for key in ("endpoint_label", "node_label"):
        value = getattr(p, key)
        if value and not _LABEL_NAME.fullmatch(value):
            raise ConfigError(path, f"[prometheus] {key}", "a label name (letters, digits, _)", value)


@dataclass(frozen=True, slots=True)
class NvmlSettings:
    """``[nvml]``: the GPUs of the machine the console runs on, through NVML."""

    enabled: bool = False
    """Read local GPUs through NVML."""
    interval: float = _opt(2.0, lo=0.5, hi=3600)
    """Seconds between two readings."""
    timeout: float = _opt(5.0, lo=0.5, hi=600)
    """Seconds before one reading is abandoned."""
    slow_every: int = _opt(5, lo=1, hi=1000)
    """Take the slow readings (PCIe throughput, about 21 ms a call on an H200) every this many readings."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SshHostSettings:
    """``[[ssh_hosts]]``: one bare-metal GPU host read over SSH with ``nvidia-smi``."""

    name: str = ""
    """Name shown in the console; "" means the host."""
    host: str
    """Host name, address or ``Host`` alias of the OpenSSH config (required)."""
    node: str = ""
    """Kubernetes node this host is: its node and GPUs then carry that name and join the cluster's node;
    "" means a machine of its own, shown by its name and never merged with a cluster node."""
    port: int = _opt(0, lo=0, hi=65535)
    """SSH port; 0 means the OpenSSH config's ``Port``, else 22."""
    user: str = ""
    """Login name; "" means the OpenSSH config's ``User``, else your login name."""
    known_hosts: Path | None = None
    """known_hosts file to verify the host key against (never skipped); unset means the OpenSSH config's
    ``UserKnownHostsFile``, else ``~/.ssh/known_hosts``."""
    identity_file: Path | None = None
    """Private key to log in with (to the jump hosts too); unset means the OpenSSH config's
    ``IdentityFile``, else the SSH agent and the default keys."""
    jump_host: str = ""
    """Hosts to connect through, as ``[user@]host[:port]`` (comma-separated for several; their keys are
    verified against the same known_hosts); "" means the OpenSSH config's ``ProxyJump``, else direct."""
    labels: tuple[str, ...] = _opt(())
    """Node labels, as ``key=value`` (``rack=r12``); ``rack``, ``zone``, ``pool`` and ``instance_type``
    labels set those of the host's node (placement packs gangs by zone, then rack)."""
    nvidia_smi: str = "nvidia-smi"
    """Command that runs nvidia-smi on the host."""
    interval: float = _opt(10.0, lo=1, hi=3600)
    """Seconds between two polls."""
    timeout: float = _opt(10.0, lo=0.5, hi=600)
    """Seconds before one poll (connect and command) is abandoned."""

    @property
    def label(self) -> str:
        return self.name or self.host


@dataclass(frozen=True, slots=True)
class SshSettings:
    """``[ssh]``: what all ``[[ssh_hosts]]`` share."""

    max_connections: int = _opt(16, lo=1, hi=1024)
    """Hosts polled at once (each poll holds one connection busy)."""
    config: Path | None = None
    """OpenSSH client config read for ``Host`` aliases, ``HostName``, ``User``, ``Port``, ``IdentityFile``,
    ``ProxyJump`` and ``UserKnownHostsFile`` (what ``[[ssh_hosts]]`` sets wins); unset means
    ``~/.ssh/config`` when it exists, ``"/dev/null"`` reads none. Host keys are verified whatever it says."""


@dataclass(frozen=True, slots=True)
class ServeSettings:
    """``[serve]``: ``aios-tui serve``, the console served over SSH to the on-call team: each key's role
    comes from the authorized-keys file, every session shares one poller."""

    listen: str = "127.0.0.1"
    """Address to listen on ("0.0.0.0" or "::" for every interface)."""
    port: int = _opt(2222, lo=0, hi=65535)
    """TCP port to listen on; 0 takes a free one (the port is printed at start)."""
    host_key: Path | None = None
    """The server's private host key; unset means ``$XDG_STATE_HOME/aios-tui/ssh_host_ed25519_key``. Made
    (ed25519, ``0600``) at the first start when it does not exist; one others can read is refused."""
    authorized_keys: Path | None = None
    """Who may log in: an OpenSSH ``authorized_keys`` file whose every key carries ``name="…"`` and
    ``role="viewer|operator|admin"`` options; unset means ``$XDG_CONFIG_HOME/aios-tui/authorized_keys``."""
    max_sessions: int = _opt(20, lo=1, hi=1000)
    """Consoles open at once; one more is told so and closed."""
    idle_timeout: float = _opt(1800.0, lo=0, hi=7 * 86400)
    """Seconds without a key pressed before a session is closed (0: never)."""
    actions_per_minute: int = _opt(10, lo=0, hi=10_000)
    """Actions one key may run in any 60 seconds, over all its sessions (0: no limit); more are refused,
    and audited as refused."""


# --- the whole --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class GrafanaSettings:
    """``[grafana]``: a link to your dashboards in the detail of each node, GPU and endpoint. A template is a
    path (or a whole URL) with ``{node}``, ``{gpu}`` (uuid), ``{index}``, ``{namespace}``, ``{name}`` filled
    in, URL-quoted; "" leaves that kind without a link."""

    url: str = ""
    """Grafana's base URL, ``https://grafana.example.com``; "" shows no link."""
    node: str = "/d/node-exporter?var-node={node}"
    """A node's dashboard."""
    gpu: str = "/d/dcgm?var-node={node}&var-gpu={index}"
    """A GPU's dashboard."""
    endpoint: str = "/d/serving?var-namespace={namespace}&var-name={name}"
    """An endpoint's dashboard."""


@dataclass(frozen=True, slots=True)
class PriceSettings:
    """``[[prices]]``: what a node costs per hour where no source says (a bare-metal host, a node only
    Prometheus knows): the first rule that matches a node gives its price. Name exactly one of ``node``,
    ``label`` or ``instance_type``."""

    price: float = field(metadata={"lo": 0, "hi": 100000})
    """USD per node-hour (required)."""
    node: str = ""
    """One node, by name."""
    label: str = ""
    """Nodes with this label, ``key=value`` (an SSH host's ``labels`` count)."""
    instance_type: str = ""
    """Nodes of this instance type (``p5.48xlarge``); the bundled table prices known types anyway."""


@dataclass(frozen=True, slots=True)
class SloSettings:
    """``[[slo]]``: objectives for the endpoints whose workload carries none (the Kubernetes annotations
    ``aios-tui.dev/slo-p99-ms`` and ``aios-tui.dev/slo-error-rate`` win): for each objective, the first rule
    that matches an endpoint and sets it. A rule with neither ``name`` nor ``namespace`` is a default for
    every endpoint (put it last). Set at least one of ``p99_ms`` or ``error_rate``."""

    name: str = ""
    """Endpoint names this rule covers, a glob (``llama-*``); "" means any."""
    namespace: str = ""
    """Namespaces this rule covers, a glob (``prod-*``); "" means any."""
    p99_ms: float = _opt(0.0, lo=0, hi=3_600_000)
    """p99 latency objective in milliseconds; 0 leaves it to a later rule."""
    error_rate: float = _opt(0.0, lo=0, hi=1)
    """Error-rate objective, a fraction of requests (0.001 is 0.1 %); 0 leaves it to a later rule."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the console reads at start."""

    read_only: bool = False
    """Show no action keys and refuse every action, whatever the role."""
    role: str = _opt("operator", choices=ROLES)
    """What the user may do: ``viewer`` looks, ``operator`` scales and restarts, ``admin`` also drains."""
    user: str = ""
    """Name recorded in the audit log; "" means the login name."""
    refresh_interval: float = _opt(1.0, lo=0.1, hi=60)
    """Seconds between two redraws of the panes from the latest snapshot."""
    low_bandwidth: bool = False
    """For a slow or metered link: the panes are repainted at most every 10 s (or ``refresh_interval`` if
    longer; ``ctrl+r`` repaints at once) and the header's clock shows minutes (``--low-bandwidth``)."""
    theme: str = "textual-dark"
    """Textual theme name."""
    ascii: bool = False
    """Draw with ASCII only (borders, scrollbars and signs included). Unset, it is chosen for TERM=linux,
    vt100, vt220, dumb and a locale that is not UTF-8; set here, it wins; ``--ascii``/``--no-ascii`` win
    over both."""
    default_pane: str = _opt("nodes", choices=PANES)
    """Pane shown at start."""
    audit_path: Path | None = None
    """Audit log file; unset means ``$XDG_STATE_HOME/aios-tui/audit.jsonl``."""
    idle_window: float = _opt(600.0, lo=0, hi=7 * 86400)
    """Seconds an allocated GPU must stay under 5% utilisation before it counts as idle (0: at once)."""
    sim: SimSettings = field(default_factory=SimSettings)
    """The embedded fleet."""
    kubernetes: KubernetesSettings = field(default_factory=KubernetesSettings)
    """Kubernetes clusters."""
    aws: AwsSettings = field(default_factory=AwsSettings)
    """AWS accounts."""
    gcp: GcpSettings = field(default_factory=GcpSettings)
    """Google Cloud projects."""
    azure: AzureSettings = field(default_factory=AzureSettings)
    """Azure subscriptions."""
    prometheus: PrometheusSettings = field(default_factory=PrometheusSettings)
    """Prometheus metrics."""
    nvml: NvmlSettings = field(default_factory=NvmlSettings)
    """Local GPUs."""
    ssh: SshSettings = field(default_factory=SshSettings)
    """Settings shared by the SSH hosts."""
    ssh_hosts: tuple[SshHostSettings, ...] = ()
    """Bare-metal GPU hosts."""
    prices: tuple[PriceSettings, ...] = ()
    """Node prices where no source gives one, one ``[[prices]]`` table each."""
    slo: tuple[SloSettings, ...] = ()
    """Endpoint objectives where the workload gives none, one ``[[slo]]`` table each."""
    grafana: GrafanaSettings = field(default_factory=GrafanaSettings)
    """Links to Grafana dashboards."""
    serve: ServeSettings = field(default_factory=ServeSettings)
    """``aios-tui serve``: the console over SSH."""
    config_file: Path | None = field(default=None, compare=False, metadata={"internal": True})
    """The file these settings were read from (None: none); set by the loader, not a setting."""


# --- errors -----------------------------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


_MISSING: Final = _Missing()


class ConfigError(Exception):
    """A setting is wrong. ``str()`` names where (file, variable or flag), the key, and what was expected.

    ``config.toml: [sim] nodes: expected an integer from 1 to 5000, got "lots"``
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None,
        key: str,
        expected: str = "",
        got: object = _MISSING,
        *,
        detail: str = "",
    ) -> None:
        self.path = os.fspath(path) if path is not None else None
        self.key = key
        self.expected = expected
        self.got = got
        self.detail = detail
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ": ".join(p for p in (self.path, self.key) if p)
        if self.detail:
            body = self.detail
        elif self.got is _MISSING:
            body = f"expected {self.expected}"
        else:
            body = f"expected {self.expected}, got {_show(self.got)}"
        return f"{where}: {body}" if where else body


def _show(value: object) -> str:
    """A value the way it was written in TOML (or typed in the shell)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Mapping):
        return "a table"
    if isinstance(value, list):
        return "[" + ", ".join(_show(v) for v in value) + "]"
    return str(value)


# --- paths ------------------------------------------------------------------------------------------------


def _xdg(var: str, fallback: str, env: Mapping[str, str]) -> Path:
    value = env.get(var, "")
    # The XDG spec says relative paths in these variables are invalid and must be ignored.
    if value and Path(value).is_absolute():
        return Path(value)
    return Path.home() / fallback


def default_config_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/aios-tui/config.toml`` (``~/.config/aios-tui/config.toml`` without it)."""
    return _xdg("XDG_CONFIG_HOME", ".config", os.environ if env is None else env) / "aios-tui" / "config.toml"


def default_log_path(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_STATE_HOME/aios-tui/aios-tui.log`` (``~/.local/state/…`` without it)."""
    state = _xdg("XDG_STATE_HOME", ".local/state", os.environ if env is None else env)
    return state / "aios-tui" / "aios-tui.log"


# --- schema -----------------------------------------------------------------------------------------------


def _fields(cls: type) -> Iterator[tuple[dataclasses.Field[Any], Any]]:
    """The settings of a section with their resolved types (the loader's own fields left out)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.metadata.get("internal"):
            yield f, hints[f.name]


def _section_of(tp: Any) -> type | None:
    """The dataclass of a ``[section]`` field or of an ``[[array]]`` field's elements, else None."""
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return tp
    if typing.get_origin(tp) is tuple:
        (elem, _) = typing.get_args(tp)
        if dataclasses.is_dataclass(elem) and isinstance(elem, type):
            return elem
    return None


def setting_keys(cls: type = Settings) -> set[str]:
    """Every dotted key a config file may hold (``sim.nodes``, ``ssh_hosts.port``)."""
    out: set[str] = set()
    for f, tp in _fields(cls):
        sub = _section_of(tp)
        if sub is None:
            out.add(f.name)
        else:
            out.update(f"{f.name}.{k}" for k in setting_keys(sub))
    return out


def _is_optional_path(tp: Any) -> bool:
    return isinstance(tp, types.UnionType) and set(typing.get_args(tp)) == {Path, type(None)}


def _number_range(kind: str, lo: float | None, hi: float | None) -> str:
    def n(x: float) -> str:
        return f"{x:g}" if isinstance(x, float) else str(x)

    if lo is not None and hi is not None:
        return f"{kind} from {n(lo)} to {n(hi)}"
    if lo is not None:
        return f"{kind} of at least {n(lo)}"
    return kind


@dataclass(frozen=True, slots=True)
class _Spec:
    """How to read one scalar setting."""

    tp: Any
    lo: float | None
    hi: float | None
    choices: tuple[str, ...] | None

    @classmethod
    def of(cls, f: dataclasses.Field[Any], tp: Any) -> _Spec:
        return cls(tp, f.metadata.get("lo"), f.metadata.get("hi"), f.metadata.get("choices"))

    @property
    def expected(self) -> str:
        tp = self.tp
        if tp is bool:
            return "true or false"
        if tp is int:
            return _number_range("an integer", self.lo, self.hi)
        if tp is float:
            return _number_range("a number", self.lo, self.hi)
        if tp is str:
            if self.choices:
                return "one of " + ", ".join(json.dumps(c) for c in self.choices)
            return "a string"
        if _is_optional_path(tp):
            return "a path (a string)"
        if typing.get_origin(tp) is tuple:
            if self.choices:
                return "a list of strings from " + ", ".join(json.dumps(c) for c in self.choices)
            return "a list of strings"
        raise TypeError(f"no reader for settings of type {tp!r}")  # pragma: no cover - a programming error

    def check(self, value: object) -> Any:
        """The value as the setting's type; ValueError when it is not one."""
        tp = self.tp
        if tp is bool:
            if isinstance(value, bool):
                return value
        elif tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return self._in_range(value)
        elif tp is float:
            if isinstance(value, int | float) and not isinstance(value, bool):
                return self._in_range(float(value))
        elif tp is str:
            if isinstance(value, str) and (not self.choices or value in self.choices):
                return value
        elif _is_optional_path(tp):
            if isinstance(value, str):
                return Path(value).expanduser() if value else None
        elif (
            typing.get_origin(tp) is tuple
            and isinstance(value, list | tuple)
            and all(isinstance(v, str) and (not self.choices or v in self.choices) for v in value)
        ):
            return tuple(value)
        raise ValueError

    def parse(self, text: str) -> Any:
        """A value typed in the environment or on the command line, as the setting's type."""
        tp = self.tp
        value: object = text
        if tp is bool:
            low = text.strip().lower()
            if low in ("1", "true", "yes", "on"):
                value = True
            elif low in ("0", "false", "no", "off"):
                value = False
        elif tp is int:
            with contextlib.suppress(ValueError):
                value = int(text.strip())
        elif tp is float:
            with contextlib.suppress(ValueError):
                value = float(text.strip())
        elif typing.get_origin(tp) is tuple:
            value = [part.strip() for part in text.split(",") if part.strip()]
        return self.check(value)

    def _in_range(self, value: float) -> float:
        if (
            not math.isfinite(value)
            or (self.lo is not None and value < self.lo)
            or (self.hi is not None and value > self.hi)
        ):
            raise ValueError
        return value


# --- loading ----------------------------------------------------------------------------------------------


def _where(section: str, key: str) -> str:
    return f"{section} {key}" if section else key


def _suggest(name: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    return f'; did you mean "{close[0]}"?' if close else ""


def _build(cls: type, data: Mapping[str, Any], path: str, section: str) -> Any:
    """An instance of the settings dataclass ``cls`` from one TOML table, checked key by key."""
    specs = dict(_fields(cls))
    names = {f.name: tp for f, tp in specs.items()}
    for key in data:
        if key not in names:
            hint = _suggest(key, list(names))
            if isinstance(data[key], Mapping) and not section:
                raise ConfigError(path, f"[{key}]", detail=f"unknown section{hint}")
            raise ConfigError(path, _where(section, key), detail=f"unknown setting{hint}")
    kwargs: dict[str, Any] = {}
    for f, tp in specs.items():
        key = _where(section, f.name)
        if f.name not in data:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(path, key, detail="required setting is missing")
            continue
        value = data[f.name]
        sub = _section_of(tp)
        if sub is not None and typing.get_origin(tp) is tuple:
            if not isinstance(value, list) or not all(isinstance(v, Mapping) for v in value):
                raise ConfigError(path, key, f"an array of tables ([[{f.name}]])", value)
            table = f"{section.strip('[]')}.{f.name}" if section else f.name
            kwargs[f.name] = tuple(
                _build(sub, v, path, f"[[{table}]] #{i}") for i, v in enumerate(value, start=1)
            )
        elif sub is not None:
            if not isinstance(value, Mapping):
                raise ConfigError(path, key, f"a table ([{f.name}])", value)
            kwargs[f.name] = _build(sub, value, path, f"[{f.name}]")
        else:
            spec = _Spec.of(f, tp)
            try:
                kwargs[f.name] = spec.check(value)
            except ValueError:
                raise ConfigError(path, key, spec.expected, value) from None
    return cls(**kwargs)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(path, "", detail=f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise ConfigError(path, "", detail=f"cannot read the file: {e.strerror or e}") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.11's error carries the position only in its message: "Invalid value (at line 3, column 8)".
        msg = str(e)
        m = re.search(r"\(at line (\d+), column (\d+)\)$", msg)
        if m:
            reason = msg[: m.start()].strip()
            raise ConfigError(path, f"line {m[1]}, column {m[2]}", detail=f"invalid TOML: {reason}") from None
        raise ConfigError(path, "", detail=f"invalid TOML: {msg}") from None


@dataclass(frozen=True, slots=True)
class Override:
    """One setting given as text outside the file: ``Override("sim.nodes", "5000", "--sim-nodes")``."""

    key: str
    """Dotted key of the setting (a section's key, such as ``sim.nodes``, or a top-level one)."""
    value: str | bool
    """The text as typed (or a bool for a switch such as ``--read-only``)."""
    origin: str
    """Where it came from, for error messages: a flag or an environment variable."""


def _apply(settings: Settings, override: Override) -> Settings:
    section, _, name = override.key.rpartition(".")
    owner: Any = getattr(settings, section) if section else settings
    specs = {f.name: (f, tp) for f, tp in _fields(type(owner))}
    if name not in specs or _section_of(specs[name][1]) is not None:
        raise KeyError(override.key)  # a programming error in the caller, not a user's mistake
    spec = _Spec.of(*specs[name])
    try:
        value = spec.check(override.value) if isinstance(override.value, bool) else spec.parse(override.value)
    except ValueError:
        raise ConfigError(None, override.origin, spec.expected, override.value) from None
    if not section:
        return dataclasses.replace(settings, **{name: value})
    return dataclasses.replace(settings, **{section: dataclasses.replace(owner, **{name: value})})


def env_overrides(env: Mapping[str, str]) -> list[Override]:
    """``AIOS_TUI_<NAME>`` for each top-level scalar setting (``AIOS_TUI_READ_ONLY=1``)."""
    out = []
    for f, tp in _fields(Settings):
        var = ENV_PREFIX + f.name.upper()
        if _section_of(tp) is None and var in env:
            out.append(Override(f.name, env[var], var))
    return out


def load_settings(
    path: str | os.PathLike[str] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Sequence[Override] = (),
) -> Settings:
    """Defaults, then the file, then ``AIOS_TUI_*`` variables, then ``overrides`` (the flags).

    ``path`` is the file given on the command line; without it ``$AIOS_TUI_CONFIG``, then the default path.
    A file that was named (by flag or variable) must exist; the default one may be missing.
    """
    env = os.environ if env is None else env
    named_by = "--config" if path is not None else CONFIG_ENV if env.get(CONFIG_ENV) else ""
    file = Path(path) if path is not None else Path(env[CONFIG_ENV]) if named_by else default_config_path(env)
    file = file.expanduser()
    settings: Settings
    if file.is_file():
        settings = dataclasses.replace(
            _build(Settings, _read_toml(file), os.fspath(file), ""), config_file=file
        )
        for i, rule in enumerate(settings.prices, start=1):
            chosen = [k for k in ("node", "label", "instance_type") if getattr(rule, k)]
            if len(chosen) != 1:
                got = ", ".join(chosen) or "none"
                raise ConfigError(file, f"[[prices]] #{i}", "one of node, label or instance_type", got)
            if rule.label and "=" not in rule.label:
                raise ConfigError(file, f"[[prices]] #{i} label", "key=value", rule.label)
        seen: set[str] = set()
        for i, host in enumerate(settings.ssh_hosts, start=1):
            if host.label in seen:
                raise ConfigError(file, f"[[ssh_hosts]] #{i} name", "a name no other host has", host.label)
            seen.add(host.label)
        for i, slo in enumerate(settings.slo, start=1):
            if not (slo.p99_ms or slo.error_rate):
                raise ConfigError(file, f"[[slo]] #{i}", expected="p99_ms or error_rate above 0 (or both)")
        _check_prometheus(settings.prometheus, file)
        for cloud in CLOUDS:
            check_cloud(cloud, getattr(settings, cloud), file)
        if settings.grafana.url and not settings.grafana.url.startswith(("http://", "https://")):
            raise ConfigError(file, "grafana url", "an http:// or https:// URL", settings.grafana.url)
    elif named_by or file.exists():
        what = "not a file" if file.exists() else "no such file"
        raise ConfigError(file, "", detail=f"{what} (given by {named_by})" if named_by else what)
    else:
        settings = Settings()
    for override in (*env_overrides(env), *overrides):
        settings = _apply(settings, override)
    return settings


def real_sources_enabled(settings: Settings) -> list[tuple[str, str]]:
    """``(where, what)`` for each real source the settings enable.

    For example ``("[kubernetes] enabled = true", "Kubernetes")`` or
    ``("[[ssh_hosts]] #1 (gpu-01)", "SSH hosts")``.
    """
    out = [
        (f"[{name}] enabled = true", label)
        for name, label in (
            ("kubernetes", "Kubernetes"),
            *CLOUDS.items(),
            ("prometheus", "Prometheus"),
            ("nvml", "NVML"),
        )
        if getattr(settings, name).enabled
    ]
    out.extend((f"[[ssh_hosts]] #{i} ({h.label})", "SSH hosts") for i, h in enumerate(settings.ssh_hosts, 1))
    return out


def sim_only(settings: Settings) -> Settings:
    """The settings with every real source off and the embedded fleet on (``--sim``)."""
    return dataclasses.replace(
        settings,
        sim=dataclasses.replace(settings.sim, enabled=True),
        kubernetes=dataclasses.replace(settings.kubernetes, enabled=False),
        **{name: dataclasses.replace(getattr(settings, name), enabled=False) for name in CLOUDS},
        prometheus=dataclasses.replace(settings.prometheus, enabled=False),
        nvml=dataclasses.replace(settings.nvml, enabled=False),
        ssh_hosts=(),
    )
