"""An object as YAML, the way ``kubectl get -o yaml`` shows it, made safe for a terminal.

Shared by the Kubernetes source (the object the API server holds) and the embedded fleet (an object shaped
like it), so that ``y`` reads the same from either. ``metadata.managedFields`` is left out: it is the
server's bookkeeping of who set which field, often longer than the object, and what kubectl hides too
(``--show-managed-fields`` is off by default). Every line passes :func:`~aios_tui.domain.text.clean_lines`:
a label, an annotation or an env var is written by a tenant, and PyYAML writes most Unicode as it is
(bidi overrides and zero-width characters included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from aios_tui.domain.text import clean_lines

__all__ = ["MAX_YAML_CHARS", "object_yaml"]

MAX_YAML_CHARS: Final = 2**20
"""The most characters of one object's YAML kept (and the most of any one line): a 1 MiB node or pod is
already far past what anyone reads in a terminal; etcd stores at most 1.5 MiB of one object by default."""


def object_yaml(obj: Mapping[str, Any], limit: int = MAX_YAML_CHARS) -> str:
    """``obj`` (decoded JSON) as YAML in its own key order, managedFields left out, cleaned and bounded."""
    import yaml  # type: ignore[import-untyped]  # here: 10 ms of every start, for a key pressed now and then

    body = dict(obj)
    meta = body.get("metadata")
    if isinstance(meta, Mapping) and "managedFields" in meta:
        body["metadata"] = {k: v for k, v in meta.items() if k != "managedFields"}
    text = yaml.safe_dump(body, sort_keys=False, allow_unicode=True, default_flow_style=False, width=100)
    return clean_lines(str(text).rstrip("\n"), limit)
