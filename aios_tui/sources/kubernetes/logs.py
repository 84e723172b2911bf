"""Reading one object of :class:`~aios_tui.sources.kubernetes.KubernetesSource` as the cluster holds it: a
pod's container log (``GET …/pods/{name}/log``: tail, previous run, follow) and the object itself as YAML.

Both go through the same connection pool, authentication and TLS as the lists and watches
(``_Client._request``), and both are bounded as they stream in, never after. A log is what a tenant's
program wrote: any bytes, escape sequences that would clear or retitle the operator's terminal, bidi
overrides, a 50 MB line without a break. So each line is cleaned (:func:`~aios_tui.domain.text.clean`) and
cut to :data:`LINE_LIMIT` characters, at most :data:`MAX_LINE_BYTES` of an unended line are held, at most
``tail`` lines are kept (a deque), and the server is asked for at most :data:`MAX_LOG_BYTES`
(``limitBytes``), which the reading enforces too: a server that ignores it is cut off there.

Errors are sentences an operator acts on, never the client's classes: 403 says which namespace's logs
the user may not read (and RBAC's own words), 404 which pod is gone, a 400 for ``previous`` that the
container has not restarted.
"""

from __future__ import annotations

import asyncio
import re
from collections import deque
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final

import urllib3
from kubernetes.client.exceptions import ApiException

from aios_tui.domain.text import clean
from aios_tui.sources._object_yaml import object_yaml
from aios_tui.sources.base import SourceError
from aios_tui.sources.kubernetes.client import (
    _CHUNK,
    _RBAC_DENIED,
    _Client,
    _seg,
    _shutdown,
    _status_message,
)

__all__ = ["LINE_LIMIT", "MAX_LOG_BYTES", "MAX_TAIL", "split_lines"]

MAX_LOG_BYTES: Final = 4 * 2**20
"""The most of one log read (``limitBytes``): 4 MiB is ~40,000 lines of a vLLM server's access log."""
LINE_LIMIT: Final = 2000
"""Characters kept of one log line (a longer one ends in "…"): a stack trace's frame or a JSON log record
fits; a tokenizer dump does not need to."""
MAX_LINE_BYTES: Final = 4 * LINE_LIMIT
"""Bytes held of a line not yet ended: enough for :data:`LINE_LIMIT` characters of any UTF-8."""
MAX_TAIL: Final = 100_000
"""The most lines one read asks for and keeps."""
_TEXT: Final = "text/plain, */*"
_QUOTED: Final = re.compile(r'container "?([^"\s]+)"?')


def split_lines(chunks: Iterator[bytes]) -> Iterator[list[str]]:
    """The cleaned lines of a byte stream, one list per chunk read (so a follower waits on the stream, not
    on a line); an unended last line is given at the end. At most :data:`MAX_LINE_BYTES` of a line are
    held: the rest of a longer one is dropped, and the line ends in "…"."""
    pending = bytearray()
    cut = False

    def line() -> str:
        nonlocal cut
        text = clean(bytes(pending).decode("utf-8", errors="replace").rstrip("\r"), LINE_LIMIT)
        if cut and not text.endswith("…"):
            text = text[: LINE_LIMIT - 1] + "…"
        pending.clear()
        cut = False
        return text

    for chunk in chunks:
        out: list[str] = []
        start = 0
        while start <= len(chunk):
            end = chunk.find(b"\n", start)
            piece = chunk[start:] if end < 0 else chunk[start:end]
            room = MAX_LINE_BYTES - len(pending)
            if len(piece) > room:
                pending += piece[: max(0, room)]
                cut = True
            else:
                pending += piece
            if end < 0:
                break
            out.append(line())
            start = end + 1
        if out:
            yield out
    if pending or cut:
        yield [line()]


