"""The test server answers as Google's front end does, from the discovery excerpts: these tests hold it to
that (plain HTTP, no SDK), so that what the provider's tests prove rests on the real protocol."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pytest

from tests.gcp.conftest import seed
from tests.gcp.server import GoogleCloud

INSTANCES = "/compute/v1/projects/alpha/aggregated/instances"


@pytest.fixture
def cloud_seeded(cloud: GoogleCloud) -> GoogleCloud:
    seed(cloud)
    return cloud


def _token(cloud: GoogleCloud) -> str:
    form = urllib.parse.urlencode({"grant_type": "refresh_token", "refresh_token": "r"}).encode()
    with urllib.request.urlopen(urllib.request.Request(f"{cloud.url}/token", data=form), timeout=5) as r:
        return str(json.load(r)["access_token"])


def _call(cloud: GoogleCloud, path: str, *, token: str | None = "", method: str = "GET",
          **query: str) -> tuple[int, dict[str, Any], dict[str, str]]:  # fmt: skip
    url = f"{cloud.url}{path}" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token or _token(cloud)}")
    try:
        with urllib.request.urlopen(req, timeout=5) as r:
            return r.status, json.load(r), dict(r.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.load(err), dict(err.headers)


def test_the_excerpts_are_google_s_discovery_documents(cloud: GoogleCloud) -> None:
    compute, container = cloud.apis["compute"].doc, cloud.apis["container"].doc
    assert (compute["revision"], container["revision"]) == ("20261106", "20261027")
    assert compute["source"].startswith("google-api-python-client 2.202.0: ")
    m = compute["methods"]["compute.instances.aggregatedList"]
    assert (m["httpMethod"], m["path"], m["response"]) == (
        "GET", "projects/{project}/aggregated/instances", {"$ref": "InstanceAggregatedList"},
    )  # fmt: skip
    assert m["parameters"]["maxResults"] == {"default": "500", "format": "uint32", "location": "query",
                                             "minimum": "0", "type": "integer"}  # fmt: skip
    size = container["methods"]["container.projects.locations.clusters.nodePools.setSize"]
    assert (size["httpMethod"], size["path"], size["request"]) == (
        "POST", "v1/{+name}:setSize", {"$ref": "SetNodePoolSizeRequest"},
    )  # fmt: skip
    assert set(compute["schemas"]["Instance"]["properties"]) >= {"guestAccelerators", "scheduling", "labels"}


def test_an_unknown_path_or_verb_is_404_in_google_s_error_shape(cloud_seeded: GoogleCloud) -> None:
    for path, method in (("/compute/v1/projects/alpha/aggregated/gpus", "GET"), (INSTANCES, "POST")):
        status, body, _ = _call(cloud_seeded, path, method=method)
        assert status == 404
        assert set(body["error"]) == {"code", "message", "status", "errors"}
        assert (body["error"]["code"], body["error"]["status"]) == (404, "NOT_FOUND")
        assert body["error"]["errors"][0]["reason"] == "notFound"


@pytest.mark.parametrize(
    ("query", "said"),
    [
        ({"color": "red"}, 'Unknown name "color": Cannot bind query parameter.'),
        ({"maxResults": "ten"}, "Invalid value at 'max_results' (TYPE_UINT32), \"ten\""),
        ({"maxResults": "-1"}, "Invalid value at 'max_results' (TYPE_UINT32), \"-1\""),
        ({"includeAllScopes": "yes"}, "Invalid value at 'include_all_scopes' (TYPE_BOOLEAN), \"yes\""),
    ],
)
def test_an_unknown_or_ill_typed_query_parameter_is_400(
    cloud_seeded: GoogleCloud, query: dict[str, str], said: str
) -> None:
    status, body, _ = _call(cloud_seeded, INSTANCES, **query)
    assert (status, body["error"]["status"]) == (400, "INVALID_ARGUMENT")
    assert said in body["error"]["message"]


def test_a_required_parameter_is_required(cloud_seeded: GoogleCloud) -> None:
    path = "/compute/v1/projects/alpha/zones/us-central1-c/instanceGroupManagers/a2-pool/resize"
    status, body, _ = _call(cloud_seeded, path, method="POST")
    assert (status, body["error"]["message"]) == (400, "Required parameter 'size' is missing.")
    status, body, _ = _call(cloud_seeded, path, method="POST", size="3", requestId="r-1")
    assert (status, body["status"], body["kind"]) == (200, "RUNNING", "compute#operation")
    status, again, _ = _call(cloud_seeded, path, method="POST", size="3", requestId="r-1")
    assert again["name"] == body["name"], "the same request ID: the same operation, not a second resize"


def test_calls_need_a_token_it_issued_or_a_signed_jwt(cloud_seeded: GoogleCloud) -> None:
    status, body, headers = _call(cloud_seeded, INSTANCES, token=None)
    assert (status, body["error"]["status"]) == (401, "UNAUTHENTICATED")
    assert headers["WWW-Authenticate"].startswith("Bearer ")
    forged = (
        "eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOiJhaW9zLXR1aS10ZXN0QGFscGhhLmlhbS5nc2VydmljZWFjY291bnQuY29tIn0.c2ln"
    )
    assert _call(cloud_seeded, INSTANCES, token=forged)[0] == 401
    assert _call(cloud_seeded, INSTANCES, token="ya29.not-issued")[0] == 401
    assert _call(cloud_seeded, INSTANCES)[0] == 200


def test_aggregated_lists_come_in_pages(cloud_seeded: GoogleCloud) -> None:
    token = _token(cloud_seeded)
    names, pages, query = [], [], {"maxResults": "3"}
    while True:
        status, body, _ = _call(cloud_seeded, INSTANCES, token=token, **query)
        assert status == 200
        found = [i["name"] for scoped in body["items"].values() for i in scoped.get("instances", [])]
        pages.append(body)
        names += found
        assert len(found) <= 2, "at most the server's page size"
        if "nextPageToken" not in body:
            break
        query = {"maxResults": "3", "pageToken": body["nextPageToken"]}
    assert len(pages) == 5 and len(names) == len(set(names)) == 10
    warning = pages[0]["items"]["zones/us-east1-b"]["warning"]
    assert warning["code"] == "NO_RESULTS_ON_PAGE"
    assert (
        _call(cloud_seeded, "/compute/v1/projects/gone-project/aggregated/instances", token=token)[0] == 404
    )


def test_the_schema_check_refuses_what_google_never_sends(cloud: GoogleCloud) -> None:
    compute, container = cloud.apis["compute"], cloud.apis["container"]
    assert compute.check("Instance", {"name": "a", "id": "123", "guestAccelerators": []}) == []
    assert compute.check("Instance", {"id": 123}) == [
        "Instance.id: a string expected (format uint64), not 123"
    ]
    assert compute.check("Instance", {"gpus": 8}) == ["Instance.gpus: no such field"]
    assert compute.check("Scheduling", {"preemptible": "true"}) == [
        "Scheduling.preemptible: a boolean expected"
    ]
    assert container.check("AcceleratorConfig", {"acceleratorCount": 2}) == [
        "AcceleratorConfig.acceleratorCount: a string expected (format int64), not 2"
    ]
    assert container.check("Operation", {"status": "FINISHED"})[0].startswith(
        "Operation.status: 'FINISHED' is none"
    )
