"""kubeconfig loading and the HTTP plumbing of :class:`~aios_tui.sources.kubernetes.KubernetesSource`: bounded
reads, errors in words (no token ever in one), the ``_request``/``_call`` every other part goes through.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import quote, urlencode

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException

from aios_tui.config import KubernetesSettings
from aios_tui.domain import Gpu
from aios_tui.domain.errors import redact
from aios_tui.domain.text import clean
from aios_tui.sources._k8s_convert import EndpointRec, Requirement
from aios_tui.sources._k8s_qualify import Qualifier
from aios_tui.sources.base import SourceData, SourceError

if TYPE_CHECKING:
    from aios_tui.sources.kubernetes.access import _Review
    from aios_tui.sources.kubernetes.informer import _Kind, _Scope, _Skipped


log = logging.getLogger("aios_tui.sources.kubernetes")
MAX_ERROR_BYTES: Final = 2**20
"""The most read of an error answer: a ``Status`` is a few hundred bytes."""
_CHUNK: Final = 2**16
_JSON: Final = "application/json"
_MERGE: Final = "application/merge-patch+json"
_STRATEGIC: Final = "application/strategic-merge-patch+json"


FIELD_MANAGER = "aios-tui"
"""The field manager of every change this console makes to an existing object (``?fieldManager=``)."""
_WRITES = frozenset({"PUT", "PATCH"})


class _Gone(SourceError):
    """410 Gone: the resourceVersion is too old (compacted); list again."""


class _Forbidden(SourceError):
    """403 on a list or watch."""


class _TooBig(SourceError):
    """An answer or a watch event over its size limit."""


# --- kubeconfig -------------------------------------------------------------------------------------------


def _kubeconfig_path(settings: KubernetesSettings, env: Mapping[str, str]) -> str | None:
    """The kubeconfig file to read, or None for the in-cluster service account."""
    if settings.kubeconfig is not None:
        return os.fspath(settings.kubeconfig)
    first = next((p for p in env.get("KUBECONFIG", "").split(os.pathsep) if p), "")
    if first:
        return first
    default = Path.home() / ".kube" / "config"
    return os.fspath(default) if default.is_file() else None


def kubeconfig_contexts(path: str) -> tuple[list[str], str]:
    """The context names in a kubeconfig file and its current context. Raises :class:`SourceError`."""
    try:
        contexts, current = k8s_config.list_kube_config_contexts(config_file=path)
    except (ConfigException, OSError, ValueError) as exc:
        raise SourceError(f"cannot read kubeconfig {path}: {redact(str(exc))}") from None
    names = [str(c.get("name", "")) for c in contexts or ()]
    return names, str((current or {}).get("name", ""))


def api_client_factory(path: str | None, context: str | None = None) -> Callable[[], Any]:
    """A factory of ``ApiClient`` for one kubeconfig context (``path`` None: the in-cluster service
    account), without retries: a failed call is reported and the source's own back-off decides."""

    def make() -> Any:
        cfg = k8s_client.Configuration()
        try:
            if path is None:
                k8s_config.load_incluster_config(client_configuration=cfg)
            else:
                k8s_config.load_kube_config(
                    config_file=path, context=context, client_configuration=cfg, persist_config=False
                )
        except (ConfigException, OSError, ValueError) as exc:
            where = "the in-cluster service account" if path is None else f"kubeconfig {path}"
            raise SourceError(f"cannot use {where}: {redact(str(exc))}") from None
        cfg.retries = 0
        # One connection per watch, plus lists, reviews and actions: more than the default of 5 per CPU.
        cfg.connection_pool_maxsize = max(cfg.connection_pool_maxsize, 64)
        cfg.debug = False  # http.client's debug output would print the Authorization header
        return k8s_client.ApiClient(configuration=cfg)

    return make


