"""A Google Cloud test server on 127.0.0.1 that speaks the real REST protocol of Compute Engine v1 and GKE v1,
for the official SDKs pointed at it by ``api_endpoint``, plus an OAuth 2.0 / STS token endpoint.

Built from Google's discovery documents, not by hand: the excerpts in ``tests/fixtures/gcp/`` (made by
``scripts/gcp_discovery_excerpt.py``) give each method's HTTP method, path template, parameters and schemas.
From them the server routes a request (an unknown path or verb is 404), checks its query (an unknown or
ill-typed parameter is 400, in the words Google's front end uses), its body against the request schema, and
checks every object it sends against the response schema (an unknown field, an int64 sent as a number, an
enum value Google does not have: the test fails), so that the scene is the wire format Google sends.
Errors have Google's JSON shape: ``{"error": {"code", "message", "status", "errors": [...], "details"}}``.

What the discovery documents do not say, and this server does as Google does:

- ``$alt`` is accepted like ``alt`` (the GKE client sends ``$alt=json;enum-encoding=int``); answers give
  enums by name, which the SDK reads as well as numbers.
- ``aggregatedList`` pages: at most ``page_size`` items a page (2 by default, so that listings cross pages),
  ``nextPageToken`` until the last; a scope with nothing on a page may be listed with Compute Engine's
  ``NO_RESULTS_ON_PAGE`` warning.
- Every API call needs ``Authorization: Bearer``: a token this server's token endpoint issued, or a
  self-signed JWT (what the SDK makes of a service account key) whose RS256 signature verifies with that
  account's registered public key and whose ``scope`` claim holds cloud-platform; else 401.
- A resize with a ``requestId`` seen before is not applied again (Compute Engine's idempotency).
"""

from __future__ import annotations

import base64
import http.server
import json
import re
import threading
import urllib.parse
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

JSON = dict[str, Any]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "gcp"
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
COMPUTE = "https://www.googleapis.com/compute/v1/"
"""The base of Compute Engine's selfLinks, as Google writes them."""

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
}
_REASON = {400: "invalid", 401: "authError", 403: "forbidden", 404: "notFound", 429: "rateLimitExceeded"}
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "uint32": (0, 2**32 - 1)}


def google_error(code: int, message: str, *, reason: str = "", details: list[JSON] | None = None) -> JSON:
    """Google's JSON error body."""
    error: JSON = {
        "code": code,
        "message": message,
        "status": _STATUS.get(code, "UNKNOWN"),
        "errors": [{"message": message, "domain": "global", "reason": reason or _REASON.get(code, "error")}],
    }
    if details:
        error["details"] = details
    return {"error": error}


