"""A protocol-level Azure Resource Manager on 127.0.0.1, over HTTPS with a certificate made here, with an
Entra ID (Azure AD) token endpoint beside it: what the official SDKs (azure-identity, azure-mgmt-compute,
azure-mgmt-containerservice) talk to when they are pointed at it by endpoint, nothing patched.

Requests are routed and checked against the operations of ``tests/fixtures/azure/arm-operations.json`` (an
excerpt of Azure's own API descriptions, azure-rest-api-specs): the path template, the one api-version
each operation was written for (another is ARM's 400 ``InvalidApiVersionParameter``), path parameters'
formats and patterns, query enums, a required body; a path no operation has is ARM's 404. Every ARM call
needs the bearer token the token endpoint issued. Lists come in small pages joined by ``nextLink``. The
state (VMs, scale sets and their VMs, AKS clusters and agent pools, VM sizes) is plain ARM JSON that tests
write; a scale set's capacity and an agent pool's count change it as Azure would (VMs appear or go).

Faults answer one operation with ARM's own error bodies and headers: throttling (429/503 with
``Retry-After``), an expired token (401 with ``WWW-Authenticate``), ``AuthorizationFailed`` (403),
``SubscriptionNotFound`` (404); a fault may last a number of requests or for ever. Each request is counted
per operation, with its arrival on the monotonic clock (never the wall clock), so that tests count retries.

The Entra side serves what MSAL asks for a client-secret sign-in under ``AZURE_AUTHORITY_HOST``: the
tenant's OpenID configuration (``/<tenant>/v2.0/.well-known/openid-configuration``) and its token endpoint
(``/<tenant>/oauth2/v2.0/token``, grant ``client_credentials``); ``entra_requests`` records what was asked.
"""

from __future__ import annotations

import copy
import datetime as dt
import ipaddress
import json
import re
import ssl
import threading
import time
import urllib.parse
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

SPEC_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "azure" / "arm-operations.json"

_VM = "Microsoft.Compute/virtualMachines"
_VMSS = "Microsoft.Compute/virtualMachineScaleSets"
_AKS = "Microsoft.ContainerService/managedClusters"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


# --- TLS ----------------------------------------------------------------------------------------------------


def make_tls(folder: Path) -> tuple[Path, ssl.SSLContext]:
    """A certificate authority (its PEM written to ``folder/ca.pem``, for REQUESTS_CA_BUNDLE) and a server
    certificate it signed for 127.0.0.1 and localhost. Valid 2000-2099: the wall clock a test runs at (moved
    by WALL_CLOCK_FOR_TESTS in Python only, not in OpenSSL) never matters."""
    start, end = dt.datetime(2000, 1, 1, tzinfo=dt.UTC), dt.datetime(2099, 12, 31, tzinfo=dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aios-tui test ARM CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = folder / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (folder / "server.pem").write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "server.pem")
    return ca_file, context


# --- the API description ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    id: str
    method: str
    path: str
    api_version: str
    parameters: tuple[dict[str, Any], ...]
    pattern: re.Pattern[str]
    pageable: bool

    def param(self, where: str) -> Iterator[dict[str, Any]]:
        return (p for p in self.parameters if p["in"] == where)


def load_operations(spec_file: Path = SPEC_FILE) -> list[Operation]:
    """The excerpt's operations, each with its path template as a regular expression (ARM matches paths
    without regard to case)."""
    doc = json.loads(spec_file.read_text(encoding="utf-8"))
    out = []
    for op_id, op in doc["operations"].items():
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(op["path"]))
        out.append(
            Operation(
                id=op_id,
                method=op["method"],
                path=op["path"],
                api_version=doc["specs"][op["spec"]]["version"],
                parameters=tuple(op["parameters"]),
                pattern=re.compile(f"^{regex}$", re.IGNORECASE),
                pageable="x-ms-pageable" in op,
            )
        )
    return out


# --- faults -------------------------------------------------------------------------------------------------


