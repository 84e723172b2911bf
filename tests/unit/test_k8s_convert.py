"""Kubernetes JSON → domain objects, on the responses captured from a real kube-apiserver, and on those
responses broken in every way a fuzzer finds: each converter returns a record whose every string is clean
and within its cap, or raises MalformedObject, and nothing else."""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aios_tui.domain import NA, Health, JobState, MigSlice, PodPhase
from aios_tui.domain.text import LIMIT, LONG_LIMIT, clean, is_clean
from aios_tui.sources._k8s_convert import (
    COMPLETION_INDEX,
    IMAGE_LIMIT,
    LABEL_KEY_LIMIT,
    MAX_DEVICES,
    MAX_MEMORY,
    MAX_MILLI_CPU,
    MalformedObject,
    PodRec,
    build_endpoint,
    build_job,
    convert_deployment,
    convert_event,
    convert_hpa,
    convert_job,
    convert_node,
    convert_pdb,
    convert_pod,
    convert_replicaset,
    convert_warning_event,
    gpu_request,
    mig_profile,
    object_key,
    parse_quantity,
    parse_selector,
    pdb_of_message,
    requests_of,
    selector_matches,
    short_gpu_model,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "kubernetes"
GPU = ("nvidia.com/gpu",)


def response(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())["response"]


def items(name: str) -> dict[str, dict[str, Any]]:
    """The list's items by ``namespace/name`` (``name`` for nodes)."""
    out = {}
    for obj in response(name)["items"]:
        meta = obj["metadata"]
        out[f"{meta['namespace']}/{meta['name']}" if "namespace" in meta else meta["name"]] = obj
    return out


def items_of_pods() -> dict[str, dict[str, Any]]:
    return {
        f"{o['metadata']['namespace']}/{o['metadata']['name']}": o for o in response("pods-list-all")["items"]
    }


def pods(namespace: str) -> list[PodRec]:
    recs = [convert_pod(o, source="k8s:t", gpu_names=GPU) for o in response("pods-list-all")["items"]]
    return [r for r in recs if r is not None and r.pod.namespace == namespace]


# --- nodes ---------------------------------------------------------------------------------------------


def test_eks_gpu_node() -> None:
    obj = items("nodes-list")["ip-10-0-1-12.ec2.internal"]
    node = convert_node(obj, source="k8s:t", gpu_names=GPU, rack_label="example.com/rack").node
    assert (node.gpu_model, node.gpus_total, node.gpus_allocatable, node.gpus_requested) == ("H100", 8, 8, 0)
    assert (node.zone, node.rack, node.instance_type, node.pool) == (
        "us-east-1a",
        "r1",
        "p5.48xlarge",
        "p5-pool",
    )
    assert node.provider_id == "aws:///us-east-1a/i-0a1b2c3d4e5f60012"
    assert node.price_per_hour == pytest.approx(98.32)
    assert node.ready and not node.cordoned and node.health is Health.OK
    assert [c.type for c in node.conditions] == ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"]
    assert node.labels["nvidia.com/gpu.count"] == "8"
    assert (node.source, node.cluster) == ("k8s:t", "k8s:t")


def test_rack_label_defaults_to_the_eks_network_layer() -> None:
    obj = copy.deepcopy(items("nodes-list")["ip-10-0-1-12.ec2.internal"])
    assert convert_node(obj, source="s", gpu_names=GPU, rack_label="").node.rack == ""
    obj["metadata"]["labels"]["topology.k8s.aws/network-node-layer-3"] = "nn-3"
    assert convert_node(obj, source="s", gpu_names=GPU, rack_label="").node.rack == "nn-3"


def test_l4_node_and_an_unlabelled_node() -> None:
    nodes = items("nodes-list")
    l4 = convert_node(nodes["ip-10-0-3-31.ec2.internal"], source="s", gpu_names=GPU, rack_label="").node
    assert (l4.gpu_model, l4.gpus_allocatable, l4.instance_type) == ("L4", 4, "g6.12xlarge")
    bare = convert_node(nodes["gpu-node-1"], source="s", gpu_names=GPU, rack_label="").node
    assert (bare.gpu_model, bare.gpus_allocatable, bare.zone, bare.instance_type) == ("", 8, "", "")
    assert bare.price_per_hour is NA


def test_model_from_the_instance_type_when_the_product_label_is_missing() -> None:
    obj = copy.deepcopy(items("nodes-list")["ip-10-0-3-31.ec2.internal"])
    del obj["metadata"]["labels"]["nvidia.com/gpu.product"]
    assert convert_node(obj, source="s", gpu_names=GPU, rack_label="").node.gpu_model == "L4"


def test_cordoned_node_from_the_patch_answer() -> None:
    node = convert_node(response("node-cordon-patch"), source="s", gpu_names=GPU, rack_label="").node
    assert node.cordoned and node.status == "Ready,SchedulingDisabled" and not node.schedulable


def test_who_cordoned_a_node() -> None:
    # The captured cordon was made with python-requests, which the server names its field manager after.
    patched = convert_node(response("node-cordon-patch"), source="s", gpu_names=GPU, rack_label="").node
    assert patched.cordoned_by == "python-requests"

    def by(
        cordoned: bool,
        labels: Mapping[str, str] | None = None,
        taints: tuple[str, ...] = (),
        manager: str = "",
    ) -> str:
        obj = copy.deepcopy(items("nodes-list")["ip-10-0-1-11.ec2.internal"])
        obj["spec"]["unschedulable"] = cordoned
        obj["metadata"]["labels"].update(labels or {})
        obj["spec"]["taints"] = [{"key": k, "effect": "NoSchedule"} for k in taints]
        if manager:
            fields: dict[str, Any] = {"f:spec": {"f:unschedulable": {}}}
            obj["metadata"]["managedFields"] = [
                {"manager": "kubelet", "operation": "Update", "fieldsV1": {"f:status": {}}},
                {"manager": manager, "operation": "Update", "fieldsV1": fields},
            ]
        return convert_node(obj, source="s", gpu_names=GPU, rack_label="").node.cordoned_by

    nvsentinel = {"k8saas.nvidia.com/cordon-by": "NVSentinel", "k8saas.nvidia.com/cordon-reason": "GPU-fatal"}
    assert by(True, nvsentinel, manager="fault-quarantine") == "NVSentinel"
    assert by(False, nvsentinel) == ""  # a label left behind after an uncordon says nothing
    assert by(False, taints=("karpenter.sh/disrupted",)) == "Karpenter"  # tainted, not cordoned
    assert by(True, taints=("ToBeDeletedByClusterAutoscaler",)) == "cluster-autoscaler"
    assert by(False, taints=("DeletionCandidateOfClusterAutoscaler",)) == "cluster-autoscaler"
    assert by(True, manager="kubectl-cordon") == "kubectl"
    assert by(True, manager="aios-tui") == "aios-tui"
    assert by(True) == ""  # the fixture node's managedFields never set unschedulable
    assert by(False, manager="kubectl-cordon") == ""


def test_not_ready_node_fails_and_taints_are_read() -> None:
    obj = copy.deepcopy(items("nodes-list")["ip-10-0-1-11.ec2.internal"])
    obj["status"]["conditions"][0]["status"] = "False"
    obj["spec"]["taints"] = [{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"}]
    node = convert_node(obj, source="s", gpu_names=GPU, rack_label="").node
    assert not node.ready and node.health is Health.FAIL
    assert [str(t) for t in node.taints] == ["node.kubernetes.io/not-ready:NoExecute"]


def test_mig_and_shared_resource_names_count_as_gpus() -> None:
    obj = copy.deepcopy(items("nodes-list")["ip-10-0-1-11.ec2.internal"])
    obj["status"]["allocatable"]["nvidia.com/mig-1g.10gb"] = "14"
    names = ("nvidia.com/gpu", "nvidia.com/mig-1g.10gb")
    assert convert_node(obj, source="s", gpu_names=names, rack_label="").node.gpus_allocatable == 22


# --- pods ----------------------------------------------------------------------------------------------


def test_training_rank_pod() -> None:
    by_name = {r.pod.name: r for r in pods("capture")}
    running = by_name["train-llama-70b-0-k2zwg"].pod
    assert (running.node, running.phase, running.gpus, running.rank) == (
        "ip-10-0-2-21.ec2.internal",
        PodPhase.RUNNING,
        8,
        0,
    )
    assert (running.owner_kind, running.owner, running.ready, running.empty_dir) == (
        "Job",
        "capture/train-llama-70b",
        True,
        True,
    )
    pending = by_name["train-llama-70b-1-8wp4c"]
    assert pending.pod.node == "" and pending.pod.rank == 1
    assert pending.unschedulable.startswith("0/7 nodes are available: 3 Insufficient cpu")


def test_replicaset_pod_belongs_to_its_deployment_daemonset_and_bare_pods() -> None:
    by_name = {r.pod.name: r for r in pods("ml-prod")}
    serve = by_name["llm-serve-c7b59b455-fwlz8"]
    assert (serve.pod.owner_kind, serve.pod.owner, serve.replicaset) == (
        "ReplicaSet",
        "ml-prod/llm-serve",
        "llm-serve-c7b59b455",
    )
    assert serve.pod.gpus == 1 and serve.unschedulable == ""
    assert by_name["dcgm-exporter-2fdpr"].pod.owner_kind == "DaemonSet"
    bare = by_name["debug-shell"].pod
    assert (bare.owner_kind, bare.owner, bare.gpus) == ("", "", 0)
    rs = next(iter(items("replicasets-list").values()))
    assert convert_replicaset(rs) == "llm-serve"


def test_mirror_pods_are_left_out() -> None:
    obj = copy.deepcopy(response("pods-list-all")["items"][0])
    obj["metadata"].setdefault("annotations", {})["kubernetes.io/config.mirror"] = "abc"
    assert convert_pod(obj, source="s", gpu_names=GPU) is None


def test_gpu_request_counts_limits_and_init_containers() -> None:
    spec = {
        "containers": [
            {"resources": {"limits": {"nvidia.com/gpu": "2"}}},
            {"resources": {"requests": {"nvidia.com/gpu": 1}, "limits": {"nvidia.com/gpu": 1}}},
            {"name": "sidecar"},
        ],
        "initContainers": [{"resources": {"limits": {"nvidia.com/gpu": "4"}}}],
    }
    assert gpu_request(spec, GPU) == 4
    spec["initContainers"] = []
    assert gpu_request(spec, GPU) == 3
    assert gpu_request(spec, ("amd.com/gpu",)) == 0
    assert gpu_request(None, GPU) == 0


def test_gpu_request_follows_the_schedulers_rules_for_sidecars_and_overhead() -> None:
    # Kubernetes' effective request: max(app containers + every sidecar, the largest regular init container
    # + the sidecars started before it) + the pod's overhead. A sidecar is an init container with
    # restartPolicy Always: it runs for the pod's whole life, beside the app containers.
    def gpus(n: int) -> dict[str, object]:
        return {"resources": {"requests": {"nvidia.com/gpu": str(n)}}}

    spec: dict[str, object] = {
        "containers": [gpus(2)],
        "initContainers": [gpus(3), {**gpus(1), "restartPolicy": "Always"}, gpus(2)],
    }
    assert gpu_request(spec, GPU) == 3  # max(2 + 1, 3 + 0, 2 + 1)
    spec["initContainers"] = [{**gpus(1), "restartPolicy": "Always"}, gpus(3)]
    assert gpu_request(spec, GPU) == 4  # the init container starts after the sidecar: 3 + 1
    spec["initContainers"] = [
        {**gpus(2), "restartPolicy": "Always"},
        {**gpus(1), "restartPolicy": "OnFailure"},
    ]
    assert gpu_request(spec, GPU) == 4  # app 2 + sidecar 2; a restartPolicy other than Always is no sidecar
    spec["overhead"] = {"nvidia.com/gpu": "1", "cpu": "250m"}
    assert gpu_request(spec, GPU) == 5


def test_cpu_and_memory_requests_follow_the_schedulers_rules() -> None:
    # The one rule of gpu_request, per resource: max(app containers + every sidecar, each regular init
    # container + the sidecars started before it) + overhead; a container's request, else its limit.
    def asks(cpu: str, memory: str, **extra: object) -> dict[str, object]:
        return {"resources": {"requests": {"cpu": cpu, "memory": memory}}, **extra}

    spec: dict[str, Any] = {
        "containers": [asks("1", "1Gi"), asks("500m", "512Mi")],
        "initContainers": [
            asks("4", "64Mi"),  # before the sidecar: 4 CPUs alone, more than the app's 1.5 + 0.25
            asks("250m", "128Mi", restartPolicy="Always"),
            asks("2", "4Gi"),  # after it: 4 GiB + the sidecar's 128 MiB, more than the app's
        ],
    }
    assert requests_of(spec, GPU) == {"cpu": 4000, "memory": 4 * 2**30 + 128 * 2**20}
    spec["initContainers"] = [asks("1500m", "64Mi", restartPolicy="Always"), asks("2", "64Mi")]
    assert requests_of(spec, GPU)["cpu"] == 3500  # 2 + 1.5 before it, as much as the app + the sidecar
    spec["initContainers"] = []
    spec["containers"] = [
        {"resources": {"limits": {"cpu": "2", "memory": "1Gi"}}},  # limits only: the request
        {"resources": {"requests": {"cpu": "100m"}, "limits": {"cpu": "4", "memory": "2Gi"}}},
    ]
    assert requests_of(spec, GPU) == {"cpu": 2100, "memory": 3 * 2**30}
    spec["overhead"] = {"cpu": "250m", "memory": "120Mi"}
    assert requests_of(spec, GPU) == {"cpu": 2350, "memory": 3 * 2**30 + 120 * 2**20}
    spec["resources"] = {"requests": {"cpu": "8"}}  # Pod Level Resources: the pod's own, for what it sets
    assert requests_of(spec, GPU) == {"cpu": 8250, "memory": 3 * 2**30 + 120 * 2**20}


@pytest.mark.parametrize(
    ("cpu", "milli"),
    [("250m", 250), ("1.5", 1500), ("1e3", 1_000_000), ("2", 2000), (3, 3000), ("0.1m", 1), ("1k", 10**6)],
)
def test_cpu_quantities_in_milli_cpu_rounded_up(cpu: object, milli: int) -> None:
    spec = {"containers": [{"resources": {"requests": {"cpu": cpu}}}]}
    assert requests_of(spec, GPU) == {"cpu": milli}


@pytest.mark.parametrize(
    ("memory", "size"),
    [("1Gi", 2**30), ("512M", 512 * 10**6), ("1e3", 1000), ("128974848", 128974848), ("100m", 1)],
)
def test_memory_quantities_in_bytes_rounded_up(memory: str, size: int) -> None:
    spec = {"containers": [{"resources": {"requests": {"memory": memory}}}]}
    assert requests_of(spec, GPU) == {"memory": size}


@pytest.mark.parametrize(
    ("requests", "why"),
    [
        ({"cpu": "-1"}, "spec.containers.resources[cpu] is negative"),
        ({"memory": "-1Gi"}, "spec.containers.resources[memory] is negative"),
        ({"cpu": "1e15"}, "spec.containers.resources[cpu] is out of range"),  # 10^18 milli-CPU
        ({"memory": "2Ei"}, "spec.containers.resources[memory] is out of range"),
        ({"cpu": "lots"}, "spec.containers.resources[cpu] is not a quantity"),
        ({"memory": ["1Gi"]}, "spec.containers.resources[memory] is not a quantity"),
        ({"cpu": float("inf")}, "spec.containers.resources[cpu] is out of range"),
        ({"nvidia.com/mig-1g.10gb": "1e9"}, "spec.containers.resources[nvidia.com/mig-1g.10gb] is more than"),
    ],
)
def test_a_hostile_cpu_or_memory_request_is_malformed(requests: dict[str, object], why: str) -> None:
    with pytest.raises(MalformedObject) as info:
        requests_of({"containers": [{"resources": {"requests": requests}}]}, GPU)
    assert str(info.value).startswith(why)


def test_requests_summed_beyond_the_caps_are_malformed() -> None:
    half = {"resources": {"requests": {"cpu": str(MAX_MILLI_CPU // 1000 // 2 + 1)}}}
    with pytest.raises(MalformedObject, match=f"request more than {MAX_MILLI_CPU} milli-CPU"):
        requests_of({"containers": [half, half]}, GPU)
    big = {"resources": {"requests": {"memory": str(MAX_MEMORY)}}}
    with pytest.raises(MalformedObject, match=f"request more than {MAX_MEMORY} bytes"):
        requests_of({"containers": [big], "overhead": {"memory": "1"}}, GPU)
    slices = {"resources": {"limits": {"nvidia.com/mig-1g.10gb": "600"}}}
    with pytest.raises(MalformedObject, match=f"request more than {MAX_DEVICES} devices"):
        requests_of({"containers": [slices, slices]}, GPU)


def test_mig_profiles_and_their_share_of_a_gpu() -> None:
    assert [mig_profile(f"nvidia.com/mig-{g}g.10gb") for g in (1, 2, 3, 4, 7)] == [
        (f"{g}g.10gb", m) for g, m in zip((1, 2, 3, 4, 7), (142, 285, 428, 571, 1000), strict=True)
    ]
    assert mig_profile("nvidia.com/mig-1g.10gb+me") == ("1g.10gb+me", 142)
    assert mig_profile("nvidia.com/mig-1c.3g.40gb") == ("1c.3g.40gb", 142)  # one compute slice of a 3g
    for other in ("nvidia.com/gpu", "nvidia.com/mig-8g.80gb", "nvidia.com/mig-", "nvidia.com/mig-1g\x1b[2J"):
        assert mig_profile(other) is None


def test_a_pod_asking_mig_slices() -> None:
    obj = copy.deepcopy(items_of_pods()["ml-prod/debug-shell"])
    obj["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/mig-1g.10gb": "1"}}
    rec = convert_pod(obj, source="s", gpu_names=GPU)
    assert rec is not None
    assert (rec.pod.gpus, rec.pod.gpu_milli, rec.pod.gpu_profile, rec.slices) == (
        0,
        142,
        "1g.10gb",
        (("1g.10gb", 1),),
    )
    obj["spec"]["containers"].append(
        {"name": "b", "resources": {"requests": {"nvidia.com/mig-3g.40gb": "2"}}}
    )
    rec = convert_pod(obj, source="s", gpu_names=GPU)
    assert rec is not None and (rec.pod.gpu_milli, rec.pod.gpu_profile) == (142 + 856, "1g.10gb,3g.40gb")
    # Named a GPU resource in the settings, a MIG resource counts as whole GPUs, as it did before.
    rec = convert_pod(obj, source="s", gpu_names=(*GPU, "nvidia.com/mig-3g.40gb"))
    assert rec is not None and (rec.pod.gpus, rec.pod.gpu_milli, rec.slices) == (2, 142, (("1g.10gb", 1),))


def node_with(labels: dict[str, str], allocatable: dict[str, str]) -> Any:
    obj = copy.deepcopy(items("nodes-list")["ip-10-0-1-12.ec2.internal"])
    for key in [k for k in obj["metadata"]["labels"] if k.startswith("nvidia.com/")]:
        del obj["metadata"]["labels"][key]
    obj["metadata"]["labels"].update(labels)
    obj["status"]["allocatable"] = obj["status"]["capacity"] = {
        "cpu": "191",
        "memory": "2000000Mi",
        **allocatable,
    }
    return convert_node(obj, source="s", gpu_names=GPU, rack_label="")


def test_node_cpu_and_memory_allocatable() -> None:
    node = node_with({}, {"nvidia.com/gpu": "8"}).node
    assert (node.cpu_allocatable, node.memory_allocatable) == (191_000, 2_000_000 * 2**20)
    assert (node.gpu_sharing, node.gpu_replicas, node.mig_slices) == ("", 0, ())
    obj = copy.deepcopy(items("nodes-list")["gpu-node-1"])
    del obj["status"]["allocatable"]["cpu"]
    assert convert_node(obj, source="s", gpu_names=GPU, rack_label="").node.cpu_allocatable == 0  # unknown
    obj["status"]["allocatable"]["memory"] = "-1"
    with pytest.raises(MalformedObject, match=r"status.allocatable\[memory\] is negative"):
        convert_node(obj, source="s", gpu_names=GPU, rack_label="")


def test_time_sliced_and_mps_nodes_count_physical_gpus() -> None:
    sliced = {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "time-slicing"}
    rec = node_with({**sliced, "nvidia.com/gpu.count": "8"}, {"nvidia.com/gpu": "32"})
    node = rec.node
    assert (node.gpu_sharing, node.gpu_replicas, node.gpus_total, node.gpus_allocatable) == (
        "time-slicing",
        4,
        8,
        8,
    )
    assert rec.shares and rec.share(1) == (250, "") and rec.share(3) == (750, "")
    node = node_with(sliced, {"nvidia.com/gpu": "28"}).node  # no count label: the devices / replicas
    assert (node.gpus_total, node.gpus_allocatable) == (7, 7)
    mps = {"nvidia.com/gpu.replicas": "3", "nvidia.com/gpu.sharing-strategy": "mps"}
    rec = node_with(mps, {"nvidia.com/gpu": "0", "nvidia.com/gpu.shared": "24"})  # renameByDefault
    assert (rec.node.gpu_sharing, rec.node.gpus_allocatable, rec.share(2)) == ("mps", 8, (666, ""))
    old_gfd = node_with({"nvidia.com/gpu.replicas": "2"}, {"nvidia.com/gpu": "16"}).node  # before the label
    assert (old_gfd.gpu_sharing, old_gfd.gpus_allocatable) == ("time-slicing", 8)
    for labels in (
        {"nvidia.com/gpu.replicas": "4", "nvidia.com/gpu.sharing-strategy": "none"},
        {"nvidia.com/gpu.replicas": "1"},
        {"nvidia.com/gpu.replicas": "²"},  # a digit Python's int() refuses
        {"nvidia.com/gpu.replicas": "99999"},
        {"nvidia.com/gpu.replicas": "four"},
    ):
        rec = node_with(labels, {"nvidia.com/gpu": "8"})
        assert (rec.node.gpu_sharing, rec.node.gpus_allocatable, rec.shares) == ("", 8, False), labels


def test_mig_nodes_mixed_and_single() -> None:
    mixed = {"nvidia.com/gpu": "4", "nvidia.com/mig-1g.10gb": "14", "nvidia.com/mig-3g.40gb": "4"}
    rec = node_with({"nvidia.com/mig.strategy": "mixed"}, mixed)
    assert (rec.node.gpu_sharing, rec.node.gpus_total, rec.node.gpus_allocatable) == ("mig", 8, 8)
    assert rec.node.mig_slices == (MigSlice("1g.10gb", 14, 0, 142), MigSlice("3g.40gb", 4, 0, 428))
    assert not rec.shares  # the GPU resource is whole GPUs there; slices are their own resources
    labelled = node_with({"nvidia.com/gpu.count": "10"}, mixed).node
    assert labelled.gpus_allocatable == 8 and labelled.gpus_total == 10
    single = {
        "nvidia.com/mig.strategy": "single",
        "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-40GB-MIG-3g.20gb",
        "nvidia.com/gpu.count": "16",  # the slices, under single
    }
    rec = node_with(single, {"nvidia.com/gpu": "16"})
    assert (rec.node.gpu_sharing, rec.node.gpus_allocatable, rec.node.gpu_model) == ("mig", 8, "A100")
    assert rec.node.mig_slices == (MigSlice("3g.20gb", 16, 0, 428),)
    assert rec.shares and rec.share(2) == (856, "3g.20gb")
    many = {f"nvidia.com/mig-1g.{i}gb": "1" for i in range(65)}
    with pytest.raises(MalformedObject, match="more than 64 MIG profiles"):
        node_with({}, many)


# --- endpoints and jobs --------------------------------------------------------------------------------


def test_deployment_with_its_hpa() -> None:
    rec = convert_deployment(items("deployments-list")["ml-prod/llm-serve"], kind="Deployment", gpu_names=GPU)
    assert (rec.replicas, rec.ready, rec.gpus, rec.gpu_model) == (3, 1, 1, "L4")
    assert (rec.image, rec.container) == ("vllm/vllm-openai:v0.9.0", "vllm")
    assert rec.template_labels == {"app": "llm-serve"}
    hpa = convert_hpa(items("hpa-list")["ml-prod/llm-serve"])
    assert (hpa.namespace, hpa.target) == ("ml-prod", "Deployment/llm-serve")
    assert (hpa.hpa.min_replicas, hpa.hpa.max_replicas) == (2, 8)
    assert (hpa.hpa.metric, hpa.hpa.target, hpa.hpa.current) == ("vllm_num_requests_waiting", 10.0, NA)
    endpoint = build_endpoint(rec, hpa.hpa, source="k8s:t")
    assert endpoint.key == "ml-prod/llm-serve" and endpoint.gpus == 3 and endpoint.hpa is hpa.hpa


def test_hpa_current_value_is_read() -> None:
    obj = copy.deepcopy(items("hpa-list")["ml-prod/llm-serve"])
    obj["status"]["currentMetrics"] = [
        {
            "type": "Pods",
            "pods": {"metric": {"name": "vllm_num_requests_waiting"}, "current": {"averageValue": "2500m"}},
        }
    ]
    assert convert_hpa(obj).hpa.current == 2.5


def test_all_ranks_unschedulable_is_queued_with_the_schedulers_words() -> None:
    rec = convert_job(items("jobs-list")["ml-prod/train-llama-70b"], gpu_names=GPU)
    assert (rec.workers, rec.gpus_per_worker, rec.gpu_model, rec.suspended) == (4, 8, "H100", False)
    job = build_job(rec, [p for p in pods("ml-prod") if p.pod.owner == rec.key], {}, source="k8s:t")
    assert job.state is JobState.QUEUED and job.placement == ()
    assert job.queue == "research" and job.image == "nvcr.io/nvidia/pytorch:25.01-py3"
    assert job.pending_reason.startswith("rank 0: 0/7 nodes are available")
    assert job.gpus == 32 and job.submitted_at > 0


def test_failed_scheduling_event_gives_the_reason() -> None:
    rec = convert_job(items("jobs-list")["ml-prod/train-llama-70b"], gpu_names=GPU)
    ranks = [p for p in pods("ml-prod") if p.pod.owner == rec.key]
    for r in ranks:
        r.unschedulable = ""  # as a pod the scheduler has not yet marked
    events = [e for e in map(convert_event, response("events-list")["items"]) if e is not None]
    messages = {key: message for key, message, _ in events}
    assert "ml-prod/train-llama-70b-0-qqjt8" in messages
    job = build_job(rec, ranks, messages, source="k8s:t")
    assert job.state is JobState.QUEUED
    assert job.pending_reason == f"rank 0: {messages['ml-prod/train-llama-70b-0-qqjt8']}"


def test_partly_placed_gang_is_queued_and_a_whole_one_runs() -> None:
    obj = copy.deepcopy(items("jobs-list")["ml-prod/train-llama-70b"])
    obj["metadata"]["namespace"] = "capture"  # the same Job, captured in both namespaces
    rec = convert_job(obj, gpu_names=GPU)
    ranks = [p for p in pods("capture") if p.pod.owner == rec.key]
    assert len(ranks) == 4
    job = build_job(rec, ranks, {}, source="s")
    assert job.state is JobState.QUEUED and job.pending_reason.startswith("rank 1: 0/7 nodes")
    placed = [p for p in ranks if p.pod.node]
    assert build_job(rec, placed, {}, source="s").state is JobState.STARTING  # 3 running of 4
    running = build_job(dataclasses.replace(rec, workers=3), placed, {}, source="s")
    assert running.state is JobState.RUNNING
    assert running.placement == (
        "ip-10-0-2-21.ec2.internal",
        "ip-10-0-1-11.ec2.internal",
        "ip-10-0-1-12.ec2.internal",
    )


def test_suspended_complete_and_failed_jobs() -> None:
    obj = copy.deepcopy(items("jobs-list")["ml-prod/train-llama-70b"])
    obj["spec"]["suspend"] = True
    job = build_job(convert_job(obj, gpu_names=GPU), [], {}, source="s")
    assert (job.state, job.pending_reason) == (JobState.QUEUED, "suspended, waiting in Kueue queue research")
    obj["spec"]["suspend"] = False
    obj["status"]["conditions"] = [{"type": "Complete", "status": "True"}]
    obj["status"]["completionTime"] = "2026-11-30T01:00:00Z"
    done = build_job(convert_job(obj, gpu_names=GPU), [], {}, source="s")
    assert done.state is JobState.SUCCEEDED and done.progress == 1.0 and done.finished_at > done.submitted_at
    obj["status"]["conditions"] = [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
    failed = build_job(convert_job(obj, gpu_names=GPU), [], {}, source="s")
    assert (failed.state, failed.pending_reason) == (JobState.FAILED, "BackoffLimitExceeded")


# --- PDBs, events, errors ------------------------------------------------------------------------------


def test_pdb() -> None:
    rec = convert_pdb(items("pdb-list")["ml-prod/llm-serve"], source="s")
    pdb = rec.pdb
    assert (pdb.min_available, pdb.max_unavailable, pdb.current_healthy, pdb.desired_healthy) == (
        3,
        None,
        1,
        3,
    )
    assert pdb.disruptions_allowed == 0
    assert rec.selector is not None and all(r.matches({"app": "llm-serve"}) for r in rec.selector)


def test_only_failed_scheduling_events_are_kept() -> None:
    events = response("events-list")["items"]
    kept = [e for e in map(convert_event, events) if e is not None]
    assert len(kept) == sum(1 for e in events if e["reason"] == "FailedScheduling") > 0
    assert all(key.startswith("ml-prod/") and when > 0 for key, _, when in kept)


def _at(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def test_warning_events_become_domain_events() -> None:
    captured = response("events-list")["items"]
    recs = [r for r in (convert_warning_event(e, source="k8s:t") for e in captured) if r is not None]
    assert len(recs) == sum(1 for e in captured if e["type"] == "Warning") == 15
    by_reason = Counter(r.event.reason for r in recs)
    assert by_reason == {"FailedScheduling": 13, "FailedGetPodsMetric": 1, "FailedComputeMetricsReplicas": 1}
    first = next(r for r in recs if r.event.key == "ml-prod/train-llama-70b-0-qqjt8")
    assert (first.event.kind, first.event.warning, first.event.count, first.event.source) == (
        "pod",
        True,
        1,
        "k8s:t",
    )
    assert first.event.time == _at("2026-11-29T23:03:30.682946Z")  # eventTime: the scheduler's recorder
    assert first.event.message.startswith("0/7 nodes are available: 1 node(s) had untolerated taint(s)")
    assert first.scheduling is not None and first.scheduling[0] == first.event.key
    hpa = next(r for r in recs if r.event.reason == "FailedGetPodsMetric")
    # The kubelet-style recorder: lastTimestamp is the last of its 2 occurrences.
    assert (hpa.event.kind, hpa.event.key, hpa.event.count) == (
        "horizontalpodautoscaler",
        "ml-prod/llm-serve",
        2,
    )
    assert hpa.event.time == _at("2026-11-29T23:04:00Z") and hpa.scheduling is None


def test_a_warning_event_s_time_kind_and_key() -> None:
    base = {
        "metadata": {"name": "gpu-1.18", "namespace": "default", "creationTimestamp": "2026-11-29T23:00:00Z"},
        "involvedObject": {"kind": "Node", "name": "gpu-1", "namespace": ""},
        "type": "Warning",
        "reason": "SystemOOM",
        "message": "System OOM encountered, victim process: python\x1b[31m \u202eevil",
    }
    rec = convert_warning_event(base, source="s")
    assert rec is not None and rec.scheduling is None
    e = rec.event
    assert (e.kind, e.key, e.reason, e.count, e.time) == (
        "node",
        "gpu-1",
        "SystemOOM",
        1,
        _at("2026-11-29T23:00:00Z"),
    )
    assert e.message == "System OOM encountered, victim process: python evil"
    # A node event that names a namespace (kubelet writes "default") is still keyed by the node's name.
    named = {**base, "involvedObject": {"kind": "Node", "name": "gpu-1", "namespace": "default"}}
    assert (r := convert_warning_event(named, source="s")) is not None and r.event.key == "gpu-1"
    times = {
        "firstTimestamp": "2026-11-29T23:01:00Z",
        "eventTime": "2026-11-29T23:02:00.000000Z",
        "lastTimestamp": "2026-11-29T23:03:00Z",
        "series": {"count": 7, "lastObservedTime": "2026-11-29T23:04:00.000000Z"},
    }
    order = ["series", "lastTimestamp", "eventTime", "firstTimestamp"]
    for i, field in enumerate(order):  # the first present of these, in this order, is the time
        obj = {**base, **{k: times[k] for k in order[i:]}}
        rec = convert_warning_event(obj, source="s")
        assert rec is not None
        assert rec.event.time == _at(f"2026-11-29T23:0{4 - i}:00Z"), field
        assert rec.event.count == (7 if field == "series" else 1)
    for kind, word in [
        ("Job", "job"),
        ("Deployment", "deployment"),
        ("ReplicaSet", "replicaset"),
        ("Lease", "lease"),
    ]:
        obj = {**base, "involvedObject": {"kind": kind, "name": "x", "namespace": "ml"}}
        assert (r := convert_warning_event(obj, source="s")) is not None
        assert (r.event.kind, r.event.key) == (word, "ml/x")
    assert convert_warning_event({**base, "type": "Normal"}, source="s") is None
    assert convert_warning_event({**base, "count": 3}, source="s").event.count == 3  # type: ignore[union-attr]
    with pytest.raises(MalformedObject, match="lastTimestamp is not a time"):
        convert_warning_event({**base, "lastTimestamp": "yesterday"}, source="s")


def _pod_with(status: dict[str, Any]) -> PodRec:
    obj = {
        "metadata": {"name": "p", "namespace": "ml", "creationTimestamp": "2026-11-29T22:00:00Z"},
        "spec": {"containers": [{"name": "server"}, {"name": "sidecar"}]},
        "status": {"phase": "Running", **status},
    }
    rec = convert_pod(obj, source="s", gpu_names=GPU)
    assert rec is not None
    return rec


def test_pod_facts_restarts_reason_containers_and_oom_kills() -> None:
    oom = {"terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-29T23:05:00Z"}}
    crash = _pod_with(
        {
            "containerStatuses": [
                {
                    "name": "server",
                    "restartCount": 4,
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                    "lastState": oom,
                },
                {"name": "sidecar", "restartCount": 1, "state": {"running": {}}},
            ]
        }
    )
    pod = crash.pod
    assert (pod.restarts, pod.reason, pod.containers) == (5, "CrashLoopBackOff", ("server", "sidecar"))
    assert pod.created_at == _at("2026-11-29T22:00:00Z")
    (e,) = crash.events
    assert (e.time, e.kind, e.key, e.reason, e.warning, e.source) == (
        _at("2026-11-29T23:05:00Z"),
        "pod",
        "ml/p",
        "OOMKilled",
        True,
        "s",
    )
    assert e.message == "container server was OOM-killed"
    # Running again after the kill: the last termination is its reason.
    again = _pod_with(
        {
            "containerStatuses": [
                {"name": "server", "restartCount": 1, "state": {"running": {}}, "lastState": oom}
            ]
        }
    )
    assert (again.pod.reason, again.pod.restarts, len(again.events)) == ("OOMKilled", 1, 1)
    # A clean exit says nothing; the pod's own reason (an eviction) does.
    done = {"terminated": {"reason": "Completed", "exitCode": 0, "finishedAt": "2026-11-29T23:05:00Z"}}
    evicted = _pod_with({"reason": "Evicted", "containerStatuses": [{"name": "server", "state": done}]})
    assert (evicted.pod.reason, evicted.pod.restarts, evicted.events) == ("Evicted", 0, ())
    # An OOM kill without a time is the pod's reason, and no event at a made-up time.
    untimed = {"terminated": {"reason": "OOMKilled", "exitCode": 137}}
    assert _pod_with({"containerStatuses": [{"name": "server", "state": untimed}]}).events == ()
    assert _pod_with({}).pod.reason == ""


def test_pdb_named_in_an_eviction_refusal() -> None:
    causes = response("eviction-pdb")["details"]["causes"]
    assert pdb_of_message("ml-prod", causes[0]["message"]) == "ml-prod/llm-serve"
    assert pdb_of_message("ml-prod", "something else") == ""


# --- small parsers -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product", "model"),
    [
        ("NVIDIA-H100-80GB-HBM3", "H100"),
        ("NVIDIA-L4", "L4"),
        ("NVIDIA-A100-SXM4-40GB-MIG-1g.5gb", "A100"),
        ("NVIDIA-H200", "H200"),
        ("NVIDIA-L40S", "L40S"),
        ("Tesla-T4", "T4"),
        ("NVIDIA-RTX-PRO-6000", "RTX"),
        ("", ""),
    ],
)
def test_short_gpu_model(product: str, model: str) -> None:
    assert short_gpu_model(product) == model


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("8", 8),
        ("500m", Decimal("0.5")),
        ("64Gi", 64 * 2**30),
        ("1e3", 1000),
        (2, 2),
        ("100n", Decimal("1e-7")),
    ],
)
def test_parse_quantity(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


_SUFFIX = st.sampled_from(
    ["", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
)


@settings(max_examples=400, deadline=None)
@given(
    sign=st.sampled_from(["", "+", "-"]),
    whole=st.integers(0, 99_999),
    fraction=st.one_of(st.just(""), st.integers(0, 999).map(lambda f: f".{f}")),
    exponent=st.one_of(st.just(""), st.integers(-9, 9).map(lambda e: f"e{e}")),
    suffix=_SUFFIX,
)
def test_parse_quantity_agrees_with_the_kubernetes_library(
    sign: str, whole: int, fraction: str, exponent: str, suffix: str
) -> None:
    # The kubernetes client's own parser is the reference (not imported at run time: it costs 0.25 s to load
    # and has no range or length guard, "1e999999999Ki" raises decimal.Overflow there).
    from kubernetes.utils import parse_quantity as reference

    text = f"{sign}{whole}{fraction}{exponent if not suffix else ''}{suffix}"
    expected = reference(text)
    if abs(expected) >= 2**63:
        with pytest.raises(MalformedObject):
            parse_quantity(text)
    else:
        assert parse_quantity(text) == expected, text


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("x", "is not a quantity"),
        (True, "is not a quantity"),
        (None, "is not a quantity"),
        ([8], "is not a quantity"),
        ("8" * 65, "is not a quantity"),
        ("1.2.3", "is not a quantity"),
        ("1e999999999Ki", "is out of range"),
        (float("inf"), "is out of range"),
        (float("nan"), "is out of range"),
        (2**63, "is out of range"),
        ("9Ei", "is out of range"),
    ],
)
def test_a_quantity_that_does_not_parse_is_malformed(value: object, why: str) -> None:
    with pytest.raises(MalformedObject) as info:
        parse_quantity(value, "status.allocatable[nvidia.com/gpu]")
    assert str(info.value) == f"status.allocatable[nvidia.com/gpu] {why}"


def test_label_selectors() -> None:
    sel = parse_selector("app=llm, tier in (a, b),!legacy,team!=x,gpu")
    ok = {"app": "llm", "tier": "b", "team": "y", "gpu": ""}
    assert all(r.matches(ok) for r in sel)
    for bad in ({**ok, "tier": "c"}, {**ok, "legacy": "1"}, {**ok, "team": "x"}, {"app": "llm", "tier": "a"}):
        assert not all(r.matches(bad) for r in sel)
    assert parse_selector("") == ()
    with pytest.raises(ValueError, match="malformed"):
        parse_selector("a b=c")
    assert selector_matches(
        {"matchExpressions": [{"key": "app", "operator": "In", "values": ["x"]}]}, {"app": "x"}
    )
    assert selector_matches({}, {"app": "x"})  # empty selects everything
    assert not selector_matches(None, {"app": "x"})  # null selects nothing


# --- hostile and malformed objects ---------------------------------------------------------------------


def test_malformed_objects_name_the_field() -> None:
    pod = copy.deepcopy(response("pods-list-all")["items"][0])
    cases: list[tuple[Callable[[dict[str, Any]], None], str]] = [
        (lambda o: o["metadata"].__setitem__("ownerReferences", 5), "metadata.ownerReferences is not a list"),
        (lambda o: o.__setitem__("metadata", []), "metadata is not an object"),
        (lambda o: o["status"].__setitem__("conditions", "x"), "status.conditions is not a list"),
        (
            lambda o: o["metadata"]["labels"].__setitem__("a", 1),
            "metadata.labels has a value that is not a string",
        ),
        (lambda o: o["metadata"].__setitem__("name", ""), "metadata.name is missing"),
        (
            lambda o: o["metadata"].__setitem__("creationTimestamp", "yesterday"),
            "metadata.creationTimestamp is not a time",
        ),
        (
            lambda o: o["spec"]["containers"][0].__setitem__(
                "resources", {"limits": {"nvidia.com/gpu": "1e15"}}
            ),
            f"spec.containers.resources[nvidia.com/gpu] is more than {MAX_DEVICES} devices",
        ),
    ]
    for change, why in cases:
        obj = copy.deepcopy(pod)
        change(obj)
        with pytest.raises(MalformedObject) as info:
            convert_pod(obj, source="s", gpu_names=GPU)
        assert str(info.value) == why
    with pytest.raises(MalformedObject, match="the object is not a JSON object"):
        object_key(5)  # type: ignore[arg-type]


def test_a_malformed_node_gpu_count_and_time_are_refused() -> None:
    obj = copy.deepcopy(items("nodes-list")["gpu-node-1"])
    obj["status"]["allocatable"]["nvidia.com/gpu"] = "1e15"  # one Gpu per device: 10¹⁵ would never end
    with pytest.raises(MalformedObject, match=r"status.allocatable\[nvidia.com/gpu\] is more than 1024"):
        convert_node(obj, source="s", gpu_names=GPU, rack_label="")
    job = copy.deepcopy(items("jobs-list")["ml-prod/train-llama-70b"])
    job["status"]["startTime"] = "2026-13-40T25:00:00Z"
    with pytest.raises(MalformedObject, match=r"status\.startTime is not a time"):
        convert_job(job, gpu_names=GPU)


def test_a_time_without_a_zone_is_utc_not_the_machines(monkeypatch: pytest.MonkeyPatch) -> None:
    job = copy.deepcopy(items("jobs-list")["ml-prod/train-llama-70b"])
    job["metadata"]["creationTimestamp"] = "2026-11-29T23:03:30"
    job["status"]["startTime"] = "2026-11-29T23:03:30Z"
    monkeypatch.setenv("TZ", "America/New_York")  # a machine five hours off UTC
    time.tzset()
    try:
        rec = convert_job(job, gpu_names=GPU)
    finally:
        monkeypatch.undo()
        time.tzset()
    assert rec.created == rec.started == 1795993410.0


DNS_LABEL = r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?"


@given(
    st.from_regex(rf"\A{DNS_LABEL}(\.{DNS_LABEL}){{0,3}}\Z").filter(lambda s: len(s) <= 253),
    st.from_regex(r"\A([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?\Z"),
)
def test_names_kubernetes_validates_come_out_unchanged(name: str, value: str) -> None:
    key = f"{name}/{value[:63] or 'x'}"
    assert clean(name) == name and clean(value) == value
    assert clean(key, LABEL_KEY_LIMIT) == key
    pod = copy.deepcopy(response("pods-list-all")["items"][0])
    pod["metadata"].update(name=name, namespace=name[:63].rstrip(".-") or "ns", labels={key: value})
    rec = convert_pod(pod, source="s", gpu_names=GPU)
    assert rec is not None and rec.pod.name == name and rec.labels == {key: value}


# The fuzzer: realistic objects (the captured ones, with every optional field the converters read filled
# in), changed in one to three places anywhere in them: a value replaced by any JSON value (hostile
# strings weighted up), a string wrapped in escapes, a key added to an object.

ESCAPES = ["\x1b[2J", "\x1b]0;title\x07", "\x1b]52;c;Zm9v\x1b\\", "\x9b31m", "\x1bP+q\x1b\\", "\x07", "\x00"]
INVISIBLE = ["\u202e", "\u2066", "\u200b", "\u200d", "\ufeff", "\u00ad", "\ud800"]
WORDS = [
    "8",
    "500m",
    "1e3",
    "64Gi",
    "1e400",
    "NaN",
    "-1",
    "1e15",
    "0.5",
    "2026-11-29T23:03:30Z",
    "2026-11-29T23:03:30",
    "0001-01-01T00:00:00+23:59",
    "True",
    "False",
    "Ready",
    "PodScheduled",
    "Failed",
    "Complete",
    "Running",
    "Pending",
    "ReplicaSet",
    "Deployment",
    "Job",
    "Pod",
    "FailedScheduling",
    "Pods",
    "Resource",
    "External",
    "In",
    "NotIn",
    "Exists",
    "nvidia.com/gpu",
    "NVIDIA-H100-80GB-HBM3",
    "NVIDIA-A100-SXM4-40GB-MIG-1g.5gb",
    "Always",
    "250m",
    "1Gi",
    "time-slicing",
    "mps",
    "single",
    "p5.48xlarge",
    "50%",
    "",
    " ",
]
KEYS = [
    "metadata",
    "name",
    "namespace",
    "labels",
    "annotations",
    "ownerReferences",
    "kind",
    "controller",
    "spec",
    "status",
    "conditions",
    "type",
    "message",
    "reason",
    "containers",
    "initContainers",
    "resources",
    "requests",
    "limits",
    "nvidia.com/gpu",
    "nvidia.com/gpu.shared",
    "nvidia.com/mig-1g.10gb",
    "nvidia.com/gpu.replicas",
    "cpu",
    "memory",
    "overhead",
    "restartPolicy",
    "image",
    "nodeName",
    "taints",
    "key",
    "value",
    "effect",
    "metric",
    "target",
    "current",
    "averageValue",
    "matchLabels",
    "matchExpressions",
    "values",
    "operator",
    "emptyDir",
    "volumes",
    "template",
    "kubernetes.io/config.mirror",
    COMPLETION_INDEX,
]

hostile_text = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(WORDS + ESCAPES + INVISIBLE),
    st.builds(
        lambda head, piece, n: head + piece * n,
        st.sampled_from(["", "Ready", "nvcr.io/x:1"]),
        st.sampled_from(["y", "é", "日", *ESCAPES, *INVISIBLE]),
        st.integers(0, 6000),
    ),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**80), max_value=2**80),
    st.floats(allow_nan=True, allow_infinity=True),
    hostile_text,
)
json_values = st.recursive(
    json_scalars,
    lambda kids: (
        st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(KEYS) | hostile_text, kids, max_size=3)
    ),
    max_leaves=8,
)


