"""The list/watch loop of :class:`~aios_tui.sources.kubernetes.KubernetesSource`, after client-go's informers:
the kinds read, paged lists, watches resumed from the last version, re-lists on 410, the ``/readyz`` probe.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

import urllib3
from kubernetes.client.exceptions import ApiException

from aios_tui.domain.errors import redact
from aios_tui.domain.text import clean
from aios_tui.sources._k8s_convert import (
    MalformedObject,
    convert_deployment,
    convert_hpa,
    convert_job,
    convert_node,
    convert_pdb,
    convert_pod,
    convert_podgroup,
    convert_replicaset,
    convert_warning_event,
    object_key,
)
from aios_tui.sources.base import SourceError, backoff_delay
from aios_tui.sources.kubernetes.client import (
    MAX_ERROR_BYTES,
    _Client,
    _Forbidden,
    _Gone,
    _lines,
    _read,
    _seg,
    _shutdown,
    _size,
    _TooBig,
    log,
)

PAGE_SIZE: Final = 500
WATCH_SECONDS: Final = 240.0
"""Each watch asks the server to end it after this long (``timeoutSeconds``); it then resumes."""
WATCH_SILENCE_S: Final = 120.0
"""A watch that sends nothing for this long (plus ``timeout``) is dropped and resumed. A real kube-apiserver
sends a BOOKMARK on every watch that allows them about once a minute (its watch cache's bookmark frequency),
so this is two missed bookmarks: a connection a middlebox forgot, not a quiet kind. A hung server is found
sooner, by the probe (:data:`PROBE_PATH`)."""
PROBE_PATH: Final = "/readyz"
"""What each fetch asks the server, bounded by the source's timeout, to know that it still answers: the
watches alone cannot tell a quiet cluster from a hung server. ``/readyz`` is readable by every user (the
built-in ``system:public-info-viewer`` role), costs the server no storage read, and fails (500) when the
server cannot reach etcd, when what it serves is no longer current either."""
MAX_PAGE_BYTES: Final = 64 * 2**20
"""The most read of one answer (a list page of ``PAGE_SIZE`` objects, a GET, an action's answer). A page
reaches 64 MiB only if its 500 objects average 128 KiB: the pods captured from a real kube-apiserver
(tests/fixtures/kubernetes) average 4.5 KiB, and a heavy production pod (managedFields, a
last-applied-configuration annotation, dozens of env vars) stays around 30 KiB. bench/bench_k8s.py prints
the largest page of a 5,000-node / 150,000-pod fleet against it."""
MAX_EVENT_BYTES: Final = 16 * 2**20
"""The most read of one watch event (one object, one line): over ten times the 1.5 MiB etcd stores of one
object by default (its ``--max-request-bytes``), JSON being larger than the protobuf etcd holds."""


@dataclass(frozen=True, slots=True)
class _Kind:
    """A resource the source lists and watches."""

    name: str
    api: str
    """``/api/v1`` or ``/apis/<group>/<version>``."""
    namespaced: bool = True
    required: bool = False
    """Without it the view is wrong (pods): its errors fail the fetch even when it is forbidden. Nodes are
    not: a user who may not list them (the built-in ``view`` role) still sees the nodes its pods name."""
    field_selector: str = ""
    """Only these objects are listed and watched (the server filters)."""
    optional: bool = False
    """Listed and watched only where the server serves it (discovery, asked once): an alpha API."""

    def path(self, namespace: str) -> str:
        if self.namespaced and namespace:
            return f"{self.api}/namespaces/{_seg(namespace)}/{self.name}"
        return f"{self.api}/{self.name}"


NODES = _Kind("nodes", "/api/v1", namespaced=False)
PODS = _Kind("pods", "/api/v1", required=True)
DEPLOYMENTS = _Kind("deployments", "/apis/apps/v1")
STATEFULSETS = _Kind("statefulsets", "/apis/apps/v1")
REPLICASETS = _Kind("replicasets", "/apis/apps/v1")
JOBS = _Kind("jobs", "/apis/batch/v1")
PDBS = _Kind("poddisruptionbudgets", "/apis/policy/v1")
HPAS = _Kind("horizontalpodautoscalers", "/apis/autoscaling/v2")
EVENTS = _Kind("events", "/api/v1", field_selector="type=Warning")
"""Warning events only (the scheduler's refusals among them: why a pod, and so a gang, waits): what went
wrong is what an on-call engineer reads; Normal events churn (every pull, start, scale) and say less."""
GANG_API: Final = "/apis/scheduling.k8s.io/v1alpha2"
"""Kubernetes' own gang scheduling (alpha since 1.35; Workload and PodGroup in v1alpha2 since 1.36)."""
PODGROUPS = _Kind("podgroups", GANG_API, optional=True)
"""Where the cluster schedules gangs itself: whether each gang is placed (``PodGroupScheduled``)."""
KINDS: Final = (NODES, PODS, DEPLOYMENTS, STATEFULSETS, REPLICASETS, JOBS, PDBS, HPAS, EVENTS, PODGROUPS)

_Scope = tuple[str, str]
"""(kind name, namespace) of one list-and-watch: namespace "" means all namespaces."""


_NOUNS: Final = {
    "nodes": "node",
    "pods": "pod",
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
    "jobs": "Job",
    "poddisruptionbudgets": "PodDisruptionBudget",
    "horizontalpodautoscalers": "HorizontalPodAutoscaler",
    "events": "Warning event",
    "podgroups": "PodGroup",
}
_NO_NAME: Final = "(unnamed)"
"""The key under which objects without a readable name are counted: one per such object in a list, and one
for all such watch events (their updates cannot be matched, so they stay counted until the next list)."""


@dataclass(frozen=True, slots=True)
class _Skipped:
    """Why an object was skipped, and whether its last good version is still shown."""

    reason: str
    kept: bool = False


def _skip_sentences(skipped: Mapping[_Scope, Mapping[str, _Skipped]]) -> tuple[str, ...]:
    """One sentence per kind with skipped objects: how many, and one of them with why ("1 pod skipped:
    metadata.ownerReferences is not a list (ml-prod/x)"). Keys are cleaned names; reasons name fields."""
    by_kind: dict[str, dict[str, _Skipped]] = {}
    for (name, _), entries in skipped.items():
        by_kind.setdefault(name, {}).update(entries)
    out = []
    for kind in KINDS:
        entries = by_kind.get(kind.name, {})
        if not entries:
            continue
        count = len(entries)
        key = min(entries, key=lambda k: (k.startswith(_NO_NAME), k))
        why = entries[key]
        example = "unnamed" if key.startswith(_NO_NAME) else key
        if why.kept:
            example += ", its last good version shown"
        more = f" and {count - 1} more" if count > 1 else ""
        noun = _NOUNS[kind.name] + ("s" if count > 1 else "")
        out.append(f"{count} {noun} skipped: {why.reason} ({example}){more}")
    return tuple(out)


def _version_of(meta: Mapping[str, Any], default: str) -> str:
    """An object's or a list's resourceVersion (etcd's revision, a decimal int64), or ``default`` when it
    has none that could be one: it goes back to the server in the next watch's query."""
    version = meta.get("resourceVersion")
    return version if isinstance(version, str) and 0 < len(version) <= 64 else default


class _Informer(_Client):
    """The methods of :class:`KubernetesSource` in this module."""

    def _probe(self, budget: float) -> None:
        """Ask the server :data:`PROBE_PATH` within ``budget`` seconds; :class:`SourceError` when it does not
        answer (a hung server, a partition) or says it is not ready. An answer after a failure resumes every
        open watch (from its last version: nothing missed, nothing twice), since a connection that lived
        through the outage may be one the server has forgotten."""
        failed = ""
        try:
            _read(self._request("GET", PROBE_PATH, timeout=budget), MAX_ERROR_BYTES)
        except ApiException as exc:
            if exc.status >= 500:  # 401/403/404: it answered, and the lists say what is wrong
                failed = f"the API server is not ready (GET {PROBE_PATH}: {exc.status})"
        except _TooBig:
            pass  # it answered
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            cause = exc.reason if isinstance(exc, urllib3.exceptions.MaxRetryError) else exc
            if isinstance(cause, urllib3.exceptions.TimeoutError) and not isinstance(
                cause, urllib3.exceptions.NewConnectionError
            ):
                within = f"{round(budget, 1):g}s"
                failed = f"no answer from the API server within {within} (GET {PROBE_PATH}): hung or cut off"
            else:
                failed = str(self._error(exc, f"GET {PROBE_PATH}"))
        with self._lock:
            was, self._down = self._down, failed
            streams = list(self._streams) if was and not failed else []
            self._cut.update(streams)
        if was and not failed:
            log.info("%s: the API server answers again; resuming %d watches", self.name, len(streams))
        for resp in streams:
            _shutdown(resp)
        if failed:
            raise SourceError(failed)

    # --- lists and watches ----------------------------------------------------------------------------------

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._stop.is_set():
                return
            for scope in self._scopes:
                self._threads.append(
                    threading.Thread(
                        target=self._informer, args=scope, name=f"{self.name}:{scope[0]}", daemon=True
                    )
                )
            self._threads.append(
                threading.Thread(target=self._reviews_when_synced, name=f"{self.name}:rbac", daemon=True)
            )
            if not self.read_only and not self._settings.kueue_queue:
                self._threads.append(
                    threading.Thread(target=self._release_loop, name=f"{self.name}:release", daemon=True)
                )
        for t in self._threads:
            t.start()

    def _informer(self, kind_name: str, namespace: str) -> None:
        """List, then watch from the list's version, forever: the loop of one resource kind."""
        kind = self._kinds[kind_name]
        scope = (kind_name, namespace)
        version = ""
        failures = 0
        while not self._stop.is_set():
            try:
                if kind.optional and not self.gang_scheduling():
                    with self._changed:  # not served here: nothing to list, ever (asked once)
                        self._synced.add(scope)
                        self._errors.pop(scope, None)
                        self._version += 1
                        self._changed.notify_all()
                    return
                if not version:
                    version = self._list(kind, namespace)
                started, was = time.monotonic(), version
                version = self._watch(kind, namespace, version)
                if version == was and time.monotonic() - started < 1.0:
                    # Closed at once with nothing in it: do not hammer whatever keeps closing it.
                    failures += 1
                    if self._stop.wait(backoff_delay(self._retry_base, failures - 1, self._retry_max)):
                        return
                else:
                    failures = 0
            except _Gone:
                log.info("%s: %s: resourceVersion expired, listing again", self.name, kind_name)
                with self._lock:
                    self.relists += 1
                version = ""
            except Exception as exc:
                if self._stop.is_set():
                    return
                failures += 1
                error = exc if isinstance(exc, SourceError) else self._safe_error(exc, kind.path(namespace))
                delay = backoff_delay(self._retry_base, failures - 1, self._retry_max)
                if isinstance(error, _Forbidden) and not kind.required:
                    # Not allowed to see this kind: show the rest, and ask again now and then.
                    log.warning("%s: %s", self.name, error)
                    with self._changed:
                        self._synced.add(scope)
                        self._denied[scope] = str(error)  # said in problems until a list succeeds
                        self._version += 1
                        self._changed.notify_all()
                    delay = self._permission_refresh_s
                else:
                    if failures == 1:
                        log.warning("%s: %s: %s", self.name, kind_name, error)
                    with self._changed:
                        self._errors[scope] = str(error)
                        self._version += 1
                        self._changed.notify_all()
                if self._stop.wait(delay):
                    return

    def _list(self, kind: _Kind, namespace: str) -> str:
        """List every object in pages; replaces the kind's store. Returns the list's resourceVersion.

        The first list of a kind fills its store page by page, so the first view streams in (nodes, a
        page or two, come before the pods); a list after that (a 410) is built aside and swapped in whole,
        so the last complete view stays until then. Each page is bounded by ``timeout``, the list is not:
        it may take as long as it keeps making progress. No ``resourceVersion=0``: since Kubernetes 1.31
        a consistent list is served from the watch cache too, and ``0`` may be older than what was seen
        (and on older servers ignores ``limit``, sending every pod in one answer)."""
        path = kind.path(namespace)
        scope = (kind.name, namespace)
        items: dict[str, Any] = {}
        skipped: dict[str, _Skipped] = {}
        with self._lock:
            previous = self._stores[scope]
            first = scope not in self._synced
            if first:
                self._stores[scope] = items  # filled under the lock, page by page
                self._listed[scope] = 0
                self._remaining.pop(scope, None)
        token = ""
        version = ""
        while True:
            query = [("limit", str(PAGE_SIZE))] + ([("continue", token)] if token else [])
            if kind.field_selector:
                query.append(("fieldSelector", kind.field_selector))
            page = self._call("GET", path, query=query, what=f"a list page of {kind.name}")
            objects = page.get("items") or []
            if not isinstance(objects, list):
                raise SourceError(f"GET {path}: the API server's list has no list of items")
            taken: dict[str, Any] = {}
            for obj in objects:
                self._take(kind.name, obj, taken, skipped, previous)
            meta = page.get("metadata")
            meta = meta if isinstance(meta, dict) else {}
            version = _version_of(meta, "")
            more = meta.get("continue")
            token = more if isinstance(more, str) else ""
            left = meta.get("remainingItemCount")
            with self._changed:
                items.update(taken)
                if first:
                    self._listed[scope] = len(items)
                    self._errors.pop(scope, None)  # a first list that failed is making progress again
                    if isinstance(left, int) and not isinstance(left, bool) and 0 <= left < 2**31:
                        self._remaining[scope] = left if token else 0
                    self._version += 1
                    self._changed.notify_all()
            if not token or self._stop.is_set():
                break
        with self._changed:
            self._stores[scope] = items
            self._skipped[scope] = skipped
            self._listed.pop(scope, None)
            self._remaining.pop(scope, None)
            self._synced.add(scope)
            self._errors.pop(scope, None)
            self._denied.pop(scope, None)
            self._version += 1
            self._changed.notify_all()
        return version

    def _take(
        self,
        kind: str,
        obj: object,
        store: dict[str, Any],
        skipped: dict[str, _Skipped],
        previous: Mapping[str, Any],
    ) -> None:
        """Convert one listed object into ``store``, or count it in ``skipped`` (keeping its version from
        ``previous``, the last list, when there was one)."""
        unnamed = f"{_NO_NAME} {len(skipped)}"
        if not isinstance(obj, dict):
            skipped[unnamed] = _Skipped("an item of the list is not a JSON object")
            return
        try:
            key = object_key(obj)
        except MalformedObject as exc:
            skipped[unnamed] = _Skipped(str(exc))
            return
        try:
            rec = self._convert(kind, obj)
        except MalformedObject as exc:
            old = previous.get(key)
            if old is not None:
                store[key] = old
            skipped[key] = _Skipped(str(exc), kept=old is not None)
            return
        if rec is not None:
            store[key] = rec

    def _watch(self, kind: _Kind, namespace: str, version: str) -> str:
        """Follow one watch until it ends; the last resourceVersion seen (bookmarks included)."""
        path = kind.path(namespace)
        query = [
            ("watch", "1"),
            ("resourceVersion", version),
            ("allowWatchBookmarks", "true"),
            ("timeoutSeconds", str(max(1, int(self._watch_seconds)))),
        ]
        if kind.field_selector:
            query.append(("fieldSelector", kind.field_selector))
        try:
            # Silence past a bookmark or two (or the watch's own end) is a connection gone dead.
            silence = min(self._watch_seconds, WATCH_SILENCE_S) + self.timeout
            resp = self._request("GET", path, query=query, timeout=(self.timeout, silence))
        except ApiException as exc:
            raise self._error(exc, f"watch {path}") from None
        scope = (kind.name, namespace)
        with self._changed:
            if self._stop.is_set():
                _shutdown(resp)
                return version
            self._streams.add(resp)
            if self._errors.pop(scope, None) is not None:
                self._version += 1
                self._changed.notify_all()
        try:
            for line in _lines(resp, self._max_event_bytes):
                try:
                    event = json.loads(line)
                except (ValueError, RecursionError):
                    self._skip(scope, "a watch event is not JSON")
                    continue
                if not isinstance(event, dict):
                    self._skip(scope, "a watch event is not a JSON object")
                    continue
                kind_of_event, obj = event.get("type"), event.get("object")
                if kind_of_event == "ERROR":
                    status = obj if isinstance(obj, dict) else {}
                    code, message = status.get("code"), status.get("message")
                    message = clean(message) if isinstance(message, str) else ""
                    if code == 410:
                        raise _Gone(message)
                    raise SourceError(f"watch {path}: {clean(str(code), 16)} {message}".strip())
                if kind_of_event not in ("ADDED", "MODIFIED", "DELETED", "BOOKMARK"):
                    self._skip(scope, "a watch event has no known type")
                    continue
                if not isinstance(obj, dict):
                    self._skip(scope, "a watch event has no object")
                    continue
                meta = obj.get("metadata")
                new_version = _version_of(meta, version) if isinstance(meta, dict) else version
                if kind_of_event != "BOOKMARK":
                    self._apply(scope, kind_of_event, obj)
                version = new_version
        except _TooBig:
            resp.close()
            raise _TooBig(
                f"a watch event on {kind.name} is larger than {_size(self._max_event_bytes)}, the most "
                f"aios-tui reads of one event (watch {path}); it was not read"
            ) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            # The stream ended early (a dropped connection, a read timeout): resume from ``version``.
            if not self._stop.is_set():
                log.debug("%s: watch %s ended: %s", self.name, path, redact(str(exc)))
        except Exception as exc:
            # Closed under the reading thread (to resume it), http.client may fail in any way: a chunk's
            # length read, then its body from a file already gone (AttributeError on None).
            with self._lock:
                if resp not in self._cut or isinstance(exc, SourceError):
                    raise
            log.debug("%s: watch %s cut to resume: %r", self.name, path, exc)
        finally:
            with self._lock:
                self._streams.discard(resp)
                self._cut.discard(resp)
            resp.release_conn()
        return version

    def _skip(self, scope: _Scope, reason: str) -> None:
        """Count a watch event that names no object it could change."""
        with self._lock:
            if self._skipped[scope].get(_NO_NAME) != _Skipped(reason):
                self._skipped[scope][_NO_NAME] = _Skipped(reason)
                self._version += 1

    def _apply(self, scope: _Scope, event: str, obj: dict[str, Any]) -> None:
        try:
            key = object_key(obj)
        except MalformedObject as exc:
            self._skip(scope, str(exc))
            return
        rec, error = None, ""
        if event != "DELETED":
            try:
                rec = self._convert(scope[0], obj)
            except MalformedObject as exc:
                error = str(exc)
        with self._lock:
            store, skipped = self._stores[scope], self._skipped[scope]
            if error:
                why = _Skipped(error, kept=key in store)  # its last good version stays
                if skipped.get(key) == why:
                    return
                skipped[key] = why
            else:
                was_skipped = skipped.pop(key, None) is not None
                if rec is not None:
                    store[key] = rec
                elif store.pop(key, None) is None and not was_skipped:
                    return
            self._version += 1

    def _convert(self, kind: str, obj: dict[str, Any]) -> Any:
        names, source = self._gpu_names, self.name
        if kind == "nodes":
            return convert_node(obj, source=source, gpu_names=names, rack_label=self._settings.rack_label)
        if kind == "pods":
            return convert_pod(obj, source=source, gpu_names=names)
        if kind == "deployments":
            return convert_deployment(obj, kind="Deployment", gpu_names=names)
        if kind == "statefulsets":
            return convert_deployment(obj, kind="StatefulSet", gpu_names=names)
        if kind == "replicasets":
            return convert_replicaset(obj)
        if kind == "jobs":
            return convert_job(obj, gpu_names=names)
        if kind == "poddisruptionbudgets":
            return convert_pdb(obj, source=source)
        if kind == "horizontalpodautoscalers":
            return convert_hpa(obj)
        if kind == "events":
            return convert_warning_event(obj, source=source)
        if kind == "podgroups":
            return convert_podgroup(obj)
        raise ValueError(f"unknown kind {kind!r}")