@dataclass
class Fault:
    """ARM's answer ``status`` with error ``code`` to an operation, ``times`` times (None: for ever)."""

    status: int
    code: str
    message: str
    headers: dict[str, str] = field(default_factory=dict)
    times: int | None = None
    used: int = 0
    subscription: str = ""
    """Only in this subscription ("" for all)."""


def throttled(status: int = 429, retry_after: int = 1, times: int | None = None) -> Fault:
    """ARM's subscription-level read throttling (429), or a resource provider that is busy (503)."""
    if status == 429:
        return Fault(
            429,
            "SubscriptionRequestsThrottled",
            "Number of 'read' requests for subscription actor exceeded. Please try again after "
            f"'{retry_after}' seconds after additional '10' requests.",
            {"Retry-After": str(retry_after)},
            times,
        )
    return Fault(
        503,
        "ServiceUnavailable",
        "The service is currently unavailable. Please try again later.",
        {"Retry-After": str(retry_after)},
        times,
    )


def expired(authority: str, tenant: str) -> Fault:
    """What ARM answers a bearer token past its expiry."""
    when = (
        "The access token expiry UTC time '6/1/2026 8:00:00 AM' is earlier than current UTC time "
        "'6/1/2026 9:00:00 AM'."
    )
    challenge = (
        f'Bearer authorization_uri="{authority}/{tenant}", error="invalid_token", error_description="{when}"'
    )
    return Fault(401, "ExpiredAuthenticationToken", when, {"WWW-Authenticate": challenge})


def denied(action: str, scope: str, object_id: str = "5f1c7d2e-0000-4000-8000-00000000c0de") -> Fault:
    """ARM's 403 for a role assignment that lacks ``action`` over ``scope``."""
    return Fault(
        403,
        "AuthorizationFailed",
        f"The client '{object_id}' with object id '{object_id}' does not have authorization to perform "
        f"action '{action}' over scope '{scope}' or the scope is invalid. If access was recently granted, "
        "please refresh your credentials.",
    )


# --- the state ----------------------------------------------------------------------------------------------


@dataclass
class Subscription:
    vms: list[dict[str, Any]] = field(default_factory=list)
    scale_sets: list[dict[str, Any]] = field(default_factory=list)
    scale_set_vms: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Lower-case scale set ID → its VMs."""
    clusters: list[dict[str, Any]] = field(default_factory=list)
    agent_pools: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Lower-case cluster ID → its agent pools."""


@dataclass
class Request:
    operation: str
    method: str
    path: str
    query: dict[str, str]
    body: Any
    at: float
    """time.monotonic() at arrival."""


