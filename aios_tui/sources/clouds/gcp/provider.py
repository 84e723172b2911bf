"""Google Cloud as a :class:`~aios_tui.sources.clouds.base.CloudProvider`: Compute Engine instances with GPUs,
managed instance groups and GKE node pools as pools, and resizing them (google-cloud-compute,
google-cloud-container, REST transport).

One provider is one identity, Application Default Credentials (what gcloud users have:
``GOOGLE_APPLICATION_CREDENTIALS``, else ``gcloud auth application-default login``'s file, else the metadata
server), over several projects; with none configured, the credentials' own project (``GOOGLE_CLOUD_PROJECT``,
the key file's, or ``gcloud config set project``'s), found at the first fetch. The credentials are found once
(:meth:`GcpProvider.begin`) and shared by every client; google-auth refreshes their token as it expires.
Nothing prompts. When Google refuses them (``invalid_grant`` from the token endpoint, 401 from an API) the
fetch fails saying so, and they are dropped, so that the next poll reads the ADC file again (after a new
``gcloud auth application-default login``) instead of refusing until a restart.

Every call has ``timeout`` and :class:`_Tries`: ``max_attempts`` tries in all (the first counts), again only
on 429, 503 and Compute Engine's 403 ``rateLimitExceeded``, after the ``Retry-After`` Google sends, else a
jittered exponential back-off; a ``Retry-After`` longer than ``timeout`` ends the tries at once. Throttling
that outlasts them, and refused credentials, fail the whole fetch with a :class:`SourceError` (the poller
keeps the last data and backs off). What spoils one API in one project (permission denied, the API
disabled, the project not found, zones that did not answer) is a problem sentence and the rest still shows.
Messages are built here from the HTTP status and Google's reason, followed by Google's own message made one
line, with anything like a credential masked (:func:`~aios_tui.domain.errors.redact`) and escapes removed;
no token, key or refresh token reaches a message or a log line, and the ``google`` loggers are held at
WARNING, since at DEBUG google-auth and api-core log requests.

Instances (``instances.aggregatedList``): those with GPUs, from their ``guestAccelerators`` (an N1 machine's
attached GPUs; the model from the accelerator type's name) or their machine type (the bundled table; an
A- or G-series type it lacks is asked of ``machineTypes.get`` once). Named by their name, as gcloud and
Kubernetes name them (``<project>/<zone>/<name>`` where two share a name), with
``gce://<project>/<zone>/<name>`` as the provider ID a GKE node carries; the state as Compute Engine says it
(``RUNNING`` running, ``PROVISIONING``/``STAGING`` pending, ``STOPPING``/``SUSPENDING`` stopping,
``TERMINATED``/``SUSPENDED`` stopped); spot for ``SPOT`` or preemptible, ``capacity-block`` for
``RESERVATION_BOUND`` (paid with its reservation), ``flex-start`` for ``FLEX_START`` (priced at the
on-demand list price, which overstates it); the pool from the GKE labels (``goog-k8s-cluster-name``,
``goog-k8s-node-pool-name``) or the ``created-by`` metadata (its MIG).

Pools: managed instance groups (zonal and regional) whose instance template has GPUs, kind ``mig``, sized
by ``targetSize``, limited by their autoscaler (``minNumReplicas``..``maxNumReplicas``) or else by Compute
Engine's own limits (0..1,000 VMs a zonal group, 0..2,000 a regional one); and GKE node pools with GPUs
(``clusters.list`` over every location), kind ``gke-nodepool``, sized by the sum of their instance groups'
``targetSize``, limited by their autoscaling (``total*NodeCount``, else the per-zone counts times the zones)
or else by GKE's 1,000 nodes per zone. Each names the autoscaler that may move a count set by hand. The
groups behind a node pool are not shown as pools of their own (known from the node pool's
``instanceGroupUrls``, or, when the GKE API could not be read, from their template's
``goog-k8s-cluster-name`` label). Names: the group's name and ``<cluster>/<nodepool>``, after
``<project>/`` when several projects are listed. Scaling: ``resize`` (zonal or regional, with a request ID
so that a retry is not a second resize) or ``setSize``, whose node count is per zone: a node pool over 3
zones takes multiples of 3. The call returns once Google accepted the operation.

Spot prices: Compute Engine has no API for them; the bundled table's spot list price is used.
"""

from __future__ import annotations

import functools
import logging
import random
import re
import threading
import time
import uuid
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any, ParamSpec, TypeVar

