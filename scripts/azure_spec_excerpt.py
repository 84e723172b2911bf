#!/usr/bin/env python3
"""Write tests/fixtures/azure/arm-operations.json again from a checkout of Azure's API descriptions.

    git clone --filter=blob:none https://github.com/Azure/azure-rest-api-specs
    python scripts/azure_spec_excerpt.py azure-rest-api-specs

The test server (tests/azure/armserver.py) routes and checks requests by this excerpt: for each operation
the Azure provider calls, its method, path template, api-version, parameters (with common-types ``$ref``s
resolved, descriptions and examples dropped), ``x-ms-pageable``, the long-running-operation flags and its
response codes. Pick the spec versions the installed SDKs send (``api_version`` in the generated
``_configuration.py`` and the operation groups' request builders) when upgrading them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "azure" / "arm-operations.json"

COMPUTE = "specification/compute/resource-manager/Microsoft.Compute"
SPECS = {
    "virtualMachine": (
        f"{COMPUTE}/ComputeRP/stable/2024-11-01/virtualMachine.json",
        ["VirtualMachines_ListAll"],
    ),
    "virtualMachineScaleSet": (
        f"{COMPUTE}/ComputeRP/stable/2024-11-01/virtualMachineScaleSet.json",
        [
            "VirtualMachineScaleSets_ListAll",
            "VirtualMachineScaleSets_Get",
            "VirtualMachineScaleSets_Update",
            "VirtualMachineScaleSetVMs_List",
        ],
    ),
    "skus": (f"{COMPUTE}/Skus/stable/2021-07-01/skus.json", ["ResourceSkus_List"]),
    "managedClusters": (
        "specification/containerservice/resource-manager/Microsoft.ContainerService/aks/stable/2025-10-01/"
        "managedClusters.json",
        ["ManagedClusters_List", "AgentPools_List", "AgentPools_Get", "AgentPools_CreateOrUpdate"],
    ),
}
KEPT = ("name", "in", "required", "type", "format", "enum", "minLength", "maxLength", "pattern")

ABOUT = (
    "The operations of the Azure Resource Manager REST API that aios-tui's Azure provider calls, trimmed "
    "from the official API descriptions (OpenAPI 2.0) in Azure/azure-rest-api-specs: method, path template, "
    "api-version, parameters (common-types $refs resolved; descriptions and examples dropped), "
    "x-ms-pageable, the long-running-operation flags and the response codes. tests/azure/armserver.py "
    "routes and validates requests from it. The api-versions are the ones the installed SDKs send: "
    "azure-mgmt-compute 35.0 (2024-11-01; resource SKUs 2021-07-01) and azure-mgmt-containerservice 40.2 "
    "(2025-10-01). scripts/azure_spec_excerpt.py writes this file again from a checkout of the specs."
)


def _load(path: Path, cache: dict[Path, Any]) -> Any:
    if path not in cache:
        cache[path] = json.loads(path.read_text(encoding="utf-8"))
    return cache[path]


def _resolve(ref: str, base: Path, cache: dict[Path, Any]) -> tuple[dict[str, Any], Path]:
    """A ``$ref`` (``#/parameters/X`` or ``../common.json#/parameters/X``) and the file it is in."""
    file, _, pointer = ref.partition("#")
    target = (base.parent / file).resolve() if file else base
    node: Any = _load(target, cache)
    for part in pointer.strip("/").split("/"):
        node = node[part]
    return node, target


def _parameter(p: dict[str, Any], base: Path, cache: dict[Path, Any], common: set[str]) -> dict[str, Any]:
    if "$ref" in p:
        resolved, where = _resolve(p["$ref"], base, cache)
        if where != base:
            common.add(str(where))
        p = resolved
    if p["in"] == "body":
        schema = p.get("schema", {}).get("$ref", "")
        return {
            "name": p["name"],
            "in": "body",
            "required": p.get("required", False),
            "schema": schema.split("/")[-1],
        }
    return {k: p[k] for k in KEPT if k in p}


def _responses(op: dict[str, Any]) -> list[str]:
    out = []
    for code, answer in op.get("responses", {}).items():
        label = code
        if code == "default":
            label += ":" + answer.get("schema", {}).get("$ref", "").split("/")[-1]
        elif answer.get("headers"):
            label += ":" + ",".join(answer["headers"])
        out.append(label)
    return out


def excerpt(checkout: Path) -> dict[str, Any]:
    cache: dict[Path, Any] = {}
    specs: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for key, (rel, wanted) in SPECS.items():
        path = (checkout / rel).resolve()
        doc = _load(path, cache)
        commit = subprocess.run(
            ["git", "-C", str(checkout), "log", "-1", "--format=%H", "--", rel],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        common: set[str] = set()
        for template, methods in doc["paths"].items():
            for method, op in methods.items():
                if not isinstance(op, dict) or op.get("operationId") not in wanted:
                    continue
                entry: dict[str, Any] = {
                    "spec": key,
                    "method": method.upper(),
                    "path": template,
                    "parameters": [_parameter(p, path, cache, common) for p in op.get("parameters", [])],
                    "responses": _responses(op),
                }
                for flag in (
                    "x-ms-pageable",
                    "x-ms-long-running-operation",
                    "x-ms-long-running-operation-options",
                ):
                    if flag in op:
                        entry[flag] = op[flag]
                operations[op["operationId"]] = entry
        specs[key] = {
            "file": rel,
            "commit": commit,
            "version": doc["info"]["version"],
            "commonTypes": ", ".join(sorted(str(Path(c).relative_to(checkout.resolve())) for c in common)),
        }
    missing = [op for _, ops in SPECS.values() for op in ops if op not in operations]
    if missing:
        raise SystemExit(f"not in the specs: {', '.join(missing)}")
    order = [op for _, ops in SPECS.values() for op in ops]
    return {"about": ABOUT, "specs": specs, "operations": {op: operations[op] for op in order}}


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    OUT.write_text(json.dumps(excerpt(Path(argv[1])), indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