class ArmServer:
    """The server; ``url`` is its base (ARM's endpoint and the Entra authority host, both)."""

    def __init__(
        self,
        folder: Path,
        *,
        tenant: str,
        client_id: str,
        client_secret: str,
        token: str,
        page_size: int = 2,
    ) -> None:
        self.ca_file, context = make_tls(folder)
        self.operations = load_operations()
        self.tenant, self.client_id, self.client_secret = tenant, client_id, client_secret
        self.token = token
        self.page_size = page_size
        self.subscriptions: dict[str, Subscription] = {}
        self.skus: list[dict[str, Any]] = []
        self.faults: dict[str, Fault] = {}
        self.calls: Counter[str] = Counter()
        self.requests: list[Request] = []
        self.entra_requests: list[tuple[str, str]] = []
        """(method, path) of every request to the Entra side, secrets left out."""
        self.tokens_issued = 0
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the client's delayed ACK holds the second
            # for ~40 ms on every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                status, headers, body = server.answer(self.command, self.path, dict(self.headers), raw)
                out = json.dumps(body).encode() if body is not None else b""
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                if body is not None:
                    self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True, name="arm-server")

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> ArmServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def sub(self, subscription: str) -> Subscription:
        return self.subscriptions.setdefault(subscription.lower(), Subscription())

    def arrivals(self, operation: str) -> list[float]:
        return [r.at for r in self.requests if r.operation == operation]

    # --- dispatch -------------------------------------------------------------------------------------------

    def answer(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], Any]:
        url = urllib.parse.urlsplit(target)
        query = dict(urllib.parse.parse_qsl(url.query, keep_blank_values=True))
        if url.path.startswith(f"/{self.tenant}/"):
            with self.lock:
                self.entra_requests.append((method, url.path))
            return self._entra(method, url.path, raw)
        found = [(op, m) for op in self.operations if (m := op.pattern.match(url.path))]
        ops = [(op, m) for op, m in found if op.method == method]
        if not ops:
            if found:
                return _error(405, "MethodNotAllowed", f"The requested method '{method}' is not allowed.")
            return _error(
                404, "InvalidResourceType", f"No operation of the API excerpt has the path '{url.path}'."
            )
        op, match = ops[0]
        body = json.loads(raw) if raw else None
        with self.lock:
            self.calls[op.id] += 1
            self.requests.append(Request(op.id, method, url.path, query, body, time.monotonic()))
        auth = headers.get("Authorization") or headers.get("authorization") or ""
        if auth != f"Bearer {self.token}" or self.tokens_issued == 0:
            return self._unauthorized(auth)
        checked = self._check(op, dict(match.groupdict()), query, body)
        if checked is not None:
            return checked
        with self.lock:
            fault = self.faults.get(op.id)
            here = fault is not None and fault.subscription.lower() in url.path.lower()
            if fault is not None and here and (fault.times is None or fault.used < fault.times):
                fault.used += 1
                status, _, err = _error(fault.status, fault.code, fault.message)
                return status, dict(fault.headers), err
        sub_id = match.group("subscriptionId").lower()
        if sub_id not in self.subscriptions:
            return _error(404, "SubscriptionNotFound", f"The subscription '{sub_id}' could not be found.")
        handler = getattr(self, f"_op_{op.id}")
        with self.lock:
            result: tuple[int, dict[str, str], Any] = handler(
                self.subscriptions[sub_id], match, query, body, url
            )
        return result

    def _check(
        self, op: Operation, path: dict[str, str], query: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any] | None:
        """ARM's answers to a request the operation's description refuses."""
        version = query.get("api-version")
        if not version:
            return _error(
                400,
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if version != op.api_version:
            return _error(
                400,
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{op.api_version}'.",
            )
        for p in op.param("path"):
            value = urllib.parse.unquote(path.get(p["name"], ""))
            if p.get("format") == "uuid" and not _UUID.match(value):
                return _error(
                    400,
                    "InvalidSubscriptionId",
                    f"The provided subscription identifier '{value}' is malformed or invalid.",
                )
            too_long = "maxLength" in p and len(value) > p["maxLength"]
            if (
                too_long
                or len(value) < p.get("minLength", 1)
                or ("pattern" in p and not re.search(p["pattern"], value))
            ):
                return _error(400, "InvalidParameter", f"The value of parameter '{p['name']}' is invalid.")
        for p in op.param("query"):
            if p.get("required") and p["name"] not in query:
                return _error(400, "MissingParameter", f"The parameter '{p['name']}' is required.")
            if "enum" in p and p["name"] in query and query[p["name"]] not in p["enum"]:
                return _error(
                    400,
                    "InvalidParameter",
                    f"The value '{query[p['name']]}' of parameter '{p['name']}' is invalid.",
                )
        for p in op.param("body"):
            if p.get("required") and not isinstance(body, dict):
                return _error(
                    400,
                    "InvalidRequestContent",
                    "The request content was invalid and could not be deserialized.",
                )
        return None

    def _unauthorized(self, auth: str) -> tuple[int, dict[str, str], Any]:
        challenge = f'Bearer authorization_uri="{self.url}/{self.tenant}", error="invalid_token"'
        if not auth:
            status, _, body = _error(
                401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing."
            )
        else:
            status, _, body = _error(401, "InvalidAuthenticationToken", "The access token is invalid.")
        return status, {"WWW-Authenticate": challenge}, body

    def _page(
        self, items: list[dict[str, Any]], url: urllib.parse.SplitResult, query: dict[str, str]
    ) -> dict[str, Any]:
        """One page of ``items`` and, when more follow, ``nextLink``: the same URL with ``$skiptoken``."""
        skip = int(query.get("$skiptoken", "0"))
        page: dict[str, Any] = {"value": copy.deepcopy(items[skip : skip + self.page_size])}
        if skip + self.page_size < len(items):
            nxt = dict(query, **{"$skiptoken": str(skip + self.page_size)})
            page["nextLink"] = f"{self.url}{url.path}?{urllib.parse.urlencode(nxt)}"
        return page

    # --- Entra ID -------------------------------------------------------------------------------------------

    def _entra(self, method: str, path: str, raw: bytes) -> tuple[int, dict[str, str], Any]:
        base = f"{self.url}/{self.tenant}"
        if method == "GET" and path == f"/{self.tenant}/v2.0/.well-known/openid-configuration":
            return (
                200,
                {},
                {
                    "token_endpoint": f"{base}/oauth2/v2.0/token",
                    "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                    "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                    "issuer": f"{base}/v2.0",
                    "jwks_uri": f"{base}/discovery/v2.0/keys",
                    "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt"],
                    "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                    "tenant_region_scope": "NA",
                },
            )
        if method == "POST" and path == f"/{self.tenant}/oauth2/v2.0/token":
            form = dict(urllib.parse.parse_qsl(raw.decode()))
            if form.get("grant_type") != "client_credentials":
                return 400, {}, {"error": "unsupported_grant_type", "error_description": "AADSTS70003"}
            if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
                return (
                    401,
                    {},
                    {
                        "error": "invalid_client",
                        "error_description": "AADSTS7000215: Invalid client secret provided. Ensure the "
                        "secret being sent in the request is the client secret value, not its ID.",
                        "error_codes": [7000215],
                    },
                )
            if form.get("scope") != f"{self.url}/.default":
                return (
                    400,
                    {},
                    {"error": "invalid_scope", "error_description": "AADSTS70011: The scope is not valid."},
                )
            with self.lock:
                self.tokens_issued += 1
            return (
                200,
                {},
                {
                    "token_type": "Bearer",
                    "expires_in": 3599,
                    "ext_expires_in": 3599,
                    "access_token": self.token,
                },
            )
        return 404, {}, {"error": "not_found", "error_description": f"no such Entra endpoint: {path}"}

    # --- operations -----------------------------------------------------------------------------------------

    def _op_VirtualMachines_ListAll(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        if query.get("statusOnly", "").lower() == "true":
            # Status only: the instance view, not the rest of the model (the provider joins the two lists).
            items = [
                {
                    "id": v["id"],
                    "name": v["name"],
                    "type": "Microsoft.Compute/virtualMachines",
                    "location": v["location"],
                    "properties": {"instanceView": v["properties"].get("instanceView", {"statuses": []})},
                }
                for v in sub.vms
            ]
        else:
            items = [_without(v, "instanceView") for v in sub.vms]
        return 200, {}, self._page(items, url, query)

    def _op_VirtualMachineScaleSets_ListAll(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        return 200, {}, self._page(sub.scale_sets, url, query)

    def _op_VirtualMachineScaleSets_Get(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        found = self._scale_set(sub, m)
        if found is None:
            return _not_found(
                "Microsoft.Compute/virtualMachineScaleSets",
                m.group("vmScaleSetName"),
                m.group("resourceGroupName"),
            )
        return 200, {}, copy.deepcopy(found)

    def _op_VirtualMachineScaleSets_Update(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        found = self._scale_set(sub, m)
        if found is None:
            return _not_found(
                "Microsoft.Compute/virtualMachineScaleSets",
                m.group("vmScaleSetName"),
                m.group("resourceGroupName"),
            )
        sku = body.get("sku") or {}
        if "name" in sku and sku["name"] != found["sku"]["name"]:
            return _error(
                409,
                "OperationNotAllowed",
                "Changing the size of a scale set is not what this test server does.",
            )
        if "capacity" in sku:
            found["sku"]["capacity"] = int(sku["capacity"])
            self.resize_scale_set(sub, found["id"], int(sku["capacity"]))
        answer = copy.deepcopy(found)
        answer["properties"]["provisioningState"] = "Updating"
        return 200, {"Azure-AsyncOperation": f"{self.url}/operations/{len(self.requests)}"}, answer

    def _op_VirtualMachineScaleSetVMs_List(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        rid = _scale_set_id(
            m.group("subscriptionId"), m.group("resourceGroupName"), m.group("virtualMachineScaleSetName")
        )
        vms = sub.scale_set_vms.get(rid.lower())
        if vms is None:
            return _not_found(
                "Microsoft.Compute/virtualMachineScaleSets",
                m.group("virtualMachineScaleSetName"),
                m.group("resourceGroupName"),
            )
        expand = query.get("$expand") == "instanceView"
        items = [v if expand else _without(v, "instanceView") for v in vms]
        return 200, {}, self._page(items, url, query)

    def _op_ResourceSkus_List(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        wanted = re.fullmatch(r"location eq '([^']+)'", query.get("$filter", ""))
        items = [s for s in self.skus if wanted is None or wanted.group(1) in s.get("locations", [])]
        return 200, {}, self._page(items, url, query)

    def _op_ManagedClusters_List(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        return 200, {}, self._page(sub.clusters, url, query)

    def _op_AgentPools_List(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        pools = sub.agent_pools.get(self._cluster_id(m).lower())
        if pools is None:
            return _not_found(
                "Microsoft.ContainerService/managedClusters",
                m.group("resourceName"),
                m.group("resourceGroupName"),
            )
        return 200, {}, self._page(pools, url, query)

    def _op_AgentPools_Get(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        pool = self._agent_pool(sub, m)
        if pool is None:
            return _not_found(
                "Microsoft.ContainerService/managedClusters/agentPools",
                m.group("agentPoolName"),
                m.group("resourceGroupName"),
            )
        return 200, {}, copy.deepcopy(pool)

    def _op_AgentPools_CreateOrUpdate(
        self, sub: Subscription, m: Any, query: dict[str, str], body: Any, url: Any
    ) -> Any:
        pool = self._agent_pool(sub, m)
        if pool is None:
            return _error(400, "InvalidParameter", "Creating agent pools is not what this test server does.")
        props = body.get("properties") or {}
        if props.get("vmSize") not in (None, pool["properties"]["vmSize"]):
            return _error(400, "InvalidParameter", "Changing property 'vmSize' is not allowed.")
        count = int(props.get("count", pool["properties"]["count"]))
        pool["properties"]["count"] = count
        cluster = next(c for c in sub.clusters if c["id"].lower() == self._cluster_id(m).lower())
        backing = _scale_set_id(
            m.group("subscriptionId"),
            cluster["properties"]["nodeResourceGroup"],
            f"aks-{pool['name']}-12345678-vmss",
        )
        for s in sub.scale_sets:
            if s["id"].lower() == backing.lower():
                s["sku"]["capacity"] = count
                self.resize_scale_set(sub, s["id"], count)
        answer = copy.deepcopy(pool)
        answer["properties"]["provisioningState"] = "Scaling"
        return (
            200,
            {"Azure-AsyncOperation": f"{self.url}/operations/{len(self.requests)}", "Retry-After": "1"},
            answer,
        )

    # --- helpers --------------------------------------------------------------------------------------------

    def _scale_set(self, sub: Subscription, m: Any) -> dict[str, Any] | None:
        rid = _scale_set_id(
            m.group("subscriptionId"), m.group("resourceGroupName"), m.group("vmScaleSetName")
        )
        return next((s for s in sub.scale_sets if s["id"].lower() == rid.lower()), None)

    def _cluster_id(self, m: Any) -> str:
        return (
            f"/subscriptions/{m.group('subscriptionId')}/resourceGroups/{m.group('resourceGroupName')}"
            f"/providers/Microsoft.ContainerService/managedClusters/{m.group('resourceName')}"
        )

    def _agent_pool(self, sub: Subscription, m: Any) -> dict[str, Any] | None:
        pools = sub.agent_pools.get(self._cluster_id(m).lower(), [])
        return next((p for p in pools if p["name"] == m.group("agentPoolName")), None)

    def resize_scale_set(self, sub: Subscription, rid: str, capacity: int) -> None:
        """Azure's work after a capacity change: VMs created (running) or deleted (the highest first)."""
        vms = sub.scale_set_vms.setdefault(rid.lower(), [])
        scale_set = next(s for s in sub.scale_sets if s["id"].lower() == rid.lower())
        while len(vms) > capacity:
            vms.pop()
        while len(vms) < capacity:
            n = max((int(v["instanceId"]) for v in vms), default=-1) + 1
            vms.append(scale_set_vm(scale_set, n))


# --- ARM JSON -----------------------------------------------------------------------------------------------


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], Any]:
    return status, {}, {"error": {"code": code, "message": message}}


def _not_found(kind: str, name: str, group: str) -> tuple[int, dict[str, str], Any]:
    return _error(
        404, "ResourceNotFound", f"The Resource '{kind}/{name}' under resource group '{group}' was not found."
    )


def _without(obj: dict[str, Any], prop: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    out.get("properties", {}).pop(prop, None)
    return out


def _scale_set_id(sub: str, group: str, name: str) -> str:
    return f"/subscriptions/{sub}/resourceGroups/{group}/providers/{_VMSS}/{name}"


def power(state: str) -> dict[str, Any]:
    """An instance view with ``PowerState/<state>``."""
    return {
        "statuses": [
            {
                "code": "ProvisioningState/succeeded",
                "level": "Info",
                "displayStatus": "Provisioning succeeded",
            },
            {"code": f"PowerState/{state}", "level": "Info", "displayStatus": f"VM {state}"},
        ]
    }


def vm(
    sub: str,
    group: str,
    name: str,
    size: str,
    *,
    location: str = "eastus",
    zone: str = "",
    state: str = "running",
    priority: str = "Regular",
    tags: dict[str, str] | None = None,
    created: str = "2026-05-01T08:00:00.0000000+00:00",
    scale_set: str = "",
) -> dict[str, Any]:
    """A VM as ``virtualMachines`` lists it (its instance view held for the status-only list)."""
    props: dict[str, Any] = {
        "vmId": f"00000000-0000-4000-8000-{zlib.crc32(f'{sub}/{group}/{name}'.encode()):012d}",
        "hardwareProfile": {"vmSize": size},
        "osProfile": {"computerName": name, "adminUsername": "azureuser"},
        "provisioningState": "Succeeded",
        "priority": priority,
        "timeCreated": created,
        "instanceView": power(state),
    }
    if priority == "Spot":
        props["evictionPolicy"] = "Deallocate"
        props["billingProfile"] = {"maxPrice": -1}
    if scale_set:
        props["virtualMachineScaleSet"] = {"id": scale_set}
    out: dict[str, Any] = {
        "id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/{_VM}/{name}",
        "name": name,
        "type": "Microsoft.Compute/virtualMachines",
        "location": location,
        "tags": tags or {},
        "properties": props,
    }
    if zone:
        out["zones"] = [zone]
    return out


def scale_set(
    sub: str,
    group: str,
    name: str,
    size: str,
    capacity: int,
    *,
    location: str = "eastus",
    zones: tuple[str, ...] = (),
    priority: str = "Regular",
    tags: dict[str, str] | None = None,
    computer_prefix: str = "",
    single_placement_group: bool = True,
    orchestration: str = "Uniform",
) -> dict[str, Any]:
    """A scale set as ``virtualMachineScaleSets`` lists it."""
    out: dict[str, Any] = {
        "id": _scale_set_id(sub, group, name),
        "name": name,
        "type": "Microsoft.Compute/virtualMachineScaleSets",
        "location": location,
        "tags": tags or {},
        "sku": {"name": size, "tier": "Standard", "capacity": capacity},
        "properties": {
            "singlePlacementGroup": single_placement_group,
            "orchestrationMode": orchestration,
            "upgradePolicy": {"mode": "Manual"},
            "provisioningState": "Succeeded",
            "overprovision": False,
            "uniqueId": "d1c3f2a4-0000-4000-8000-000000000000",
            "timeCreated": "2026-04-01T08:00:00.0000000+00:00",
            "virtualMachineProfile": {
                "priority": priority,
                "osProfile": {"computerNamePrefix": computer_prefix or name, "adminUsername": "azureuser"},
            },
        },
    }
    if zones:
        out["zones"] = list(zones)
    return out


def scale_set_vm(s: dict[str, Any], n: int, state: str = "running") -> dict[str, Any]:
    """VM ``n`` of scale set ``s``, with its instance view, computer name ``<prefix><n in 6 base-36 digits>``
    as Azure names them (``aks-gpu-12345678-vmss000000``)."""
    prefix = s["properties"]["virtualMachineProfile"]["osProfile"]["computerNamePrefix"]
    zones = s.get("zones") or []
    out: dict[str, Any] = {
        "id": f"{s['id']}/virtualMachines/{n}",
        "name": f"{s['name']}_{n}",
        "type": "Microsoft.Compute/virtualMachineScaleSets/virtualMachines",
        "location": s["location"],
        "instanceId": str(n),
        "sku": {"name": s["sku"]["name"], "tier": "Standard"},
        "properties": {
            "latestModelApplied": True,
            "vmId": f"00000000-0000-4000-9000-{n:012d}",
            "hardwareProfile": {},
            "osProfile": {"computerName": f"{prefix}{_base36(n, 6)}"},
            "provisioningState": "Succeeded",
            "timeCreated": "2026-05-02T10:00:00.0000000+00:00",
            "instanceView": power(state),
        },
    }
    if zones:
        out["zones"] = [zones[n % len(zones)]]
    return out


def _base36(n: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out.rjust(width, "0")


def cluster(sub: str, group: str, name: str, *, location: str = "eastus") -> dict[str, Any]:
    """An AKS managed cluster as ``managedClusters`` lists it (its node resource group as AKS names it)."""
    return {
        "id": f"/subscriptions/{sub}/resourceGroups/{group}/providers/{_AKS}/{name}",
        "name": name,
        "type": "Microsoft.ContainerService/ManagedClusters",
        "location": location,
        "properties": {
            "provisioningState": "Succeeded",
            "powerState": {"code": "Running"},
            "kubernetesVersion": "1.33.2",
            "dnsPrefix": name,
            "nodeResourceGroup": f"MC_{group}_{name}_{location}",
        },
    }


def agent_pool(
    c: dict[str, Any],
    name: str,
    size: str,
    count: int,
    *,
    autoscale: tuple[int, int] | None = None,
    zones: tuple[str, ...] = (),
    spot: bool = False,
    mode: str = "User",
) -> dict[str, Any]:
    """An agent pool of cluster ``c`` as ``agentPools`` lists it."""
    props: dict[str, Any] = {
        "count": count,
        "vmSize": size,
        "osType": "Linux",
        "type": "VirtualMachineScaleSets",
        "mode": mode,
        "provisioningState": "Succeeded",
        "powerState": {"code": "Running"},
        "orchestratorVersion": "1.33.2",
        "enableAutoScaling": autoscale is not None,
        "scaleSetPriority": "Spot" if spot else "Regular",
    }
    if autoscale is not None:
        props["minCount"], props["maxCount"] = autoscale
    if spot:
        props["scaleSetEvictionPolicy"] = "Delete"
        props["spotMaxPrice"] = -1
    if zones:
        props["availabilityZones"] = list(zones)
    return {
        "id": f"{c['id']}/agentPools/{name}",
        "name": name,
        "type": "Microsoft.ContainerService/managedClusters/agentPools",
        "properties": props,
    }


def sku(name: str, gpus: int, locations: tuple[str, ...] = ("eastus",)) -> dict[str, Any]:
    """A VM size as ``Microsoft.Compute/skus`` lists it."""
    return {
        "resourceType": "virtualMachines",
        "name": name,
        "tier": "Standard",
        "size": name.removeprefix("Standard_"),
        "family": "standardNDFamily",
        "locations": list(locations),
        "locationInfo": [{"location": loc, "zones": ["1", "2", "3"]} for loc in locations],
        "capabilities": [{"name": "vCPUs", "value": "128"}, {"name": "GPUs", "value": str(gpus)}],
        "restrictions": [],
    }