class _Logs(_Client):
    """The :class:`~aios_tui.sources.base.LogReader` and :class:`~aios_tui.sources.base.ObjectReader`
    methods of :class:`KubernetesSource`."""

    async def read_log(
        self, namespace: str, pod: str, *, container: str = "", previous: bool = False, tail: int = 500
    ) -> list[str]:
        return await asyncio.to_thread(self.read_log_now, namespace, pod, container, previous, tail)

    def read_log_now(
        self, namespace: str, pod: str, container: str = "", previous: bool = False, tail: int = 500
    ) -> list[str]:
        """The last ``tail`` lines (at most :data:`MAX_LOG_BYTES` read). Raises :class:`SourceError`."""
        tail = max(1, min(tail, MAX_TAIL))
        resp = self._open_log(namespace, pod, container, previous=previous, tail=tail, follow=False)
        kept: deque[str] = deque(maxlen=tail)
        size = 0
        whole = False

        def chunks() -> Iterator[bytes]:
            nonlocal size
            for chunk in resp.stream(_CHUNK, decode_content=True):
                size += len(chunk)
                yield chunk
                if size >= MAX_LOG_BYTES + _CHUNK:  # the server ignored limitBytes: enough
                    return

        try:
            for lines in split_lines(chunks()):
                kept.extend(lines)
            whole = size < MAX_LOG_BYTES + _CHUNK
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._log_error(exc, namespace, pod, container) from None
        finally:
            if whole:
                resp.release_conn()
            else:
                resp.close()
        return list(kept)

    async def follow_log(
        self, namespace: str, pod: str, *, container: str = "", tail: int = 100
    ) -> AsyncIterator[str]:
        """The last ``tail`` lines, then each line as the container writes it, until the caller stops (the
        stream is closed then, which ends the thread reading it) or the container ends."""
        tail = max(1, min(tail, MAX_TAIL))
        resp = await asyncio.to_thread(
            self._open_log, namespace, pod, container, previous=False, tail=tail, follow=True
        )
        batches = split_lines(resp.stream(_CHUNK, decode_content=True))
        try:
            while True:
                try:
                    lines = await asyncio.to_thread(next, batches, None)
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    raise self._log_error(exc, namespace, pod, container) from None
                if lines is None:
                    return
                for line in lines:
                    yield line
        finally:
            _shutdown(resp)

    def _open_log(
        self, namespace: str, pod: str, container: str, *, previous: bool, tail: int, follow: bool
    ) -> Any:
        path = f"/api/v1/namespaces/{_seg(self._unq(namespace))}/pods/{_seg(pod)}/log"
        query = [("tailLines", str(tail))]
        if container:
            query.append(("container", container))
        if previous:
            query.append(("previous", "true"))
        if follow:
            query.append(("follow", "true"))  # no limitBytes: it would end the stream there
        else:
            query.append(("limitBytes", str(MAX_LOG_BYTES)))
        try:
            return self._request(
                "GET",
                path,
                query=query,
                accept=_TEXT,
                timeout=(self.timeout, None) if follow else self.timeout,
            )
        except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
            raise self._log_error(exc, namespace, pod, container) from None

    def _log_error(self, exc: Exception, namespace: str, pod: str, container: str) -> SourceError:
        where = f"{namespace}/{pod}"
        if not isinstance(exc, ApiException):
            return self._error(exc, f"logs of {where}")
        message, _ = _status_message(exc)
        if exc.status == 403:
            found = _RBAC_DENIED.search(message)
            said = (
                f"RBAC: user {found['user']} may not {found['verb']} {found['resource']} in namespace "
                f"{namespace}"
                if found is not None
                else message
            )
            return SourceError(f"forbidden: you may not read logs of pods in {namespace} ({said})")
        if exc.status == 404:
            return SourceError(f"pod {where} not found")
        if exc.status == 400 and "previous terminated container" in message:
            named = _QUOTED.search(message)
            which = named[1] if named is not None else container or "of the pod"
            return SourceError(f"no previous run of container {which} in pod {where}: it has not restarted")
        if exc.status == 400:  # waiting to start, several containers to choose from: the server's words
            return SourceError(f"logs of pod {where}: {message}")
        return self._error(exc, f"logs of {where}")

    # --- the object as YAML ---------------------------------------------------------------------------------

    async def read_object(self, kind: str, key: str) -> str:
        return await asyncio.to_thread(self.read_object_now, kind, key)

    def read_object_now(self, kind: str, key: str) -> str:
        """``kind`` (node, pod, job, endpoint) ``key`` as the API server holds it, as YAML (managedFields
        left out, cleaned, bounded). Raises :class:`SourceError`."""
        if kind == "node":
            path, noun = f"/api/v1/nodes/{_seg(self._unq(key))}", "nodes"
        elif kind in ("pod", "job", "endpoint"):
            namespace, _, name = key.rpartition("/")
            if not namespace or not name:
                raise SourceError(f"{kind} {clean(key)!r} is not namespace/name")
            ns = self._unq(namespace)
            if kind == "pod":
                api, noun = "/api/v1", "pods"
            elif kind == "job":
                api, noun = "/apis/batch/v1", "jobs"
            else:
                api = "/apis/apps/v1"
                noun = "statefulsets" if self._endpoint_kind(ns, name) == "StatefulSet" else "deployments"
            path = f"{api}/namespaces/{_seg(ns)}/{noun}/{_seg(name)}"
        else:
            raise SourceError(
                f"{self.name} shows nodes, pods, jobs and endpoints as YAML, not {clean(kind, 40)}"
            )
        try:
            obj = self._call("GET", path, raw_errors=True, what=f"{kind} {key}")
        except ApiException as exc:
            if exc.status == 404:
                raise SourceError(f"{kind} {key} not found in {self.name}") from None
            if exc.status == 403:
                message, _ = _status_message(exc)
                found = _RBAC_DENIED.search(message)
                said = f"RBAC: user {found['user']} may not get {noun}" if found is not None else message
                raise SourceError(f"forbidden: you may not read {kind} {key} ({said})") from None
            raise self._error(exc, f"GET {path}") from None
        return object_yaml(obj)