def _on_event_loop() -> bool:
    """Whether this thread runs an asyncio event loop (which must never wait on a lock or a server)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def _status_message(exc: ApiException) -> tuple[str, list[str]]:
    """The message of the Status the server answered with, and its causes' messages: remote text, so
    cleaned (and credentials masked) here."""
    try:
        status = json.loads(exc.body) if exc.body else {}
    except (ValueError, TypeError, RecursionError):
        status = {}
    if not isinstance(status, dict):
        status = {}
    message = status.get("message")
    if not isinstance(message, str) or not message.strip():
        message = str(exc.reason or f"HTTP {exc.status}")
    details = status.get("details")
    causes = details.get("causes") if isinstance(details, dict) else None
    said = [
        c["message"]
        for c in (causes if isinstance(causes, list) else ())
        if isinstance(c, dict) and isinstance(c.get("message"), str) and c["message"]
    ]
    return clean(redact(message)), [clean(redact(c)) for c in said]


_RBAC_DENIED: Final = re.compile(
    r'User "(?P<user>[^"]*)" cannot (?P<verb>[a-z]+) resource "(?P<resource>[^"]*)"'
    r'(?: in API group "[^"]*")?'
    r'(?: in the namespace "(?P<namespace>[^"]*)"| (?P<cluster>at the cluster scope))?'
)
"""What kube-apiserver's RBAC authorizer says in a 403 (``nodes is forbidden: User "system:serviceaccount:
ml-prod:viewer" cannot list resource "nodes" in API group "" at the cluster scope``)."""


def _forbidden_sentence(message: str, what: str) -> str:
    """A 403 in words: "cannot list nodes: forbidden (RBAC: user u may not list nodes at cluster scope)" for
    a list or watch, "forbidden: RBAC: user u may not patch deployments/scale in namespace ml-prod" for
    anything else. ``message`` is the server's Status message (cleaned), ``what`` the request ("GET /api/v1/
    nodes", "watch /api/v1/nodes", "PATCH …", "evict ns/name"). A message from another authorizer (a
    webhook) is passed on as it is."""
    found = _RBAC_DENIED.search(message)
    if found is not None:
        where = (
            f"in namespace {found['namespace']}"
            if found["namespace"]
            else "at cluster scope"
            if found["cluster"]
            else ""
        )
        said = f"RBAC: user {found['user']} may not {found['verb']} {found['resource']} {where}".rstrip()
    else:
        said = message
    method, _, path = what.partition(" ")
    if method in ("GET", "watch") and path.startswith("/api"):
        resource = found["resource"] if found is not None else path.rstrip("/").rpartition("/")[2]
        verb = "watch" if method == "watch" else found["verb"] if found is not None else "list"
        return f"cannot {verb} {resource}: forbidden ({said})"
    return f"forbidden: {said}"


def _seg(name: str) -> str:
    """A name as one segment of a URL path: a name from a broken or hostile server (``../nodes/x``) must
    not turn an action on one object into an action on another. Valid names pass unchanged."""
    return quote(name, safe="")


def _size(limit: int) -> str:
    """``64 MiB``, ``1.5 KiB``, ``100 bytes``: a limit as a person reads it."""
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if limit >= scale:
            return f"{limit / scale:g} {unit}"
    return f"{limit} bytes"


def _read(resp: Any, limit: int) -> bytes:
    """The whole body of ``resp``, or :class:`_TooBig` as soon as it passes ``limit`` bytes (before any
    of it is read when Content-Length says so); the connection is closed then, not reused."""
    length = resp.headers.get("Content-Length")
    if length is not None and length.strip().isdigit() and int(length) > limit:
        resp.close()
        raise _TooBig(str(limit))
    chunks: list[bytes] = []
    size = 0
    for chunk in resp.stream(_CHUNK, decode_content=True):
        size += len(chunk)
        if size > limit:
            resp.close()
            raise _TooBig(str(limit))
        chunks.append(chunk)
    resp.release_conn()
    return b"".join(chunks)


def _lines(resp: Any, limit: int) -> Iterator[bytes]:
    """The lines of a streamed response as they arrive (a watch sends one JSON event per line, each ended
    by a line break: an unended tail is an event cut off, which the resumed watch sends again); a line
    longer than ``limit`` bytes raises :class:`_TooBig` without being held whole. Reads at most 64 KiB at a
    time (an HTTP chunk is not trusted to be small), and looks for line breaks only in what is new."""
    pending: list[bytes] = []
    size = 0
    for chunk in resp.stream(_CHUNK, decode_content=True):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if size + end - start > limit:
                raise _TooBig(str(limit))
            line = b"".join([*pending, chunk[start:end]]) if pending else chunk[start:end]
            pending, size, start = [], 0, end + 1
            if line.strip():
                yield line
        if start < len(chunk):
            size += len(chunk) - start
            if size > limit:
                raise _TooBig(str(limit))
            pending.append(chunk[start:])