def _stripped(obj: dict[str, Any]) -> dict[str, Any]:
    obj = copy.deepcopy(obj)
    obj["metadata"].pop("managedFields", None)  # never read: mutations there would test nothing
    return obj


def full_objects() -> dict[str, dict[str, Any]]:
    """One object per converter, every optional field it reads present (so that mutations reach them)."""
    node = _stripped(items("nodes-list")["ip-10-0-1-12.ec2.internal"])
    node["spec"].update(taints=[{"key": "k", "value": "v", "effect": "NoSchedule"}], unschedulable=False)
    node["metadata"]["labels"].update(
        {
            "nvidia.com/gpu.replicas": "1",  # "8" there makes it a time-sliced node
            "nvidia.com/gpu.sharing-strategy": "none",
            "nvidia.com/mig.strategy": "mixed",
        }
    )
    node["status"]["allocatable"]["nvidia.com/mig-1g.10gb"] = "7"
    pod = _stripped(
        next(
            o
            for o in response("pods-list-all")["items"]
            if o["metadata"]["name"] == "train-llama-70b-1-8wp4c"
        )
    )
    pod["spec"]["initContainers"] = [
        {"name": "init", "resources": {"limits": {"nvidia.com/gpu": "2"}}},
        {
            "name": "proxy",
            "restartPolicy": "Always",
            "resources": {"requests": {"cpu": "250m", "memory": "1Gi"}},
        },
    ]
    pod["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/mig-1g.10gb"] = "1"
    pod["spec"]["overhead"] = {"cpu": "250m", "memory": "120Mi"}
    pod["spec"]["resources"] = {"requests": {"memory": "8Gi"}}
    pod["status"]["reason"] = "Evicted"
    pod["status"]["containerStatuses"] = [
        {
            "name": "trainer",
            "restartCount": 3,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
            "lastState": {
                "terminated": {"reason": "OOMKilled", "exitCode": 137, "finishedAt": "2026-11-29T23:05:00Z"}
            },
        }
    ]
    deployment = _stripped(items("deployments-list")["ml-prod/llm-serve"])
    job = _stripped(items("jobs-list")["ml-prod/train-llama-70b"])
    job["spec"]["suspend"] = False
    job["spec"]["template"]["spec"]["priority"] = 100
    job["status"].update(
        conditions=[{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded", "message": "m"}],
        startTime="2026-11-29T23:03:30Z",
        completionTime="2026-11-29T23:04:30Z",
        succeeded=1,
    )
    hpa = _stripped(items("hpa-list")["ml-prod/llm-serve"])
    hpa["status"]["currentMetrics"] = [
        {
            "type": "Pods",
            "pods": {"metric": {"name": "vllm_num_requests_waiting"}, "current": {"averageValue": "2"}},
        }
    ]
    pdb = _stripped(items("pdb-list")["ml-prod/llm-serve"])
    pdb["spec"]["selector"]["matchExpressions"] = [{"key": "tier", "operator": "In", "values": ["a", "b"]}]
    event = _stripped(next(e for e in response("events-list")["items"] if e["reason"] == "FailedScheduling"))
    warning = copy.deepcopy(event)
    warning.update(
        count=4,
        lastTimestamp="2026-11-29T23:09:00Z",
        firstTimestamp="2026-11-29T23:01:00Z",
        series={"count": 5, "lastObservedTime": "2026-11-29T23:10:00.000000Z"},
    )
    return {
        "node": node,
        "pod": pod,
        "deployment": deployment,
        "replicaset": _stripped(next(iter(items("replicasets-list").values()))),
        "job": job,
        "hpa": hpa,
        "pdb": pdb,
        "event": event,
        "warning_event": warning,
    }


FULL = full_objects()
CONVERTERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "node": lambda o: convert_node(o, source="s", gpu_names=GPU, rack_label=""),
    "pod": lambda o: convert_pod(o, source="s", gpu_names=GPU),
    "deployment": lambda o: convert_deployment(o, kind="Deployment", gpu_names=GPU),
    "replicaset": convert_replicaset,
    "job": lambda o: convert_job(o, gpu_names=GPU),
    "hpa": convert_hpa,
    "pdb": lambda o: convert_pdb(o, source="s"),
    "event": convert_event,
    "warning_event": lambda o: convert_warning_event(o, source="s"),
}


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every value in a JSON document, the document's own first."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


PATHS = {kind: list(paths(obj)) for kind, obj in FULL.items()}


def _has(container: Any, key: Any) -> bool:
    if isinstance(container, dict):
        return key in container
    return isinstance(container, list) and isinstance(key, int) and key < len(container)


def resolve(doc: Any, path: tuple[Any, ...]) -> tuple[Any, Any] | None:
    """(container, key) of ``path`` in ``doc``; None where an earlier change removed it (or the root)."""
    if not path:
        return None
    cur = doc
    for key in path[:-1]:
        if not _has(cur, key):
            return None
        cur = cur[key]
    return (cur, path[-1]) if _has(cur, path[-1]) else None


def _text_paths(doc: Any) -> list[tuple[Any, ...]]:
    out = []
    for path in paths(doc):
        spot = resolve(doc, path)
        if spot is not None and isinstance(spot[0][spot[1]], str):
            out.append(path)
    return out


TEXT_PATHS = {kind: _text_paths(obj) for kind, obj in FULL.items()}
"""The strings of each object: half the changes go to one of them (where cleaning is tested)."""


@st.composite
def broken(draw: st.DrawFn, kind: str) -> dict[str, Any]:
    """``FULL[kind]`` changed in one to three places."""
    doc: Any = copy.deepcopy(FULL[kind])
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(PATHS[kind]) | st.sampled_from(TEXT_PATHS[kind]))
        op = draw(st.sampled_from(["replace", "hostile", "wrap", "add key"]))
        event(f"{kind}: depth {min(len(path), 6)}{'+' if len(path) > 6 else ''}")
        if not path:
            if op == "replace":
                doc = draw(json_values)  # the object itself not an object
            continue
        event(f"{kind}: field {next((k for k in reversed(path) if isinstance(k, str)), '?')}")
        spot = resolve(doc, path)
        if spot is None:
            continue
        parent, key = spot
        if op == "replace":
            parent[key] = draw(json_values)
        elif op == "hostile":
            parent[key] = draw(hostile_text)
        elif op == "wrap" and isinstance(parent[key], str):
            parent[key] = draw(st.sampled_from(ESCAPES + INVISIBLE)) + parent[key] + draw(hostile_text)
        elif op == "add key" and isinstance(parent[key], dict):
            parent[key][draw(st.sampled_from(KEYS) | hostile_text)] = draw(json_values)
    return doc  # type: ignore[no-any-return]