import google.auth
import google.auth.exceptions as auth_errors
import google.auth.transport.requests
import requests
from google.api_core import exceptions as api_errors
from google.api_core.client_options import ClientOptions
from google.api_core.retry import Retry
from google.cloud import compute_v1, container_v1
from google.oauth2 import service_account
from google.protobuf.json_format import ParseError  # type: ignore[import-untyped]

from aios_tui.domain import NA
from aios_tui.domain.clock import now_utc
from aios_tui.domain.errors import redact
from aios_tui.domain.text import clean
from aios_tui.domain.units import Metric
from aios_tui.sources.base import SourceError
from aios_tui.sources.clouds.base import (
    MALFORMED,
    CloudInstance,
    CloudPool,
    Listing,
    Problems,
    SpotPrice,
    quiet,
    remote_message,
)
from aios_tui.sources.clouds.gcp.prices import ACCELERATORS, CATALOGUE

__all__ = ["GcpProvider"]

log = logging.getLogger("aios_tui.sources.gcp")

T = TypeVar("T")
P = ParamSpec("P")
R = TypeVar("R")

_SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
_STATES = {
    "RUNNING": "running",
    "PROVISIONING": "pending",
    "STAGING": "pending",
    "REPAIRING": "pending",
    "STOPPING": "stopping",
    "SUSPENDING": "stopping",
    "TERMINATED": "stopped",
    "SUSPENDED": "stopped",
}
_LIFECYCLE = {"SPOT": "spot", "RESERVATION_BOUND": "capacity-block", "FLEX_START": "flex-start"}
_RATE_LIMITED = frozenset({"rateLimitExceeded", "userRateLimitExceeded", "RATE_LIMIT_EXCEEDED"})
_DISABLED = frozenset({"SERVICE_DISABLED", "accessNotConfigured"})
_OAUTH_CODES = re.compile(
    r"\b(invalid_grant|invalid_client|unauthorized_client|invalid_scope|invalid_request|invalid_rapt"
    r"|invalid_target|access_denied)\b"
)
_MIG_LIMIT = {"zones": 1000, "regions": 2000}
"""Compute Engine's most VMs in one managed instance group, zonal and regional."""
_GKE_ZONE_LIMIT = 1000
"""GKE's most nodes of one node pool in one zone."""
_GKE_CLUSTER_LABEL = "goog-k8s-cluster-name"
_GKE_POOL_LABEL = "goog-k8s-node-pool-name"
_QUIET = ("google", "google.auth", "google.api_core", "google.cloud")
"""Loggers held at WARNING: at DEBUG google-auth and api-core log requests (and can be told to log bodies)."""


class _GaveUp(Exception):
    """Throttling that outlasted the tries (``error``: Google's last answer)."""

    def __init__(self, error: api_errors.GoogleAPICallError, tries: int, wait: float | None) -> None:
        super().__init__(error.code)
        self.error, self.tries, self.wait = error, tries, wait


class _Tries(Retry):
    """The retry policy of every call (api-core's ``retry=``, which the pagers also use for each page):
    ``attempts`` tries in all, again only when Google throttles, after its ``Retry-After`` or else a
    jittered exponential back-off (0.5–1 s, 1–2 s, … at most ``longest``). api-core's own :class:`Retry`
    counts time, not tries, and ignores ``Retry-After``."""

    def __init__(self, attempts: int, longest: float, sleep: Callable[[float], None]) -> None:
        super().__init__(predicate=_throttled)
        self.attempts: int = max(1, attempts)
        self.longest: float = longest
        self._sleep = sleep

    def __call__(
        self, func: Callable[P, R], on_error: Callable[[Exception], Any] | None = None
    ) -> Callable[P, R]:
        @functools.wraps(func)
        def tried(*args: P.args, **kwargs: P.kwargs) -> R:
            attempt = 1
            while True:
                try:
                    return func(*args, **kwargs)
                except api_errors.GoogleAPICallError as exc:
                    if not _throttled(exc):
                        raise
                    wait = self._pause(exc, attempt)
                    if attempt >= self.attempts or wait is None:
                        raise _GaveUp(exc, attempt, _retry_after(exc)) from None
                    log.debug("gcp: throttled (%s), try %d of %d in %.1f s", exc.code, attempt + 1,
                              self.attempts, wait)  # fmt: skip
                    self._sleep(wait)
                    attempt += 1

        return tried

    def _pause(self, exc: api_errors.GoogleAPICallError, attempt: int) -> float | None:
        """Seconds before the next try; None when Google asks for a wait longer than this policy's."""
        asked = _retry_after(exc)
        if asked is not None:
            return asked if asked <= self.longest else None
        step = min(self.longest, 0.5 * 2.0 ** (attempt - 1))
        return step / 2 + random.uniform(0, step / 2)