def _shutdown(resp: Any) -> None:
    """Unblock a thread reading ``resp`` (urllib3 ≥ 2.3), then close it."""
    shutdown = getattr(resp, "shutdown", None)
    try:
        if shutdown is not None:
            shutdown()
        resp.close()
    except Exception:  # closing is best effort: the thread exits on its own at the stream's end
        log.debug("closing a watch stream failed", exc_info=True)


class _State:
    """What the mixins of :class:`KubernetesSource` share: its attributes (set in its ``__init__``) and,
    for the type checker only, the methods one mixin calls on another."""

    kind: str
    name: str
    interval: float
    timeout: float
    max_backoff: float
    read_only: bool
    relists: int
    _names: Qualifier | None
    _settings: KubernetesSettings
    _clock: Callable[[], float]
    _gpu_names: tuple[str, ...]
    _job_selector: tuple[Requirement, ...]
    _endpoint_selector: tuple[Requirement, ...]
    _api: Any
    _context: str
    _retry_base: float
    _retry_max: float
    _watch_seconds: float
    _permission_refresh_s: float
    _max_page_bytes: int
    _max_event_bytes: int
    _scopes: tuple[_Scope, ...]
    _kinds: dict[str, _Kind]
    _lock: threading.Lock
    _changed: threading.Condition
    _stores: dict[_Scope, dict[str, Any]]
    _skipped: dict[_Scope, dict[str, _Skipped]]
    _synced: set[_Scope]
    _errors: dict[_Scope, str]
    _version: int
    _stop: threading.Event
    _threads: list[threading.Thread]
    _streams: set[Any]
    _cut: set[Any]
    _listed: dict[_Scope, int]
    _remaining: dict[_Scope, int]
    _down: str
    _build_lock: threading.Lock
    _built_version: int
    _data: SourceData | None
    _gpu_cache: dict[tuple[str, int], Gpu]
    _endpoint_cache: dict[str, tuple[EndpointRec, Any, Any]]
    _reviews: dict[_Review, tuple[bool, float]]
    _review_wanted: set[_Review]
    _review_wake: threading.Event
    _review_error: str
    _denied: dict[_Scope, str]
    _gang_api: bool | None
    audit_hook: Callable[[str, str, str, str], AbstractContextManager[None]] | None
    """Set by the actions (ops.Ops.audited): what writes the audit lines of a change this source makes on its
    own. None (no actions, e.g. ``snapshot``): it makes none."""
    _evicted_from: tuple[int, dict[str, frozenset[str]]]

    if TYPE_CHECKING:

        def _unq(self, name: str) -> str: ...

        def gang_scheduling(self) -> bool: ...

        def _release_loop(self) -> None: ...

        def _reviews_when_synced(self) -> None: ...

        def _find(self, kinds: Sequence[str], key: str) -> Any: ...

        def _endpoint_kind(self, namespace: str, name: str) -> str: ...


