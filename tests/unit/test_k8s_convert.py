"""Kubernetes JSON → domain objects, on the responses captured from a real kube-apiserver."""

from __future__ import annotations

import copy
import dataclasses
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from aios_tui.domain import NA, Health, JobState, PodPhase
from aios_tui.sources._k8s_convert import (
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
    gpu_request,
    parse_quantity,
    parse_selector,
    pdb_of_message,
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
    [("8", 8), ("500m", Decimal("0.5")), ("64Gi", 64 * 2**30), ("1e3", 1000), (2, 2), ("x", 0), (True, 0)],
)
def test_parse_quantity(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


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