CAPS = {
    "event.key": 2 * LIMIT + 1,
    "events[].key": 2 * LIMIT + 1,
    "scheduling[]": LONG_LIMIT,
    "message": LONG_LIMIT,
    "unschedulable": LONG_LIMIT,
    "failed": LONG_LIMIT,
    "pending_reason": LONG_LIMIT,
    "image": IMAGE_LIMIT,
    "<key>": LABEL_KEY_LIMIT,
    ".key": LABEL_KEY_LIMIT,
    "owner": 2 * LIMIT + 1,
    "target": 2 * LIMIT + 1,
    "placement[]": 2 * LIMIT + 1,
    "event[0]": 2 * LIMIT + 1,
    "event[1]": LONG_LIMIT,
}


def cap_of(where: str) -> int:
    """The most characters a field may hold: a name, a label value, a reason ``LIMIT``; a message
    ``LONG_LIMIT``; a label key and an image more (valid ones are never cut); ``ns/name`` keys two names."""
    return next((cap for suffix, cap in CAPS.items() if where.endswith(suffix)), LIMIT)


def strings(value: Any, where: str) -> Iterator[tuple[str, str]]:
    """Every string in a record or domain object, as (field path, text), mapping keys included."""
    if isinstance(value, str):
        yield where, value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from strings(getattr(value, f.name), f"{where}.{f.name}")
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield f"{where}<key>", k
            yield from strings(v, f"{where}[]")
    elif isinstance(value, tuple | list | frozenset):
        for i, v in enumerate(value):
            yield from strings(v, f"{where}[{i}]" if where == "event" else f"{where}[]")