class ApiError(Exception):
    def __init__(
        self, code: int, message: str, *, reason: str = "", details: list[JSON] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.body = code, google_error(code, message, reason=reason, details=details)
        self.headers: dict[str, str] = {}


# --- the discovery excerpts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    method_id: str
    verb: str
    pattern: re.Pattern[str]
    spec: JSON


class Api:
    """One API as its discovery excerpt describes it: routing, query and schema checks."""

    def __init__(self, name: str) -> None:
        self.doc: JSON = json.loads((FIXTURES / f"{name}.excerpt.json").read_text(encoding="utf-8"))
        self.revision = str(self.doc["revision"])
        base = "/" + self.doc["servicePath"]
        self.routes = [
            Route(mid, m["httpMethod"], re.compile("^" + _template(base + m["path"]) + "$"), m)
            for mid, m in self.doc["methods"].items()
        ]

    def route(self, verb: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """The method a request is for and its path parameters (each checked against its pattern)."""
        for r in self.routes:
            found = r.pattern.match(path)
            if not found or r.verb != verb:
                continue
            values = {k: urllib.parse.unquote(v) for k, v in found.groupdict().items()}
            params = r.spec["parameters"]
            if all(re.match(params[k].get("pattern", ".*"), v) for k, v in values.items()):
                return r, values
        return None

    def check_query(self, route: Route, query: dict[str, list[str]]) -> dict[str, str]:
        """The query's parameters, checked as Google checks them (raises ApiError 400)."""
        params = {k: v for k, v in route.spec["parameters"].items() if v["location"] == "query"}
        system = {**self.doc["parameters"], "$alt": {"type": "string", "location": "query"}}
        out = {}
        for key, values in query.items():
            spec = params.get(key) or system.get(key)
            if spec is None:
                raise ApiError(
                    400,
                    f'Invalid JSON payload received. Unknown name "{key}": Cannot bind query parameter. '
                    f"Field '{key}' could not be found in request message.",
                    reason="badRequest",
                )
            value = values[-1]
            if not _fits(spec, value):
                kind = f"TYPE_{spec.get('format', spec['type']).upper()}"
                raise ApiError(
                    400, f"Invalid value at '{_snake(key)}' ({kind}), \"{value}\"", reason="invalid"
                )
            out[key] = value
        for key, spec in params.items():
            if spec.get("required") and key not in out:
                raise ApiError(400, f"Required parameter '{key}' is missing.", reason="required")
        return out

    def check(self, schema: str, value: Any, where: str = "") -> list[str]:
        """What in ``value`` the schema does not allow (empty when it fits)."""
        return _check(self.doc["schemas"], {"$ref": schema}, value, where or schema)


def _template(path: str) -> str:
    """A discovery path template as a regular expression: ``{+name}`` spans slashes, ``{name}`` does not."""
    out, at = [], 0
    for m in re.finditer(r"\{(\+?)([^}]+)\}", path):
        out.append(re.escape(path[at : m.start()]))
        out.append(f"(?P<{m.group(2)}>{'.+' if m.group(1) else '[^/]+'})")
        at = m.end()
    out.append(re.escape(path[at:]))
    return "".join(out)


def _fits(spec: JSON, value: str) -> bool:
    if spec.get("enum") and value not in spec["enum"]:
        return False
    kind, fmt = spec["type"], spec.get("format", "")
    if kind == "integer":
        if not re.fullmatch(r"-?\d+", value):
            return False
        low, high = _INT_RANGES.get(fmt, (-(2**63), 2**64))
        return low <= int(value) <= high
    if kind == "boolean":
        return value in ("true", "false")
    if fmt in ("int64", "uint64"):
        return re.fullmatch(r"-?\d+", value) is not None
    return True


def _check(schemas: JSON, spec: JSON, value: Any, where: str) -> list[str]:
    if "$ref" in spec:
        spec = schemas[spec["$ref"]]
    kind, fmt = spec.get("type"), spec.get("format", "")
    if kind == "object":
        if not isinstance(value, dict):
            return [f"{where}: an object expected, not {value!r:.40}"]
        out = []
        props, extra = spec.get("properties", {}), spec.get("additionalProperties")
        for k, v in value.items():
            sub = props.get(k) or extra
            if sub is None:
                out.append(f"{where}.{k}: no such field")
            else:
                out.extend(_check(schemas, sub, v, f"{where}.{k}"))
        return out
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: a list expected"]
        return [p for i, v in enumerate(value) for p in _check(schemas, spec["items"], v, f"{where}[{i}]")]
    if kind == "string":
        if not isinstance(value, str):
            return [f"{where}: a string expected (format {fmt or 'none'}), not {value!r:.40}"]
        if fmt in ("int64", "uint64") and not re.fullmatch(r"-?\d+", value):
            return [f"{where}: an {fmt} string expected"]
        if spec.get("enum") and value not in spec["enum"]:
            return [f"{where}: {value!r} is none of {spec['enum']}"]
        return []
    if kind == "integer":
        return (
            []
            if isinstance(value, int) and not isinstance(value, bool)
            else [f"{where}: an integer expected"]
        )
    if kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{where}: a number expected"]
    if kind == "boolean":
        return [] if isinstance(value, bool) else [f"{where}: a boolean expected"]
    return []  # "any"


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower()


# --- the cloud it serves -----------------------------------------------------------------------------------


@dataclass
class Project:
    """One project's resources, as Compute Engine and GKE send them (camelCase JSON)."""

    id: str
    number: str
    instances: list[JSON] = field(default_factory=list)
    migs: list[JSON] = field(default_factory=list)
    templates: list[JSON] = field(default_factory=list)
    autoscalers: list[JSON] = field(default_factory=list)
    clusters: list[JSON] = field(default_factory=list)
    machine_types: dict[str, JSON] = field(default_factory=dict)


@dataclass
class Fault:
    """An error answered to one method instead of its result: ``times`` times (None: every time), for one
    project or all, with ``Retry-After`` when set."""

    status: int
    message: str = ""
    reason: str = ""
    details: list[JSON] | None = None
    times: int | None = None
    project: str | None = None
    retry_after: str | None = None


_AGGREGATED = {
    "compute.instances.aggregatedList": ("instances", "instances", "compute#instanceAggregatedList"),
    "compute.instanceGroupManagers.aggregatedList": (
        "migs",
        "instanceGroupManagers",
        "compute#instanceGroupManagerAggregatedList",
    ),
    "compute.instanceTemplates.aggregatedList": (
        "templates",
        "instanceTemplates",
        "compute#instanceTemplateAggregatedList",
    ),
    "compute.autoscalers.aggregatedList": ("autoscalers", "autoscalers", "compute#autoscalerAggregatedList"),
}
_RESPONSE = {"compute": "compute.v1", "container": "container.v1"}


def scope_of(obj: JSON) -> str:
    """An object's aggregatedList scope: ``zones/<zone>``, ``regions/<region>`` or ``global``."""
    for key in ("zone", "region"):
        if obj.get(key):
            return f"{key}s/{obj[key].rsplit('/', 1)[-1]}"
    return "global"


class GoogleCloud:
    """The server: ``projects`` (by ID) hold the scene; ``faults`` (by method id, or ``token``) inject
    errors; ``rewrites`` (by method id) change an answer after its schema check (an object Google would
    never send); ``seen`` counts requests by method id (``token`` for the token endpoint)."""

    def __init__(self) -> None:
        self.apis = {"compute": Api("compute.v1"), "container": Api("container.v1")}
        self.lock = threading.Lock()
        self.page_size = 2
        self.reset()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: with Nagle on, the client's delayed ACK holds the second
            # for ~40 ms on every answer.
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, out = server.answer(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True, name="gcp-server")

    def reset(self) -> None:
        """A new, empty cloud: no projects, faults, tokens or counts (keys stay registered)."""
        with self.lock:
            self.projects: dict[str, Project] = {}
            self.faults: dict[str, list[Fault]] = {}
            self.seen: Counter[str] = Counter()
            self.requests: list[tuple[str, str, dict[str, str], JSON | None]] = []
            self.issued: set[str] = set()
            self.bearers: set[str] = set()
            self.reject_tokens = False
            self.schema_errors: list[str] = []
            self.rewrites: dict[str, Callable[[JSON], JSON]] = {}
            self.operations: dict[str, JSON] = {}
            self.request_ids: dict[str, JSON] = {}
            self.keys: dict[str, rsa.RSAPublicKey] = getattr(self, "keys", {})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._http.server_address[1]}"

    def start(self) -> GoogleCloud:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    def fault(self, method_id: str, f: Fault) -> None:
        self.faults.setdefault(method_id, []).append(f)

    def project(self, pid: str) -> Project:
        return self.projects[pid]

    # --- dispatch --------------------------------------------------------------------------------------

    def answer(
        self, verb: str, target: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, dict[str, str], bytes]:
        split = urllib.parse.urlsplit(target)
        query = urllib.parse.parse_qs(split.query, keep_blank_values=True)
        try:
            if split.path in ("/token", "/v1/token"):
                return self._token(body)
            api, route, params = self._route(verb, split.path)
            with self.lock:
                self.seen[route.method_id] += 1
            self._authorize(headers)
            values = {**params, **self.apis[api].check_query(route, query)}
            sent = self._body(api, route, body)
            with self.lock:
                self.requests.append((route.method_id, split.path, values, sent))
            self._faults(route.method_id, values)
            result = self._call(route.method_id, values, sent)
            problems = self.apis[api].check(route.spec["response"]["$ref"], result)
            if problems:
                self.schema_errors.extend(problems)
                raise ApiError(
                    500, "the test server built an answer its schema does not allow", reason="backendError"
                )
            if route.method_id in self.rewrites:  # an answer of a shape Google never sends, on purpose
                result = self.rewrites[route.method_id](result)
            return 200, {"Content-Type": "application/json; charset=UTF-8"}, json.dumps(result).encode()
        except ApiError as err:
            headers_out = {"Content-Type": "application/json; charset=UTF-8", **err.headers}
            if err.code == 401:
                headers_out["WWW-Authenticate"] = 'Bearer realm="https://accounts.google.com/"'
            return err.code, headers_out, json.dumps(err.body).encode()

    def _route(self, verb: str, path: str) -> tuple[str, Route, dict[str, str]]:
        for api, spec in self.apis.items():
            found = spec.route(verb, path)
            if found is not None:
                return api, found[0], found[1]
        raise ApiError(404, f"The requested URL {path} was not found on this server.", reason="notFound")

    def _body(self, api: str, route: Route, body: bytes) -> JSON | None:
        if "request" not in route.spec:
            return None
        try:
            sent = json.loads(body or b"{}")
        except ValueError:
            raise ApiError(400, "Invalid JSON payload received.", reason="parseError") from None
        problems = self.apis[api].check(route.spec["request"]["$ref"], sent)
        if problems:
            raise ApiError(400, f"Invalid JSON payload received. {problems[0]}", reason="badRequest")
        return sent  # type: ignore[no-any-return]

    def _faults(self, method_id: str, values: dict[str, str]) -> None:
        project = values.get("project") or _project_of(values)
        with self.lock:
            for f in self.faults.get(method_id, []):
                if f.times == 0 or (f.project and f.project != project):
                    continue
                if f.times is not None:
                    f.times -= 1
                err = ApiError(
                    f.status, f.message or f"injected {f.status}", reason=f.reason, details=f.details
                )
                if f.retry_after is not None:
                    err.headers["Retry-After"] = f.retry_after
                raise err

    # --- credentials -----------------------------------------------------------------------------------

    def register_key(self, email: str, key: rsa.RSAPublicKey) -> None:
        self.keys[email] = key

    def _token(self, body: bytes) -> tuple[int, dict[str, str], bytes]:
        """OAuth 2.0 (``jwt-bearer``, ``refresh_token``) and STS (``token-exchange``) token requests."""
        form = {k: v[-1] for k, v in urllib.parse.parse_qs(body.decode()).items()}
        with self.lock:
            self.seen["token"] += 1
            refused = self.faults.get("token")
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if refused or form.get("grant_type") not in (
            "urn:ietf:params:oauth:grant-type:jwt-bearer",
            "refresh_token",
            "urn:ietf:params:oauth:grant-type:token-exchange",
        ):
            answer = {"error": "invalid_grant", "error_description": "Token has been expired or revoked."}
            return 400, headers, json.dumps(answer).encode()
        token = "ya29.aiosTuiTestAccessToken" + uuid.uuid4().hex
        with self.lock:
            self.issued.add(token)
        answer = {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
        if "token-exchange" in form["grant_type"]:
            answer["issued_token_type"] = "urn:ietf:params:oauth:token-type:access_token"
        return 200, headers, json.dumps(answer).encode()

    def _authorize(self, headers: dict[str, str]) -> None:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        scheme, _, token = auth.partition(" ")
        with self.lock:
            self.bearers.add(token)
        if not self.reject_tokens and scheme == "Bearer" and (token in self.issued or self._signed(token)):
            return
        raise ApiError(
            401,
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie "
            "or other valid authentication credential. "
            "See https://developers.google.com/identity/sign-in/web/devconsole-project.",
            reason="authError",
        )

    def _signed(self, token: str) -> bool:
        """A self-signed JWT of a registered service account, for cloud-platform."""
        try:
            head, payload, signature = (
                base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)) for p in token.split(".")
            )
            claims = json.loads(payload)
            key = self.keys[claims["iss"]]
            if json.loads(head).get("alg") != "RS256" or claims.get("sub") != claims["iss"]:
                return False
            signed = token.rsplit(".", 1)[0].encode()
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
        except Exception:
            return False
        return CLOUD_PLATFORM in str(claims.get("scope", "")).split()

    # --- the methods -----------------------------------------------------------------------------------

    def _call(self, method_id: str, v: dict[str, str], body: JSON | None) -> JSON:
        if method_id in _AGGREGATED:
            return self._aggregated(method_id, v)
        if method_id == "compute.machineTypes.get":
            project = self._compute_project(v["project"])
            found = project.machine_types.get(v["machineType"])
            path = f"projects/{v['project']}/zones/{v['zone']}/machineTypes/{v['machineType']}"
            if found is None:
                raise ApiError(404, f"The resource '{path}' was not found", reason="notFound")
            return {**found, "zone": v["zone"], "selfLink": COMPUTE + path}
        if method_id in (
            "compute.instanceGroupManagers.resize",
            "compute.regionInstanceGroupManagers.resize",
        ):
            return self._resize(v)
        if method_id in ("compute.zoneOperations.get", "compute.regionOperations.get"):
            op = self.operations.get(v["operation"])
            if op is None:
                raise ApiError(404, f"The resource 'operation {v['operation']}' was not found")
            return op
        if method_id == "container.projects.locations.clusters.list":
            return self._clusters(v["parent"])
        if method_id == "container.projects.locations.clusters.nodePools.setSize":
            assert body is not None
            return self._set_size(v["name"], int(body.get("nodeCount", 0)))
        if method_id == "container.projects.locations.operations.get":
            op = self.operations.get(v["name"].rsplit("/", 1)[-1])
            if op is None:
                raise ApiError(404, f"Operation {v['name']} was not found.")
            return op
        raise ApiError(501, f"{method_id} is in the excerpt but not served", reason="notImplemented")

    def _compute_project(self, pid: str) -> Project:
        project = self.projects.get(pid)
        if project is None:
            raise ApiError(404, f"The resource 'projects/{pid}' was not found", reason="notFound")
        return project

    def _aggregated(self, method_id: str, v: dict[str, str]) -> JSON:
        attr, key, kind = _AGGREGATED[method_id]
        project = self._compute_project(v["project"])
        with self.lock:
            items = sorted(
                ((scope_of(o), o) for o in getattr(project, attr)), key=lambda x: (x[0], x[1]["name"])
            )
        size = min(int(v.get("maxResults", 500)) or 500, self.page_size)
        try:
            start = (
                int(base64.urlsafe_b64decode(v.get("pageToken", "") or "MA==").decode())
                if v.get("pageToken")
                else 0
            )
        except ValueError:
            raise ApiError(400, "Invalid value for field 'pageToken'.", reason="invalid") from None
        page = items[start : start + size]
        grouped: dict[str, JSON] = {}
        for scope, obj in page:
            grouped.setdefault(scope, {key: []})[key].append(obj)
        if start == 0:  # Compute Engine lists scopes with nothing on the page with a warning
            empty = "zones/us-east1-b"
            grouped.setdefault(
                empty,
                {
                    "warning": {
                        "code": "NO_RESULTS_ON_PAGE",
                        "message": f"There are no results for scope '{empty}' on this page.",
                        "data": [{"key": "scope", "value": empty}],
                    }
                },
            )
        out: JSON = {
            "kind": kind,
            "id": f"projects/{project.id}/aggregated/{key}",
            "items": grouped,
            "selfLink": f"{COMPUTE}projects/{project.id}/aggregated/{key}",
        }
        if start + size < len(items):
            out["nextPageToken"] = base64.urlsafe_b64encode(str(start + size).encode()).decode()
        return out

    def _resize(self, v: dict[str, str]) -> JSON:
        project = self._compute_project(v["project"])
        where = f"zones/{v['zone']}" if "zone" in v else f"regions/{v['region']}"
        link = f"{COMPUTE}projects/{project.id}/{where}/instanceGroupManagers/{v['instanceGroupManager']}"
        with self.lock:
            if v.get("requestId") in self.request_ids:
                return self.request_ids[v["requestId"]]
            mig = next((m for m in project.migs if m["selfLink"] == link), None)
            if mig is None:
                raise ApiError(
                    404, f"The resource '{link.removeprefix(COMPUTE)}' was not found", reason="notFound"
                )
            mig["targetSize"] = int(v["size"])
            name = f"operation-{uuid.uuid4().hex[:20]}"
            op = {
                "kind": "compute#operation",
                "id": str(abs(hash(name)) % 10**18),
                "name": name,
                "operationType": "compute.instanceGroupManagers.resize",
                "targetLink": link,
                "targetId": mig["id"],
                "status": "RUNNING",
                "user": "aios-tui-test@alpha.iam.gserviceaccount.com",
                "progress": 0,
                "insertTime": "2026-11-30T01:00:00.000-08:00",
                "startTime": "2026-11-30T01:00:00.000-08:00",
                "selfLink": f"{COMPUTE}projects/{project.id}/{where}/operations/{name}",
                where.split("/", maxsplit=1)[0][:-1]: f"{COMPUTE}projects/{project.id}/{where}",
            }
            self.operations[name] = op
            if v.get("requestId"):
                self.request_ids[v["requestId"]] = op
        return op

    def _clusters(self, parent: str) -> JSON:
        _, pid, _, location = parent.split("/")
        project = self.projects.get(pid)
        if project is None:  # GKE cannot tell a project that is not there from one you may not see
            raise ApiError(403, f"Permission denied on resource project {pid}.", reason="forbidden")
        with self.lock:
            clusters = [c for c in project.clusters if location in ("-", c["location"])]
        return {"clusters": clusters}

    def _set_size(self, name: str, count: int) -> JSON:
        _, pid, _, location, _, cluster, _, pool = name.split("/")
        project = self.projects.get(pid)
        if project is None:
            raise ApiError(403, f"Permission denied on resource project {pid}.", reason="forbidden")
        with self.lock:
            found = [
                np
                for c in project.clusters
                if c["name"] == cluster and c["location"] == location
                for np in c.get("nodePools", [])
                if np["name"] == pool
            ]
            if not found:
                raise ApiError(404, f"Not found: {name}.", reason="notFound")
            for url in found[0].get("instanceGroupUrls", []):
                for mig in project.migs:
                    if mig["selfLink"] == url:
                        mig["targetSize"] = count
            op_name = f"operation-{uuid.uuid4().hex[:20]}"
            op = {
                "name": op_name,
                "zone": location,
                "operationType": "SET_NODE_POOL_SIZE",
                "status": "RUNNING",
                "selfLink": f"https://container.googleapis.com/v1/projects/{project.number}/locations/{location}/operations/{op_name}",
                "targetLink": f"https://container.googleapis.com/v1/projects/{project.number}/locations/{location}/clusters/{cluster}/nodePools/{pool}",
                "startTime": "2026-11-30T09:00:00.000000000Z",
            }
            self.operations[op_name] = op
        return op

    def node_pool_sizes(self, pid: str) -> Iterator[tuple[str, int]]:
        """(MIG name, targetSize) of every group in the project, for asserts."""
        for m in self.projects[pid].migs:
            yield m["name"], m["targetSize"]


def _project_of(values: dict[str, str]) -> str:
    """The project of a GKE call (``parent`` / ``name``: ``projects/<p>/…``)."""
    for key in ("parent", "name"):
        if values.get(key, "").startswith("projects/"):
            return values[key].split("/")[1]
    return ""