class GcpProvider:
    """Some Google Cloud projects, through Application Default Credentials."""

    kind = "gcp"
    machine = "Compute Engine instance"
    unpooled = "gce"
    catalogue = CATALOGUE

    def __init__(
        self,
        *,
        projects: Iterable[str] = (),
        regions: Iterable[str] = (),
        endpoint_url: str = "",
        timeout: float = 10.0,
        max_attempts: int = 3,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        quiet(*_QUIET)
        self.projects = tuple(projects)
        self.regions = tuple(regions)
        # "" is the credentials' own project, known after begin(): the source reads ``scopes`` once, before.
        self.scopes = self.projects or ("",)
        self._timeout = float(timeout)
        self._retry = _Tries(max_attempts, self._timeout, sleep)
        self._options = ClientOptions(api_endpoint=endpoint_url) if endpoint_url else None
        self._lock = threading.RLock()  # begin() holds it while a refused refresh forgets the credentials
        self._credentials: Any = None
        self._who = "Application Default Credentials"
        self._own_project = ""
        self._clients: dict[type, Any] = {}
        self._gpu_types: dict[str, tuple[str, int]] = {
            t.name: (t.gpu_model, t.gpus) for t in CATALOGUE.types.values()
        }
        self.context = self._context()

    def _context(self) -> str:
        projects = ", ".join(self.projects) or self._own_project or "(the credentials' project)"
        return f"gcp {projects}" + (f" · {', '.join(self.regions)}" if self.regions else "")

    # --- plumbing ----------------------------------------------------------------------------------------

    def begin(self) -> None:
        """Before each fetch, once: find the Application Default Credentials (and, with no projects
        configured, their project), which every client then shares. Kept until Google refuses them."""
        if self._credentials is not None:
            return
        with self._lock:
            if self._credentials is not None:
                return
            try:
                credentials, project = google.auth.default(scopes=_SCOPES)
            except auth_errors.DefaultCredentialsError:  # its text can quote the key file: the class only
                raise SourceError(
                    "no usable Google Cloud credentials found (looked at GOOGLE_APPLICATION_CREDENTIALS, "
                    "gcloud's application default credentials and the metadata server): run gcloud auth "
                    "application-default login, or set GOOGLE_APPLICATION_CREDENTIALS to a key file"
                ) from None
            except auth_errors.GoogleAuthError as exc:
                raise SourceError(
                    f"Google Cloud credentials could not be loaded ({type(exc).__name__})"
                ) from None
            if not self.projects:
                if not project:
                    raise SourceError(
                        "no Google Cloud project to list: set [gcp] projects in the settings, or "
                        "GOOGLE_CLOUD_PROJECT, or run gcloud config set project"
                    )
                self._own_project = clean(project, 64)
                self.context = self._context()
            self._who = f"Application Default Credentials: {_kind(credentials)}"
            if not isinstance(credentials, service_account.Credentials) and not credentials.valid:
                # One token for every client (each would else ask for its own, all at once), and refused
                # credentials fail here, before any API call. A service account key is not exchanged: the
                # clients sign their own tokens with it.
                ask = functools.partial(google.auth.transport.requests.Request(), timeout=self._timeout)
                refresh: Callable[[Any], None] = credentials.refresh
                self._call("the token endpoint", None, lambda: refresh(ask))
            self._credentials = credentials

    def _forget_credentials(self) -> None:
        """Google refused them: read them again at the next fetch (``gcloud auth application-default
        login`` may have renewed the file), with new clients."""
        with self._lock:
            self._credentials = None
            self._clients = {}

    def _client(self, cls: type[T]) -> T:
        self.begin()
        with self._lock:
            c = self._clients.get(cls)
            if c is None:
                make: Any = cls
                c = make(credentials=self._credentials, transport="rest", client_options=self._options)
                self._clients[cls] = c
            return c  # type: ignore[no-any-return]

    def _project(self, scope: str) -> str:
        return scope or self._own_project

    def _named(self, project: str, name: str) -> str:
        """A pool's name: ``<project>/`` before it when several projects are listed."""
        return f"{project}/{name}" if len(self.projects) > 1 else name

    def _call(self, where: str, problems: Problems | None, fn: Callable[[], T]) -> T | None:
        """``fn()``; a problem (None back) for what spoils only this call, SourceError for the rest."""
        try:
            return fn()
        except (auth_errors.RefreshError, auth_errors.OAuthError) as exc:
            self._forget_credentials()
            raise SourceError(self._expired(_oauth_code(exc))) from None
        except auth_errors.TransportError as exc:
            raise SourceError(
                f"Google Cloud credentials ({self._who}) could not be refreshed: the token endpoint did not "
                f"answer ({type(exc.__cause__ or exc).__name__})"
            ) from None
        except api_errors.Unauthorized:
            self._forget_credentials()
            raise SourceError(self._expired("401 UNAUTHENTICATED")) from None
        except _GaveUp as gave:
            waited = (
                f", asked to wait {gave.wait:g} s" if gave.wait and gave.wait > self._retry.longest else ""
            )
            raise SourceError(
                f"Google Cloud is throttling {where} ({_status(gave.error)}{waited}) after "
                f"{gave.tries} {'try' if gave.tries == 1 else 'tries'}: backing off"
            ) from None
        except api_errors.GoogleAPICallError as exc:
            sentence = f"{where}: {_why(exc)}"
            said = _said(exc)
            if said:
                sentence += f" ({said})"
            if problems is None:
                raise SourceError(sentence) from None
            problems.add(sentence)
        except requests.exceptions.RequestException as exc:
            sentence = f"{where}: unreachable ({type(exc).__name__})"
            if problems is None:
                raise SourceError(sentence) from None
            problems.add(sentence)
        except (ParseError, ValueError, TypeError, KeyError) as exc:  # the SDK could not read the answer
            sentence = f"{where}: the answer could not be read ({type(exc).__name__})"
            if problems is None:
                raise SourceError(sentence) from None
            problems.add(sentence)
        return None

    def _expired(self, code: str) -> str:
        return (
            f"Google Cloud credentials ({self._who}) have expired or are not valid ({code}): run gcloud auth "
            "application-default login, or set GOOGLE_APPLICATION_CREDENTIALS to a valid key"
        )

    def _aggregated(
        self, cls: type[Any], method: str, field: str, project: str, problems: Problems
    ) -> list[tuple[str, Any]] | None:
        """Every item of a Compute Engine ``aggregatedList``, page after page, as (scope, item), scope being
        ``zones/<zone>``, ``regions/<region>`` or ``global``; the scopes that did not answer a problem."""
        where = f"Compute Engine {method} in project {project}"

        def run() -> list[tuple[str, Any]]:
            pager = self._client(cls).aggregated_list(
                request={"project": project, "max_results": 500}, retry=self._retry, timeout=self._timeout
            )
            out: list[tuple[str, Any]] = []
            unreachable: list[str] = []
            for page in pager.pages:
                unreachable.extend(getattr(page, "unreachables", ()))  # not every list has them
                for scope, scoped in page.items.items():
                    out.extend((str(scope), item) for item in getattr(scoped, field))
            if unreachable:
                missing = ", ".join(sorted(set(unreachable)))
                problems.add(f"{where}: {missing} did not answer (what is there is missing)")
            return out

        return self._call(where, problems, run)

    def _machine_gpus(self, machine: str, project: str, zone: str, problems: Problems) -> tuple[str, int]:
        """A machine type's own GPUs (model, count): the bundled table's, else, for an A- or G-series type
        (the only ones with GPUs built in), ``machineTypes.get`` once for the provider's life."""
        known = self._gpu_types.get(machine)
        if known is not None:
            return known
        family = machine.split("-", maxsplit=1)[0]
        if family[:1] not in ("a", "g") or family == "g1" or not zone:
            return "", 0
        found = self._call(
            f"Compute Engine machineTypes.get in project {project}",
            problems,
            lambda: self._client(compute_v1.MachineTypesClient).get(
                request={"project": project, "zone": zone, "machine_type": machine},
                retry=self._retry,
                timeout=self._timeout,
            ),
        )
        if found is None:
            return "", 0
        accelerators = [(a.guest_accelerator_type, a.guest_accelerator_count) for a in found.accelerators]
        shape = _shape(accelerators)
        self._gpu_types[machine] = shape
        return shape

    def _wanted(self, region: str) -> bool:
        return not self.regions or region in self.regions

    # --- CloudProvider -----------------------------------------------------------------------------------

    def instances(self, scope: str) -> Listing[CloudInstance]:
        project = self._project(scope)
        problems = Problems(log, "gcp")
        found = self._aggregated(
            compute_v1.InstancesClient, "instances.aggregatedList", "instances", project, problems
        )
        out = []
        for _, i in found or []:
            try:
                instance = self._instance(i, project, problems)
            except MALFORMED as exc:
                problems.skip("instance", exc)
                continue
            if instance is not None:
                out.append(instance)
        return Listing(tuple(out), problems.items)

    def _instance(self, i: compute_v1.Instance, project: str, problems: Problems) -> CloudInstance | None:
        """One Compute Engine instance; None when it has no GPU or is outside the regions."""
        name, zone = _required(i.name, "name"), _last(_required(i.zone, "zone"))
        region = _region(zone)
        if not self._wanted(region):
            return None
        machine = _last(_required(i.machine_type, "machineType"))
        attached = [(_last(a.accelerator_type), a.accelerator_count) for a in i.guest_accelerators]
        model, gpus = _shape(attached) if attached else self._machine_gpus(machine, project, zone, problems)
        if gpus <= 0:
            return None
        labels = dict(i.labels)
        metadata = {m.key: m.value for m in i.metadata.items}
        return CloudInstance(
            id=name,
            provider_id=f"gce://{project}/{zone}/{name}",
            instance_type=machine,
            region=region,
            zone=zone,
            state=_STATES.get(i.status, i.status.lower()),
            gpu_model=model,
            gpus=gpus,
            lifecycle=_lifecycle(i.scheduling.provisioning_model, i.scheduling.preemptible),
            launched_at=_unix(i.creation_timestamp),
            pool=self._pool_of(project, labels, metadata.get("created-by", "")),
            cluster=labels.get(_GKE_CLUSTER_LABEL, ""),
            qualified=f"{project}/{zone}/{name}",
            accelerator=_priced_by(attached),
        )

    def _pool_of(self, project: str, labels: Mapping[str, str], created_by: str) -> str:
        """The GKE node pool (labels), else the managed instance group (``created-by``:
        ``projects/<number>/zones/<zone>/instanceGroupManagers/<name>``), else ""."""
        cluster, node_pool = labels.get(_GKE_CLUSTER_LABEL, ""), labels.get(_GKE_POOL_LABEL, "")
        if cluster and node_pool:
            return self._named(project, f"{cluster}/{node_pool}")
        if "/instanceGroupManagers/" in created_by:
            return self._named(project, _last(created_by))
        return ""

    def pools(self, scope: str) -> Listing[CloudPool]:
        project = self._project(scope)
        problems = Problems(log, "gcp")
        clusters = self._clusters(project, problems)
        migs = self._aggregated(
            compute_v1.InstanceGroupManagersClient,
            "instanceGroupManagers.aggregatedList",
            "instance_group_managers",
            project,
            problems,
        )
        templates = {
            _path(t.self_link): t
            for _, t in self._aggregated(
                compute_v1.InstanceTemplatesClient,
                "instanceTemplates.aggregatedList",
                "instance_templates",
                project,
                problems,
            )
            or []
        }
        scalers = {
            _path(a.target): a
            for _, a in self._aggregated(
                compute_v1.AutoscalersClient, "autoscalers.aggregatedList", "autoscalers", project, problems
            )
            or []
            if a.autoscaling_policy.mode != "OFF"
        }
        sizes = {_path(m.self_link): m.target_size for _, m in migs or [] if m.self_link}
        out: list[CloudPool] = []
        behind_node_pools: set[str] = set()
        for cluster in clusters or []:
            for np in cluster.node_pools:
                behind_node_pools.update(_path(u) for u in np.instance_group_urls)
                try:
                    pool = self._node_pool(
                        project, cluster, np, sizes if migs is not None else None, problems
                    )
                except MALFORMED as exc:
                    problems.skip("GKE node pool", exc)
                    continue
                if pool is not None:
                    out.append(pool)
        for _, m in migs or []:
            try:
                pool = self._mig(project, m, templates, scalers, behind_node_pools, problems)
            except MALFORMED as exc:
                problems.skip("managed instance group", exc)
                continue
            if pool is not None:
                out.append(pool)
        return Listing(tuple(out), problems.items)

    def _clusters(self, project: str, problems: Problems) -> list[container_v1.Cluster] | None:
        where = f"GKE clusters.list in project {project}"
        found = self._call(
            where,
            problems,
            lambda: self._client(container_v1.ClusterManagerClient).list_clusters(
                request={"parent": f"projects/{project}/locations/-"},
                retry=self._retry,
                timeout=self._timeout,
            ),
        )
        if found is None:
            return None
        if found.missing_zones:
            problems.add(
                f"{where}: {', '.join(found.missing_zones)} did not answer (clusters there are missing)"
            )
        return list(found.clusters)

    def _node_pool(
        self,
        project: str,
        cluster: container_v1.Cluster,
        np: container_v1.NodePool,
        sizes: Mapping[str, int] | None,
        problems: Problems,
    ) -> CloudPool | None:
        """One GKE node pool with GPUs as a pool; None without GPUs or outside the regions."""
        location = _required(cluster.location, "location")
        region = _region(location)
        if not self._wanted(region):
            return None
        zones = tuple(np.locations) or tuple(cluster.locations)
        machine = _required(np.config.machine_type, "config.machineType")
        attached = [(a.accelerator_type, a.accelerator_count) for a in np.config.accelerators]
        model, gpus = (
            _shape(attached)
            if attached
            else self._machine_gpus(machine, project, zones[0] if zones else "", problems)
        )
        if gpus <= 0:
            return None
        groups = [_path(u) for u in np.instance_group_urls]
        # The sum of its groups' sizes; -1 (unknown) when the groups could not be read.
        desired = sum(sizes.get(g, 0) for g in groups) if sizes is not None else -1
        n = max(1, len(zones))
        auto = np.autoscaling
        if auto.enabled and (auto.total_max_node_count or auto.total_min_node_count):
            low, high = auto.total_min_node_count, auto.total_max_node_count
        elif auto.enabled:
            low, high = auto.min_node_count * n, auto.max_node_count * n
        else:
            low, high = 0, _GKE_ZONE_LIMIT * n
        name = f"{cluster.name}/{_required(np.name, 'name')}"
        return CloudPool(
            name=self._named(project, name),
            kind="gke-nodepool",
            region=region,
            instance_types=(machine,),
            min_size=int(low),
            max_size=int(high),
            desired=desired,
            gpu_model=model,
            gpus_per_node=gpus,
            zones=zones,
            lifecycle="spot" if np.config.spot or np.config.preemptible else "on-demand",
            cluster=cluster.name,
            autoscaler="the GKE cluster autoscaler" if auto.enabled else "",
            accelerator=_priced_by(attached),
            count_step=n,
            ref=f"projects/{project}/locations/{location}/clusters/{cluster.name}/nodePools/{np.name}",
        )

    def _mig(
        self,
        project: str,
        m: compute_v1.InstanceGroupManager,
        templates: Mapping[str, compute_v1.InstanceTemplate],
        scalers: Mapping[str, compute_v1.Autoscaler],
        behind_node_pools: Collection[str],
        problems: Problems,
    ) -> CloudPool | None:
        """One managed instance group whose template has GPUs as a pool; None for the others, those behind a
        GKE node pool, and those outside the regions."""
        path = _path(_required(m.self_link, "selfLink"))
        if path in behind_node_pools:
            return None
        parts = path.split("/")  # projects/<p>/zones/<zone>/instanceGroupManagers/<name>, or regions/<region>
        where, location = parts[2], parts[3]
        region = _region(location)
        if not self._wanted(region):
            return None
        versions = [v.instance_template for v in m.versions if v.instance_template] or [m.instance_template]
        template = templates.get(_path(versions[0]))
        if template is None:
            return None  # not readable here (or gone): nothing says it has GPUs
        props = template.properties
        if _GKE_CLUSTER_LABEL in props.labels:  # a GKE node pool's group, when GKE could not be read
            return None
        zones = (location,) if where == "zones" else tuple(_last(z.zone) for z in m.distribution_policy.zones)
        machine = _last(props.machine_type)
        attached = [(_last(a.accelerator_type), a.accelerator_count) for a in props.guest_accelerators]
        model, gpus = (
            _shape(attached)
            if attached
            else self._machine_gpus(machine, project, zones[0] if zones else "", problems)
        )
        if gpus <= 0:
            return None
        scaler = scalers.get(path)
        if scaler is not None:
            low, high = scaler.autoscaling_policy.min_num_replicas, scaler.autoscaling_policy.max_num_replicas
            autoscaler = f"its autoscaler {scaler.name}"
        else:
            low, high, autoscaler = 0, _MIG_LIMIT[where], ""
        return CloudPool(
            name=self._named(project, _required(m.name, "name")),
            kind="mig",
            region=region,
            instance_types=(machine,),
            min_size=int(low),
            max_size=int(high),
            desired=int(m.target_size),
            gpu_model=model,
            gpus_per_node=gpus,
            zones=zones,
            lifecycle=_lifecycle(props.scheduling.provisioning_model, props.scheduling.preemptible),
            ref=path,
            autoscaler=autoscaler,
            accelerator=_priced_by(attached),
        )

    def spot_prices(self, region: str, instance_types: Collection[str]) -> Listing[SpotPrice]:
        """Compute Engine quotes no spot price through its API: the bundled spot list price is used."""
        return Listing()

    def scale_pool(self, pool: CloudPool, desired: int) -> None:
        if pool.kind == "mig":
            self._resize(pool, desired)
        elif pool.kind == "gke-nodepool":
            zones = max(1, len(pool.zones))
            if desired % zones:
                raise SourceError(
                    f"{pool.name} runs in {zones} zones and GKE sets its node count per zone: the desired "
                    f"count must be a multiple of {zones} ({desired} is not)"
                )
            self._call(
                f"GKE nodePools.setSize of {pool.name}",
                None,
                lambda: self._client(container_v1.ClusterManagerClient).set_node_pool_size(
                    request={"name": pool.ref, "node_count": desired // zones},
                    retry=self._retry,
                    timeout=self._timeout,
                ),
            )
        else:
            raise SourceError(f"cannot scale {pool.name}: unknown pool kind {pool.kind!r}")

    def _resize(self, pool: CloudPool, desired: int) -> None:
        """``resize`` a zonal or regional group; its request ID makes a retried call one resize."""
        _, project, where, location, _, name = pool.ref.split("/")
        request: dict[str, object] = {
            "project": project,
            "instance_group_manager": name,
            "size": desired,
            "request_id": str(uuid.uuid4()),
        }
        client: Any
        if where == "zones":
            method, client = (
                "instanceGroupManagers.resize",
                self._client(compute_v1.InstanceGroupManagersClient),
            )
            request["zone"] = location
        else:
            method = "regionInstanceGroupManagers.resize"
            client = self._client(compute_v1.RegionInstanceGroupManagersClient)
            request["region"] = location
        what = f"Compute Engine {method} of {pool.name}"
        op = self._call(
            what, None, lambda: client.resize_unary(request=request, retry=self._retry, timeout=self._timeout)
        )
        errors = [e.message or e.code for e in op.error.errors] if op is not None else []
        if errors:
            raise SourceError(f"{what}: {clean(redact(' '.join(errors[0].split())), 240)}")

    def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for c in clients:
            c.transport.close()


# --- reading Google's answers -------------------------------------------------------------------------------


def _required(value: str, field: str) -> str:
    if not value:
        raise KeyError(field)
    return value


def _last(url: str) -> str:
    """``…/zones/us-central1-a`` → ``us-central1-a`` (a name stays itself)."""
    return url.rstrip("/").rsplit("/", 1)[-1]


def _path(url: str) -> str:
    """A resource URL from ``projects/`` on, so that ``https://www.googleapis.com/compute/v1/projects/…``,
    ``https://compute.googleapis.com/compute/v1/projects/…`` and ``projects/…`` compare equal."""
    at = url.find("projects/")
    return url[at:] if at >= 0 else url


def _region(location: str) -> str:
    """``us-central1-a`` → ``us-central1``; a region stays itself."""
    parts = location.split("-")
    return "-".join(parts[:2]) if len(parts) > 2 else location


def _model(accelerator: str) -> str:
    """A short GPU model from Compute Engine's accelerator type name: the table's, else the name without
    ``nvidia-``, ``tesla-`` and the memory size (``nvidia-rtx-pro-6000`` → ``RTX PRO 6000``)."""
    known = ACCELERATORS.get(accelerator)
    if known:
        return known[0]
    name = re.sub(r"-\d+gb$", "", accelerator.removeprefix("nvidia-").removeprefix("tesla-"))
    return name.replace("-", " ").upper()


def _priced_by(attached: Sequence[tuple[str, int]]) -> str:
    """The accelerator type a machine is priced by where the catalogue lacks its own type (an N1 with
    GPUs attached): the one type attached, else "" (none, or two kinds)."""
    kinds = {t for t, n in attached if t and int(n) > 0}
    return kinds.pop() if len(kinds) == 1 else ""


def _shape(accelerators: Sequence[tuple[str, int]]) -> tuple[str, int]:
    """(model, count) of a machine's accelerators; models that differ joined by ``|``."""
    counted = [(_model(t), int(n)) for t, n in accelerators if t and int(n) > 0]
    return "|".join(dict.fromkeys(m for m, _ in counted)), sum(n for _, n in counted)


def _lifecycle(model: str, preemptible: bool) -> str:
    return "spot" if preemptible else _LIFECYCLE.get(model, "on-demand")


def _unix(stamp: str) -> Metric:
    """RFC 3339 (``2024-05-01T10:00:00.000-07:00``) as Unix time; NA when absent or unreadable."""
    try:
        return datetime.fromisoformat(stamp).timestamp() if stamp else NA
    except ValueError:
        return NA


def _kind(credentials: object) -> str:
    """What kind of Application Default Credentials these are, in gcloud's words (no identity, no key)."""
    name = f"{type(credentials).__module__}.{type(credentials).__qualname__}"
    for marker, kind in (
        ("service_account", "a service account key"),
        ("impersonated", "an impersonated service account"),
        ("external_account", "workload identity federation"),
        ("identity_pool", "workload identity federation"),
        ("compute_engine", "the metadata server"),
        ("oauth2.credentials", "gcloud application-default login"),
    ):
        if marker in name:
            return kind
    return type(credentials).__name__


def _oauth_code(exc: Exception) -> str:
    """The OAuth error code of a refused token request (``invalid_grant``), never the rest of the answer."""
    for arg in exc.args:
        if (
            isinstance(arg, Mapping)
            and isinstance(arg.get("error"), str)
            and _OAUTH_CODES.fullmatch(arg["error"])
        ):
            return str(arg["error"])
    found = _OAUTH_CODES.search(str(exc.args[0]) if exc.args else "")
    return found.group(1) if found else f"token refresh refused: {type(exc).__name__}"


def _reason(exc: api_errors.GoogleAPICallError) -> str:
    """Google's reason: the ErrorInfo's (``SERVICE_DISABLED``), else the first in ``errors``."""
    if exc.reason:
        return str(exc.reason)
    for e in exc.errors:
        if isinstance(e, Mapping) and e.get("reason"):
            return str(e["reason"])
    return ""


def _status(exc: api_errors.GoogleAPICallError) -> str:
    """``429 RESOURCE_EXHAUSTED``: the HTTP status and Google's own status name (the answer's, else the
    gRPC code api-core maps the HTTP status to)."""
    name = _error_body(exc).get("status")
    if not isinstance(name, str) or not name.isidentifier():
        code = exc.grpc_status_code
        name = code.name if code is not None else ""
    return f"{exc.code} {name}".rstrip()


def _error_body(exc: api_errors.GoogleAPICallError) -> Mapping[str, Any]:
    """The ``error`` object of Google's JSON answer; empty when the answer was no such JSON."""
    try:
        error = exc.response.json()["error"]
    except Exception:  # no response, HTML, another shape
        return {}
    return error if isinstance(error, Mapping) else {}


def _throttled(exc: Exception) -> bool:
    if isinstance(exc, api_errors.TooManyRequests | api_errors.ServiceUnavailable):
        return True
    return isinstance(exc, api_errors.Forbidden) and _reason(exc) in _RATE_LIMITED


def _why(exc: api_errors.GoogleAPICallError) -> str:
    reason = _reason(exc)
    if reason in _DISABLED:
        return "the API is disabled in this project"
    if isinstance(exc, api_errors.Forbidden):
        return "permission denied"
    if isinstance(exc, api_errors.NotFound):
        return "not found"
    return _status(exc) + (f" {reason}" if reason else "")


def _said(exc: api_errors.GoogleAPICallError) -> str:
    """Google's own message, fit to show: one line, anything like a credential masked, escapes gone, cut.
    (api-core puts the method and URL before it; the answer's ``error.message`` is taken instead.)"""
    message = _error_body(exc).get("message")
    if not isinstance(message, str):  # no JSON answer: api-core's text, less its "GET http://…: " prefix
        message = re.sub(r"^[A-Z]+ \S+: ", "", str(exc.message))
    return remote_message(message)


def _retry_after(exc: api_errors.GoogleAPICallError) -> float | None:
    """``Retry-After`` in seconds (a number or an HTTP date), None when absent or unreadable."""
    headers = getattr(exc.response, "headers", None)
    value = headers.get("Retry-After") if headers is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - now_utc()).total_seconds())
    except (TypeError, ValueError):
        return None