def assert_clean_record(record: Any, where: str) -> None:
    for field_path, text in strings(record, where):
        assert is_clean(text), (field_path, text[:60])
        assert len(text) <= cap_of(field_path), (field_path, len(text))


@pytest.mark.parametrize("kind", list(FULL))
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_converter_returns_a_clean_record_or_says_the_object_is_malformed(
    kind: str, data: st.DataObject
) -> None:
    obj = data.draw(broken(kind))
    try:
        record = CONVERTERS[kind](obj)
    except MalformedObject as exc:
        why = str(exc)
        event(f"{kind}: malformed")
        assert is_clean(why) and len(why) < 160 and "\x1b" not in why
        return
    event(f"{kind}: converted")
    assert_clean_record(record, kind)
    if kind == "pod" and record is not None:
        # Its job, with a hostile scheduler's message (as convert_event leaves it): the gang's reason is
        # clean and capped too.
        job = convert_job(FULL["job"] | {"status": {}}, gpu_names=GPU)
        message = clean(data.draw(hostile_text), LONG_LIMIT)
        assert_clean_record(build_job(job, [record], {record.pod.key: message}, source="s"), "job")


HOSTILE_HEAD = "".join(ESCAPES) + "".join(INVISIBLE)
HOSTILE_TAIL = "\u202e\u200b\x1b[0m" + "y" * 5000


