"""Regenerate tests/fixtures/gcp/*.excerpt.json from Google's full discovery documents.

The GCP test server (tests/gcp/server.py) routes and validates requests, and checks the objects it serves,
with these excerpts: the methods the provider calls (and the operations it could poll), with their HTTP
method, path, parameters and request/response schema names, the API-wide (system) parameters, and every
schema those reach, stripped of descriptions. Nothing is written by hand: to follow a newer API revision,
fetch the documents and run this again.

The documents ship inside google-api-python-client's wheel:

    .venv/bin/pip download google-api-python-client --no-deps -d /tmp/gapi
    cd /tmp/gapi && unzip -o -q google_api_python_client-*.whl 'googleapiclient/discovery_cache/documents/*'
    .venv/bin/python scripts/gcp_discovery_excerpt.py /tmp/gapi/googleapiclient/discovery_cache/documents \\
        --source "google-api-python-client 2.202.0"
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

METHODS = {
    "compute.v1": (
        "compute.instances.aggregatedList",
        "compute.instanceGroupManagers.aggregatedList",
        "compute.instanceGroupManagers.resize",
        "compute.regionInstanceGroupManagers.resize",
        "compute.instanceTemplates.aggregatedList",
        "compute.autoscalers.aggregatedList",
        "compute.machineTypes.get",
        "compute.zoneOperations.get",
        "compute.regionOperations.get",
    ),
    "container.v1": (
        "container.projects.locations.clusters.list",
        "container.projects.locations.clusters.nodePools.setSize",
        "container.projects.locations.operations.get",
    ),
}
_DROP = frozenset({"description", "enumDescriptions", "enumDeprecated", "annotations", "scopes", "id"})
_NAMED = frozenset({"properties", "parameters"})


def _strip(x: Any) -> Any:
    """``x`` without descriptions and the like; the names in ``properties`` and ``parameters`` all kept."""
    if isinstance(x, dict):
        return {
            k: ({n: _strip(v) for n, v in v.items()} if k in _NAMED else _strip(v))
            for k, v in x.items()
            if k not in _DROP
        }
    if isinstance(x, list):
        return [_strip(v) for v in x]
    return x


def _methods(resources: dict[str, Any]) -> dict[str, Any]:
    """Every method of the document by its id (``compute.instances.aggregatedList``)."""
    out: dict[str, Any] = {}
    for resource in resources.values():
        for method in resource.get("methods", {}).values():
            out[method["id"]] = method
        out.update(_methods(resource.get("resources", {})))
    return out


def _refs(x: Any) -> set[str]:
    if isinstance(x, dict):
        found = {x["$ref"]} if "$ref" in x else set()
        return found.union(*(_refs(v) for v in x.values()))
    if isinstance(x, list):
        return set().union(*(_refs(v) for v in x))
    return set()


def excerpt(doc: dict[str, Any], wanted: tuple[str, ...], source: str) -> dict[str, Any]:
    every = _methods(doc["resources"])
    methods = {}
    for mid in wanted:
        m = every[mid]
        methods[mid] = {
            k: _strip(m[k])
            for k in ("httpMethod", "path", "flatPath", "parameterOrder", "parameters", "request", "response")
            if k in m
        }
    schemas: dict[str, Any] = {}
    todo = sorted(_refs(list(methods.values())))
    while todo:
        name = todo.pop()
        if name in schemas:
            continue
        schemas[name] = _strip(doc["schemas"][name])
        todo.extend(sorted(_refs(doc["schemas"][name]) - schemas.keys()))
    return {
        "source": source,
        "name": doc["name"],
        "version": doc["version"],
        "revision": doc["revision"],
        "rootUrl": doc["rootUrl"],
        "servicePath": doc["servicePath"],
        "parameters": {n: _strip(v) for n, v in doc["parameters"].items()},
        "methods": methods,
        "schemas": dict(sorted(schemas.items())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "documents", type=Path, help="the folder holding compute.v1.json and container.v1.json"
    )
    parser.add_argument("--source", default="google-api-python-client", help="where the documents came from")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent.parent / "tests/fixtures/gcp")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for api, wanted in METHODS.items():
        doc = json.loads((args.documents / f"{api}.json").read_text(encoding="utf-8"))
        out = excerpt(doc, wanted, f"{args.source}: googleapiclient/discovery_cache/documents/{api}.json")
        target = args.out / f"{api}.excerpt.json"
        target.write_text(json.dumps(out, indent=1, sort_keys=False) + "\n", encoding="utf-8")
        counts = f"{len(out['methods'])} methods, {len(out['schemas'])} schemas"
        print(f"{target}: revision {out['revision']}, {counts}")


if __name__ == "__main__":
    main()
