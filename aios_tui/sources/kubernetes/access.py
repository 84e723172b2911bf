"""The SelfSubjectAccessReview cache of :class:`~aios_tui.sources.kubernetes.KubernetesSource`: what the user
may do, asked in the background and answered from the cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Final

from aios_tui.sources.base import SourceError
from aios_tui.sources.kubernetes.client import _Client, _on_event_loop, log

PERMISSION_REFRESH_S: Final = 300.0


@dataclass(frozen=True, slots=True)
class _Review:
    """One SelfSubjectAccessReview question."""

    verb: str
    group: str
    resource: str
    subresource: str = ""
    namespace: str = ""

    @property
    def asks(self) -> str:
        """``patch on deployments/scale in ml-prod``, ``patch on nodes``: the question in words."""
        what = f"{self.resource}/{self.subresource}" if self.subresource else self.resource
        where = (
            f" in {self.namespace}" if self.namespace else "" if self.resource == "nodes" else " cluster-wide"
        )
        return f"{self.verb} on {what}{where}"

    def denial(self, action: str, target: str | None, source: str) -> str:
        """Why not, in words: "you may not cordon nodes in k8s:rig: RBAC denies patch on nodes"."""
        if action in ("cordon", "uncordon", "drain"):
            what = "nodes"
        elif action == "launch" and not target:
            what = "jobs"
        else:
            what = target or ""
        return f"you may not {action} {what} in {source}: RBAC denies {self.asks}".replace("  ", " ")


class _Access(_Client):
    """The methods of :class:`KubernetesSource` in this module."""

    # --- permissions ----------------------------------------------------------------------------------------

    def permission(self, action: str, target: str | None = None, *, wait: float | None = None) -> str | None:
        """None when the access reviews allow ``action`` on ``target``; else why not: read-only, RBAC's denial
        ("you may not cordon nodes in k8s:rig: RBAC denies patch on nodes"), or, while a review has not
        answered, a sentence beginning "checking permissions…": an unknown permission is never taken as
        allowed, nor as denied (:meth:`permission_known` tells the two apart).

        ``wait``: how long to wait for a review not answered yet. By default not at all on a thread running
        an event loop (the console asks while it draws its footer), and up to ``timeout`` elsewhere (a
        script, a test, a worker thread), so that a caller that can block gets the answer. A question not
        asked yet is asked at once, in the background."""
        if self.read_only:
            return f"{self.name} is read-only (kubernetes read_only in the settings)"
        reviews = self._reviews_for(action, self._unq(target) if target else target)
        if not reviews:
            return None
        if wait is None:
            wait = 0.0 if _on_event_loop() else self.timeout
        deadline = time.monotonic() + wait
        with self._changed:
            if any(r not in self._reviews for r in reviews):
                self._review_wanted.update(r for r in reviews if r not in self._reviews)
                self._review_wake.set()
                while any(r not in self._reviews for r in reviews) and not self._stop.is_set():
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
            answers = [(review, self._reviews.get(review)) for review in reviews]
            failed = self._review_error
        if action == "launch" and target is None:  # any namespace it may launch in will do
            if any(got is not None and got[0] for _, got in answers):
                return None
            if all(got is not None for _, got in answers):
                return answers[0][0].denial(action, target, self.name)
        for review, got in answers:
            if got is not None and not got[0]:
                return review.denial(action, target, self.name)
        unknown = next((review for review, got in answers if got is None), None)
        if unknown is None:
            return None
        if failed:
            return f"checking permissions… (the access review in {self.name} failed: {failed}; it is retried)"
        return (
            f"checking permissions… ({self.name} has not answered the access review for {unknown.asks} yet)"
        )

    def permission_known(self, action: str, target: str | None = None) -> bool:
        """Whether :meth:`permission` answers from access reviews already made ("checking permissions…"
        otherwise). Never blocks."""
        said = self.permission(action, target, wait=0.0)
        return said is None or not said.startswith("checking permissions")

    def _reviews_for(self, action: str, target: str | None) -> list[_Review]:
        ns, _, name = (target or "").rpartition("/")
        if action in ("scale", "redeploy"):
            if not target:
                return []
            resource = "statefulsets" if self._endpoint_kind(ns, name) == "StatefulSet" else "deployments"
            return [_Review("patch", "apps", resource, "scale" if action == "scale" else "", ns)]
        if action in ("cordon", "uncordon"):
            return [_Review("patch", "", "nodes")]
        if action == "drain":
            if not target:
                return [_Review("patch", "", "nodes"), _Review("create", "", "pods", "eviction")]
            # Evictions in the namespaces of its pods, not cluster-wide: a user allowed to evict in those
            # only may drain the node.
            evictions = [_Review("create", "", "pods", "eviction", ns) for ns in self._evictable(target)]
            return [_Review("patch", "", "nodes"), *evictions]
        if action == "launch":
            if target:
                return [_Review("create", "batch", "jobs", "", ns)]
            return [_Review("create", "batch", "jobs", "", n) for n in self._settings.namespaces or ("",)]
        return []

    def _evictable(self, node: str) -> list[str]:
        """The namespaces of the pods a drain of ``node`` evicts (not DaemonSets'), sorted; indexed once per
        store version, as the console asks for every key it draws."""
        with self._lock:
            version, index = self._evicted_from
            if version != self._version:
                by_node: dict[str, set[str]] = {}
                for (kind, _), store in self._stores.items():
                    if kind == "pods":
                        for rec in store.values():
                            pod = rec.pod
                            if pod.node and pod.owner_kind != "DaemonSet":
                                by_node.setdefault(pod.node, set()).add(pod.namespace)
                index = {n: frozenset(namespaces) for n, namespaces in by_node.items()}
                self._evicted_from = (self._version, index)
        return sorted(index.get(node, ()))

    def _wanted_reviews(self) -> set[_Review]:
        """What the console will ask about: the actions on every endpoint, on nodes, and launching."""
        wanted = {_Review("patch", "", "nodes"), _Review("create", "", "pods", "eviction")}
        wanted.update(self._reviews_for("launch", None))
        with self._lock:
            endpoints = [
                rec
                for (kind, _), store in self._stores.items()
                if kind in ("deployments", "statefulsets")
                for rec in store.values()
            ]
            wanted |= self._review_wanted
        for rec in endpoints:
            resource = "statefulsets" if rec.kind == "StatefulSet" else "deployments"
            wanted.add(_Review("patch", "apps", resource, "scale", rec.namespace))
            wanted.add(_Review("patch", "apps", resource, "", rec.namespace))
        return wanted

    def _review_loop(self) -> None:
        while not self._stop.is_set():
            self._review_wake.clear()  # before looking: a question asked meanwhile wakes the next wait
            now = time.monotonic()
            with self._lock:
                known = dict(self._reviews)
                asked = set(self._review_wanted)
            # What someone waits for first, then the rest the console will ask about.
            due = sorted(
                (
                    r
                    for r in self._wanted_reviews()
                    if r not in known or now - known[r][1] >= self._permission_refresh_s
                ),
                key=lambda r: r not in asked,
            )
            failed = False
            tried: set[_Review] = set()
            while not self._stop.is_set():
                with self._lock:  # a question asked meanwhile (a key pressed) goes before the round's rest
                    waiting = [r for r in self._review_wanted if r not in tried]
                pick = waiting or [r for r in due if r not in tried]
                if not pick:
                    break
                review = pick[0]
                tried.add(review)
                try:
                    allowed = self._review(review)
                except SourceError as exc:
                    log.debug("%s: access review %s failed: %s", self.name, review, exc)
                    failed = True
                    with self._changed:
                        self._review_error = str(exc)
                        self._changed.notify_all()
                    continue
                with self._changed:
                    self._reviews[review] = (allowed, time.monotonic())
                    self._review_wanted.discard(review)
                    self._review_error = ""
                    self._changed.notify_all()  # a permission() waiting for it
            # After a failure, try again soon: a key press may be waiting on "checking permissions…".
            self._review_wake.wait(min(self._permission_refresh_s, self._retry_max if failed else 60.0))

    def _review(self, review: _Review) -> bool:
        attributes = {"verb": review.verb, "group": review.group, "resource": review.resource}
        if review.subresource:
            attributes["subresource"] = review.subresource
        if review.namespace:
            attributes["namespace"] = review.namespace
        body = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SelfSubjectAccessReview",
            "spec": {"resourceAttributes": attributes},
        }
        answer = self._call("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", body=body)
        status = answer.get("status")
        return isinstance(status, dict) and status.get("allowed") is True

    def _reviews_when_synced(self) -> None:
        """Start the access reviews once the first lists are in (then every endpoint is asked about in one
        round), or after ``timeout`` while a big list still streams in: the rest are asked on the next
        round, or at once when someone asks."""
        deadline = time.monotonic() + self.timeout
        with self._changed:
            while len(self._synced) < len(self._scopes) and not self._stop.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(min(left, 1.0))
        self._review_loop()