@pytest.mark.parametrize("kind", list(FULL))
def test_every_string_and_key_comes_out_clean(kind: str) -> None:
    """Field by field, exhaustively: each string of the full object wrapped in escapes, invisible
    characters and 5,000 more characters (a quantity or a time so wrapped is malformed), then a hostile key
    added to each of its objects (a label's key …)."""
    converted = 0
    for path in PATHS[kind]:
        for op in ("wrap", "key"):
            doc = copy.deepcopy(FULL[kind])
            spot = resolve(doc, path)
            target = doc if not path else spot[0][spot[1]] if spot is not None else None
            if op == "wrap" and isinstance(target, str) and spot is not None:
                spot[0][spot[1]] = HOSTILE_HEAD + target + HOSTILE_TAIL
            elif op == "key" and isinstance(target, dict):
                target[HOSTILE_HEAD + "key" + HOSTILE_TAIL] = HOSTILE_HEAD + "value" + HOSTILE_TAIL
            else:
                continue
            try:
                record = CONVERTERS[kind](doc)
            except MalformedObject:
                continue
            converted += 1
            assert_clean_record(record, kind)
    assert converted >= 15  # the wrapped fields that a converter takes as text, not the quantities


def test_the_fuzzer_reaches_the_fields_the_converters_read() -> None:
    """The paths it changes include the deep ones (a GPU request in a pod template, an HPA's current
    metric, a taint's key), not only the top of each object."""
    deep = {
        "job": ("spec", "template", "spec", "containers", 0, "resources", "requests", "nvidia.com/gpu"),
        "hpa": ("status", "currentMetrics", 0, "pods", "current", "averageValue"),
        "node": ("spec", "taints", 0, "key"),
        "pod": ("spec", "initContainers", 1, "resources", "requests", "memory"),
        "pdb": ("spec", "selector", "matchExpressions", 0, "values", 1),
        "event": ("involvedObject", "name"),
        "replicaset": ("metadata", "ownerReferences", 0, "controller"),
        "deployment": ("spec", "template", "spec", "nodeSelector", "nvidia.com/gpu.product"),
    }
    for kind, path in deep.items():
        assert path in PATHS[kind], kind
        assert resolve(FULL[kind], path) is not None
    # Every converter takes its full object as it is (the fuzzer starts from objects that convert).
    for kind, obj in FULL.items():
        assert CONVERTERS[kind](copy.deepcopy(obj)) is not None, kind
