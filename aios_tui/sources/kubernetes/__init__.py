"""Kubernetes: one cluster (one kubeconfig context) as a source, read through lists and watches.

The official ``kubernetes`` client is blocking, so everything it does runs in threads, and every call
carries an explicit ``_request_timeout`` (the client's own default is to wait forever). Reading follows
client-go's informers: each resource kind is listed once, in pages of 500 (``limit`` + ``continue``),
then watched from the list's ``resourceVersion`` with bookmarks. A watch that ends or drops resumes from
the last version seen; a ``410 Gone`` (the version was compacted away) re-lists; a failure to reconnect
backs off, doubling up to a cap, and the error is what :meth:`KubernetesSource.fetch` raises until the
watch is back, so the poller marks the source stale with its last good data.

Watches cannot tell a quiet cluster from a hung server (a partition without RST, a wedged process): each
fetch therefore asks ``/readyz`` within the timeout, and raises when it gets no answer, so the source is
stale at the next fetch rather than when the watches time out. The first list of a big cluster streams
in page by page (fetch gives what came so far, with a "still listing" problem) and has no deadline while
its pages keep coming.

Objects are converted to records when they arrive (``_k8s_convert``), so ``fetch()`` only joins records
(pods to nodes, ReplicaSets to Deployments, HPAs to endpoints) and reuses every domain object whose inputs
did not change; with nothing new since the last fetch it returns the same :class:`SourceData`.

What the API server sends is untrusted. Every read is size-bounded (:data:`MAX_PAGE_BYTES` for one answer,
:data:`MAX_EVENT_BYTES` for one watch event), checked as it streams in, never after: an answer over the
limit fails that list or watch with a sentence naming it and the limit. An object of the wrong shape is
skipped and counted (``_k8s_convert.MalformedObject``), on the first list and on watch events alike: the
source then reports "1 pod skipped: …" in :attr:`SourceData.problems` (partial, not failed) and shows the
rest, with the last good version of an object whose update was malformed. Strings are cleaned where they
are read, in ``_k8s_convert``.

Permissions come from SelfSubjectAccessReviews made in the background once the first lists are in, cached
per verb/resource/namespace and refreshed every few minutes: :meth:`KubernetesSource.permission` answers
from that cache, and until a review has answered says "checking permissions…" (on an event loop it never
waits; elsewhere it waits up to ``timeout`` for the answer). A kind the user may not list (403: the built-in
``view`` role and nodes) is said in words in ``problems`` ("cannot list nodes: forbidden (RBAC: user …
may not list nodes at cluster scope)") and the rest is shown: without nodes, the nodes the pods name, their
capacity unknown. No token is ever logged or put in an error message.

A launch is all or nothing on the cluster, not only in the plan: consoles planning at the same moment plan
the same free nodes, and pinned concurrent launches left partly bound gangs holding GPUs on a real control
plane. So a launch goes to Kueue when configured, to the cluster's own gang scheduling (PodGroups, not
pinned) where it is served, and otherwise reserves its nodes in a Lease with a compare-and-swap before its
Job exists, re-planning or queueing (a suspended Job, released when it fits) when they are taken
(docs/actions.md, "Gangs that cannot collide").

What lives where: ``client`` (kubeconfig, ``api_client_factory``, the HTTP plumbing and bounded reads),
``informer`` (the kinds and the list/watch loop, the probe), ``access`` (the SelfSubjectAccessReview
cache), ``actions`` (scale, redeploy, cordon, evict, launch and reservations), ``logs`` (a pod's log,
tailed or followed, and an object as YAML: the console's ``l`` and ``y``), ``source``
(:class:`KubernetesSource`, built from those modules' mixins, joining records into the fleet, and
:func:`sources_from_settings`). This package re-exports the names imported from it elsewhere.
"""

from aios_tui.sources.kubernetes.client import api_client_factory, kubeconfig_contexts
from aios_tui.sources.kubernetes.informer import KINDS, MAX_PAGE_BYTES, PAGE_SIZE, WATCH_SECONDS
from aios_tui.sources.kubernetes.source import KubernetesSource, sources_from_settings

__all__ = [
    "KINDS",
    "MAX_PAGE_BYTES",
    "PAGE_SIZE",
    "WATCH_SECONDS",
    "KubernetesSource",
    "api_client_factory",
    "kubeconfig_contexts",
    "sources_from_settings",
]