class _Client(_State):
    """The methods of :class:`KubernetesSource` in this module."""

    # --- HTTP -----------------------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
        content_type: str = _JSON,
        timeout: float | tuple[float, float | None] | None = None,
        accept: str = _JSON,
    ) -> Any:
        """One call; the raw urllib3 response of a 2xx answer, its body not read yet. Raises ApiException
        (its body read up to :data:`MAX_ERROR_BYTES`) and urllib3's errors as they come.

        The request goes straight to the client's connection pool, with the client's configuration and
        authentication (``update_params_for_auth``: tokens, exec plugins and their refresh), rather than
        through ``call_api``: the client reads every error answer whole before raising. ``timeout`` is the
        whole call's limit, or (connect, read) with read None for a stream that may stay quiet (a log
        followed)."""
        api = self._api
        headers = {**api.default_headers, "Accept": accept}
        if api.cookie:
            headers["Cookie"] = api.cookie
        params = list(query)
        api.update_params_for_auth(headers, params, ["BearerToken"])
        url = f"{api.configuration.host}{path}" + (f"?{urlencode(params)}" if params else "")
        payload = None
        if body is not None:
            headers["Content-Type"] = content_type
            payload = json.dumps(body).encode()
        limit = self.timeout if timeout is None else timeout
        resp = api.rest_client.pool_manager.request(
            method,
            url,
            body=payload,
            headers=headers,
            preload_content=False,
            timeout=urllib3.Timeout(connect=limit[0], read=limit[1])
            if isinstance(limit, tuple)
            else urllib3.Timeout(total=limit),
        )
        if not 200 <= resp.status <= 299:
            exc = ApiException(status=resp.status, reason=resp.reason)
            exc.headers = resp.headers
            try:
                exc.body = _read(resp, MAX_ERROR_BYTES).decode("utf-8", errors="replace")
            except _TooBig:
                exc.body = None  # too long to be a Status: the status code alone says what happened
            raise exc
        return resp

    def _call(
        self,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: object = None,
        content_type: str = _JSON,
        raw_errors: bool = False,
        what: str = "",
    ) -> dict[str, Any]:
        """One call; its JSON answer, read up to ``max_page_bytes``. Raises :class:`SourceError` (ApiException
        too when ``raw_errors``). ``what`` names the answer in the error when it is too big."""
        where = f"{method} {path}"
        if method in _WRITES:
            # Who changed it, in the object's managedFields: "aios-tui", not the client library's User-Agent
            # (a node cordoned from here then shows "cordoned by aios-tui" in every console).
            query = [*query, ("fieldManager", FIELD_MANAGER)]
        try:
            resp = self._request(method, path, query=query, body=body, content_type=content_type)
            data = _read(resp, self._max_page_bytes)
        except ApiException as exc:
            if raw_errors:
                raise
            raise self._error(exc, where) from None
        except urllib3.exceptions.HTTPError as exc:
            raise self._error(exc, where) from None
        except _TooBig:
            raise _TooBig(
                f"{what or 'the answer'} is larger than {_size(self._max_page_bytes)}, the most aios-tui "
                f"reads of one API response ({where}); it was not read"
            ) from None
        try:
            decoded = json.loads(data) if data else {}
        except (ValueError, RecursionError):
            raise SourceError(f"{where}: the API server answered with something that is not JSON") from None
        return decoded if isinstance(decoded, dict) else {}

    def _error(self, exc: Exception, what: str) -> SourceError:
        """A clear, secret-free :class:`SourceError` for a failed call (410 gives :class:`_Gone`)."""
        if isinstance(exc, ApiException):
            message, _ = _status_message(exc)
            if exc.status == 401:
                return SourceError(
                    f"credentials expired or invalid (401 Unauthorized) for {self.name}; "
                    "renew them in the kubeconfig and retry"
                )
            if exc.status == 403:
                return _Forbidden(_forbidden_sentence(message, what))
            if exc.status == 410:
                raise _Gone(message)
            reason = clean(str(exc.reason or ""), 80)  # the status line's words: the server's, not ours
            return SourceError(f"{what}: {exc.status} {reason}: {message}".replace(" : ", ": "))
        if isinstance(exc, urllib3.exceptions.MaxRetryError) and exc.reason is not None:
            exc = exc.reason
        host = str(getattr(self._api.configuration, "host", "the API server"))
        reason = clean(redact(" ".join(str(exc).split())))
        # NewConnectionError derives from ConnectTimeoutError (urllib3 keeps it so): test it first.
        if isinstance(exc, urllib3.exceptions.NewConnectionError):
            return SourceError(
                f"cannot reach {host}: {'connection refused' if 'refused' in reason else reason}"
            )
        if isinstance(exc, urllib3.exceptions.TimeoutError):
            return SourceError(f"{what}: no answer from the API server within {self.timeout:g}s")
        return SourceError(f"cannot reach {host}: {reason}")

    def _safe_error(self, exc: Exception, what: str) -> SourceError:
        """A :class:`SourceError` for anything a list or watch raised."""
        if isinstance(exc, ApiException | urllib3.exceptions.HTTPError | OSError):
            try:
                return self._error(exc, what)
            except _Gone:
                return SourceError(f"{what}: resourceVersion expired")
        log.error("%s: %s failed unexpectedly", self.name, what, exc_info=True)
        said = clean(redact(" ".join(str(exc).split())), 200) or "no message"
        return SourceError(f"{what}: failed unexpectedly ({said}); the log has the details")
