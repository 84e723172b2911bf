"""Benchmark the cloud sources: what one poll of N GPU instances costs, against the plain SDK listing.

Each cloud is the test suite's protocol-level server, in a child process of its own (so that the client's
CPU and memory below are the console's side alone; on a small machine the two still share the cores):

- **Google Cloud**: ``tests/gcp/server.py`` (``GoogleCloud``; every answer checked against Google's discovery
  documents, every request's self-signed JWT verified), ``page_size`` 500 (what the source asks, Compute
  Engine's ``maxResults`` ceiling), reached by google-cloud-compute / -container over REST with a service
  account key as Application Default Credentials.
- **Azure**: ``tests/azure/armserver.py`` (``ArmServer``, HTTPS, Entra ID's token endpoint; requests checked
  against Azure's API descriptions, answers not checked), pages of 1,000 (ARM's usual ``nextLink`` page),
  reached by azure-mgmt-compute / -containerservice with ``DefaultAzureCredential``'s client-secret sign-in.
- **AWS** (smaller: moto is slow at scale): moto's ``ThreadedMotoServer`` behind the tests' ``FaultProxy``
  (which counts requests by action), reached by boto3.

The fleet: ``--instances`` GPU instances (half per project / subscription), a mix of machine types, some
spot, some stopped, about 30 % standalone, 30 % in managed instance groups / VM scale sets, 40 % in GKE node
pools / AKS agent pools (each with a small CPU system pool beside it); instance objects carry what real ones
do (disks, network interfaces, service accounts, metadata, a GKE node's kube-env) so that pages weigh what
real pages weigh, less the largest GKE metadata scripts.

Per cloud: one warm-up of each, then ``--runs`` rounds of each, their order rotating from round to round:

- ``await source.fetch()`` (``build_sources`` of the cloud's settings: instances, pools, prices), and
- **the baseline**, the plain SDK listing of the same instances with no conversion, one thread per
  project / subscription as the source has: ``InstancesClient.aggregated_list`` iterated to the end
  (maxResults 500); ``virtual_machines.list_all()`` and ``list_all(status_only="true")``, and, as a second
  Azure baseline that lists every instance the source shows, also ``virtual_machine_scale_sets.list_all()``
  and each GPU Uniform scale set's ``virtual_machine_scale_set_vms.list(expand="instanceView")``; EC2
  ``DescribeInstances`` pages (the source's state filter).

Then three more fetches with timers around the provider's ``instances`` and ``pools`` calls, its
per-instance conversion and the source's own work after the listings: where the source's time goes.

Reported: wall-clock medians (and min–max), the ratio source / baseline (medians), this process's CPU (all
threads), the server process's CPU (GCP: of which checking answers against the discovery schemas, timed
around the server's own ``check``), the HTTP requests each made (counted by the server, per API method),
and memory, in a fresh process per kind (after imports and credentials): the peak RSS of its first poll
above the RSS before it (``VmHWM`` reset first; it includes the clients made and the SDK modules imported at
the first call), what it still holds after the poll (freed heap handed back with ``malloc_trim``), and the
peak of Python's own allocations in a later poll (tracemalloc, which does not
see protobuf's C arenas: for Google Cloud it undercounts). Also the round trip of one small request on a
kept-alive connection to each server, a floor under every request's time.

    .venv/bin/python bench/bench_clouds.py [--instances 1500] [--runs 5] [--clouds gcp azure aws]
                                           [--aws-instances 300]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import gc
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import statistics
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repository root: tests.*

from bench._util import machine

JSON = dict[str, Any]

GCP_PROJECTS = ("ml-train-4711", "ml-serve-0815")
GCP_PAGE = 500
AZURE_PAGE = 1000
AWS_REGIONS = ("us-east-1", "us-west-2")
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"


def split(total: int, weights: Sequence[float]) -> list[int]:
    """``total`` in parts proportional to ``weights`` (largest remainders), summing to ``total``."""
    raw = [total * w / sum(weights) for w in weights]
    out = [int(r) for r in raw]
    for i in sorted(range(len(raw)), key=lambda i: out[i] - raw[i])[: total - sum(out)]:
        out[i] += 1
    return out


def halves(n: int) -> list[int]:
    return [n - n // 2, n // 2]


# --- Google Cloud: the fleet --------------------------------------------------------------------------------


def _kube_env(cluster: str, pool: str) -> str:
    """A GKE node's ``kube-env`` metadata: a few kB of settings (real ones also carry certificates)."""
    lines = [f"CLUSTER_NAME: {cluster}", f"NODE_POOL: {pool}", "ENABLE_NODE_PROBLEM_DETECTOR: standalone"]
    lines += [
        f"KUBELET_ARG_{i}: --feature-gates=Flag{i}=true --node-labels=cloud.google.com/x{i}=y"
        for i in range(40)
    ]
    return "\n".join(lines)


def _gce_instance(p: Any, zone: str, name: str, machine: str, **kw: Any) -> JSON:
    """An instance as ``instances.aggregatedList`` sends it, with the parts real ones carry."""
    from tests.gcp.conftest import instance
    from tests.gcp.server import COMPUTE

    extra_metadata: list[JSON] = kw.pop("metadata", [])
    out = instance(p, zone, name, machine, **kw)
    region = zone.rsplit("-", 1)[0]
    out["cpuPlatform"] = "Intel Sapphire Rapids"
    out["labelFingerprint"] = "42WmSpB8rSM="
    out["startRestricted"] = False
    out["deletionProtection"] = False
    out["lastStartTimestamp"] = "2026-11-29T08:16:02.123-08:00"
    out["canIpForward"] = False
    out["disks"] = [
        {
            "kind": "compute#attachedDisk",
            "type": "PERSISTENT",
            "mode": "READ_WRITE",
            "source": f"{COMPUTE}projects/{p.id}/zones/{zone}/disks/{name}",
            "deviceName": "persistent-disk-0",
            "index": 0,
            "boot": True,
            "autoDelete": True,
            "licenses": [f"{COMPUTE}projects/cos-cloud/global/licenses/cos-pcid"],
            "interface": "SCSI",
            "guestOsFeatures": [
                {"type": t} for t in ("VIRTIO_SCSI_MULTIQUEUE", "SEV_CAPABLE", "UEFI_COMPATIBLE")
            ],
            "diskSizeGb": "200",
            "architecture": "X86_64",
        }
    ]
    n = len(p.instances)
    out["networkInterfaces"] = [
        {
            "kind": "compute#networkInterface",
            "network": f"{COMPUTE}projects/{p.id}/global/networks/default",
            "subnetwork": f"{COMPUTE}projects/{p.id}/regions/{region}/subnetworks/default",
            "networkIP": f"10.{n // 65536 % 256}.{n // 256 % 256}.{n % 256}",
            "name": "nic0",
            "fingerprint": "m8Wq3xkZc1E=",
            "stackType": "IPV4_ONLY",
            "nicType": "GVNIC",
            "aliasIpRanges": [{"ipCidrRange": f"10.{64 + n // 256 % 64}.{n % 256}.0/24"}],
        }
    ]
    out["serviceAccounts"] = [
        {
            "email": f"{p.number}-compute@developer.gserviceaccount.com",
            "scopes": [
                "https://www.googleapis.com/auth/devstorage.read_only",
                "https://www.googleapis.com/auth/logging.write",
                "https://www.googleapis.com/auth/monitoring",
            ],
        }
    ]
    out["tags"] = {"items": ["gpu", "allow-ssh"], "fingerprint": "6smc4R4d39I="}
    out["shieldedInstanceConfig"] = {
        "enableSecureBoot": False,
        "enableVtpm": True,
        "enableIntegrityMonitoring": True,
    }
    meta = out.setdefault(
        "metadata", {"kind": "compute#metadata", "fingerprint": "Bf1tcY4SqaE=", "items": []}
    )
    meta.setdefault("items", []).extend(extra_metadata)
    return out


@dataclass
class Fleet:
    """What was seeded: instance counts and pools, and the size of an instance object."""

    gpu: int = 0
    other: int = 0
    pools: Counter[str] = field(default_factory=Counter)
    object_bytes: int = 0
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        pools = ", ".join(f"{n} {k}" for k, n in sorted(self.pools.items()))
        avg = self.object_bytes / max(1, self.gpu + self.other) / 1000
        size = f"; {avg:.1f} kB of JSON per instance as listed" if self.object_bytes else ""
        return f"{self.gpu:,} GPU instances + {self.other} CPU-only ones; pools: {pools}{size}"


def seed_gcp(cloud: Any, n: int) -> Fleet:
    """Two projects of ``n`` GPU instances in all: GKE (40 %), managed instance groups (30 %), standalone."""
    from tests.gcp.conftest import created_by, mig, template
    from tests.gcp.server import COMPUTE, Project

    cloud.reset()
    fleet = Fleet()
    spot = {"provisioningModel": "SPOT", "preemptible": False, "instanceTerminationAction": "STOP"}
    for pi, (pid, count) in enumerate(zip(GCP_PROJECTS, halves(n), strict=True)):
        p = Project(pid, f"{pi + 1}{'0' * 11}")
        cloud.projects[pid] = p
        gke, migs, solo = split(count, [0.4, 0.3, 0.3])

        def add(zone: str, name: str, machine_type: str, **kw: Any) -> None:
            obj = _gce_instance(p, zone, name, machine_type, **kw)  # noqa: B023
            p.instances.append(obj)  # noqa: B023
            fleet.object_bytes += len(json.dumps(obj))

        # GKE: cluster "train" (regional, 3 zones): h100 (autoscaled) and l4 node pools and a CPU pool;
        # cluster "infer" (zonal): a spot A100 pool.
        pools = [
            ("train", "us-central1", ("us-central1-a", "us-central1-b", "us-central1-c"), "h100",
             "a3-highgpu-8g", ("nvidia-h100-80gb", 8), False, True),
            ("train", "us-central1", ("us-central1-a", "us-central1-b"), "l4", "g2-standard-24",
             ("nvidia-l4", 2), False, False),
            ("infer", "us-east1-b", ("us-east1-b",), "a100-spot", "a2-highgpu-2g",
             ("nvidia-tesla-a100", 2), True, False),
            ("train", "us-central1", ("us-central1-c",), "default-pool", "e2-standard-8", None, False, False),
        ]  # fmt: skip
        sizes = [*split(gke, [0.5, 0.3, 0.2]), 3]
        clusters: dict[str, JSON] = {}
        for (cname, location, zones, pool, mtype, accel, is_spot, auto), size in zip(
            pools, sizes, strict=True
        ):
            labels = {"goog-k8s-cluster-name": cname, "goog-k8s-node-pool-name": pool}
            tpl = template(p, f"gke-{cname}-{pool}-1a2b3c4d", mtype, gpus=accel, spot=is_spot, labels=labels)
            p.templates.append(tpl)
            groups = []
            for zone, zsize in zip(zones, split(size, [1] * len(zones)), strict=True):
                g = mig(p, f"gke-{cname}-{pool}-1a2b3c4d-grp", tpl, zsize, zone=zone)
                p.migs.append(g)
                groups.append(g)
                for k in range(zsize):
                    add(
                        zone,
                        f"gke-{cname}-{pool}-1a2b3c4d-{zone[-1]}{k:04x}",
                        mtype,
                        gpus=accel,
                        labels={**labels, "goog-gke-node": ""},
                        created_by=created_by(p, zone, g["name"]),
                        scheduling=spot if is_spot else None,
                        metadata=[
                            {"key": "cluster-name", "value": cname},
                            {"key": "cluster-location", "value": location},
                            {"key": "kube-labels", "value": ",".join(f"{k}={v}" for k, v in labels.items())},
                            {"key": "kube-env", "value": _kube_env(cname, pool)},
                            {"key": "gci-update-strategy", "value": "update_disabled"},
                            {"key": "disable-legacy-endpoints", "value": "true"},
                        ],
                    )
                    if accel:
                        fleet.gpu += 1
                    else:
                        fleet.other += 1
            np: JSON = {
                "name": pool,
                "config": {
                    "machineType": mtype,
                    "diskSizeGb": 200,
                    "labels": {"team": "ml"},
                    "spot": is_spot,
                    "imageType": "COS_CONTAINERD",
                    "oauthScopes": [CLOUD_PLATFORM],
                },
                "initialNodeCount": 1,
                "locations": list(zones),
                "instanceGroupUrls": [g["selfLink"] for g in groups],
                "status": "RUNNING",
                "version": "1.33.5-gke.1201000",
                "selfLink": f"https://container.googleapis.com/v1/projects/{pid}/locations/{location}/clusters/"
                f"{cname}/nodePools/{pool}",
            }
            if accel:
                np["config"]["accelerators"] = [
                    {"acceleratorType": accel[0], "acceleratorCount": str(accel[1])}
                ]
                fleet.pools["gke-nodepool"] += 1
            if auto:
                np["autoscaling"] = {"enabled": True, "minNodeCount": 0, "maxNodeCount": 200}
            c = clusters.setdefault(
                cname,
                {
                    "name": cname,
                    "location": location,
                    "locations": list(zones),
                    "status": "RUNNING",
                    "nodePools": [],
                    "selfLink": f"https://container.googleapis.com/v1/projects/{pid}/locations/{location}/"
                    f"clusters/{cname}",
                },
            )
            c["nodePools"].append(np)
        p.clusters = list(clusters.values())

        # Managed instance groups: four zonal A100 batch groups (one autoscaled), a regional spot T4 group
        # (autoscaled), an H100 group in Europe.
        groups_spec = [
            *[(f"a2-batch-{k}", "a2-highgpu-1g", ("nvidia-tesla-a100", 1), "us-central1-c", (), False)
              for k in range(4)],
            ("t4-serve", "n1-standard-8", ("nvidia-tesla-t4", 1), "", ("us-central1-a", "us-central1-b"),
             True),
            ("h100-eu", "a3-highgpu-8g", ("nvidia-h100-80gb", 8), "europe-west4-a", (), False),
        ]  # fmt: skip
        for (name, mtype, accel, zone, zones, is_spot), size in zip(
            groups_spec, split(migs, [1, 1, 1, 1, 2, 1]), strict=True
        ):
            region = (zone or zones[0]).rsplit("-", 1)[0]
            tpl = template(p, f"{name}-tpl", mtype, gpus=accel, spot=is_spot, region="" if zone else region)
            p.templates.append(tpl)
            g = (
                mig(p, name, tpl, size, zone=zone)
                if zone
                else mig(p, name, tpl, size, region=region, zones=zones)
            )
            p.migs.append(g)
            fleet.pools["mig"] += 1
            if name in ("a2-batch-0", "t4-serve"):
                where = f"zones/{zone}" if zone else f"regions/{region}"
                scaler: JSON = {
                    "kind": "compute#autoscaler",
                    "id": str(5000000000000000000 + len(p.autoscalers)),
                    "name": f"{name}-as",
                    "target": g["selfLink"],
                    "autoscalingPolicy": {"minNumReplicas": 0, "maxNumReplicas": 400, "mode": "ON"},
                    "selfLink": f"{COMPUTE}projects/{pid}/{where}/autoscalers/{name}-as",
                    "status": "ACTIVE",
                }
                scaler["zone" if zone else "region"] = f"{COMPUTE}projects/{pid}/{where}"
                p.autoscalers.append(scaler)
            for k in range(size):
                z = zone or zones[k % len(zones)]
                add(
                    z,
                    f"{name}-{k:04x}",
                    mtype,
                    gpus=accel,
                    created_by=created_by(p, z, name),
                    scheduling=spot if is_spot else None,
                )
                fleet.gpu += 1

        # Standalone machines: a mix of types, zones and states.
        kinds = [
            ("a3-highgpu-8g", ("nvidia-h100-80gb", 8), False),
            ("a2-ultragpu-1g", ("nvidia-a100-80gb", 1), False),
            ("g2-standard-8", None, False),  # its GPU known from the machine type (the bundled table)
            ("n1-standard-8", ("nvidia-tesla-t4", 2), True),
            ("a3-ultragpu-8g", ("nvidia-h200-141gb", 8), False),
        ]
        zones_all = ("us-central1-a", "us-central1-f", "us-west1-b", "europe-west4-a", "asia-southeast1-b")
        for k in range(solo):
            mtype, accel, is_spot = kinds[k % len(kinds)]
            status = "TERMINATED" if k % 20 == 7 else "PROVISIONING" if k % 37 == 11 else "RUNNING"
            add(
                zones_all[k % len(zones_all)],
                f"gpu-{mtype}-{k:04d}",
                mtype,
                gpus=accel,
                status=status,
                scheduling=spot if is_spot else None,
                labels={"team": ("research", "serving", "training")[k % 3]},
                metadata=[{"key": "startup-script", "value": "#!/bin/bash\nnvidia-smi -pm 1\n" * 8}],
            )
            fleet.gpu += 1
    return fleet


# --- Azure: the fleet ---------------------------------------------------------------------------------------

_SSH_KEY = "ssh-rsa " + "AAAAB3NzaC1yc2EAAAADAQABAAABgQ" * 18 + " azureuser@aios"


def _vm_body(sub: str, group: str, name: str) -> JSON:
    """What a VM's model carries beyond the helper's (storage, network, OS profile), as ARM lists it."""
    base = f"/subscriptions/{sub}/resourceGroups/{group}/providers"
    return {
        "storageProfile": {
            "imageReference": {
                "publisher": "microsoft-dsvm",
                "offer": "ubuntu-hpc",
                "sku": "2204",
                "version": "latest",
                "exactVersion": "22.04.2024102301",
            },
            "osDisk": {
                "osType": "Linux",
                "name": f"{name}_OsDisk_1_0123456789abcdef0123456789abcdef",
                "createOption": "FromImage",
                "caching": "ReadWrite",
                "managedDisk": {
                    "storageAccountType": "Premium_LRS",
                    "id": f"{base}/Microsoft.Compute/disks/{name}_OsDisk_1_0123456789abcdef0123456789abcdef",
                },
                "deleteOption": "Delete",
                "diskSizeGB": 256,
            },
            "dataDisks": [],
            "diskControllerType": "SCSI",
        },
        "networkProfile": {
            "networkInterfaces": [
                {
                    "id": f"{base}/Microsoft.Network/networkInterfaces/{name}-nic",
                    "properties": {"primary": True, "deleteOption": "Delete"},
                }
            ]
        },
        "diagnosticsProfile": {"bootDiagnostics": {"enabled": True}},
        "securityProfile": {"uefiSettings": {"secureBootEnabled": False, "vTpmEnabled": True}},
        "linux": {
            "disablePasswordAuthentication": True,
            "ssh": {"publicKeys": [{"path": "/home/azureuser/.ssh/authorized_keys", "keyData": _SSH_KEY}]},
            "provisionVMAgent": True,
            "patchSettings": {"patchMode": "ImageDefault", "assessmentMode": "ImageDefault"},
        },
    }


def _enrich(v: JSON, sub: str, group: str, name: str) -> JSON:
    body = _vm_body(sub, group, name)
    linux = body.pop("linux")
    v["properties"].update(body)
    v["properties"]["osProfile"].update(
        {"linuxConfiguration": linux, "secrets": [], "allowExtensionOperations": True}
    )
    return v


AZURE_GPU_SIZES = (
    "Standard_ND96isr_H100_v5",
    "Standard_NC24ads_A100_v4",
    "Standard_NC40ads_H100_v5",
    "Standard_NC8as_T4_v3",
    "Standard_ND96amsr_A100_v4",
)


def seed_azure(arm: Any, n: int, subscriptions: Sequence[str]) -> Fleet:
    """Two subscriptions of ``n`` GPU instances in all: AKS agent pools (40 %), Uniform scale sets (25 %), a
    Flexible scale set (5 %), plain VMs (30 %)."""
    from tests.azure.armserver import agent_pool, cluster, scale_set, scale_set_vm, vm

    fleet = Fleet()

    def add_scale_set(sub: Any, s: JSON, gpu: bool) -> None:
        sub.scale_sets.append(s)
        members = []
        for k in range(s["sku"]["capacity"]):
            m = scale_set_vm(s, k, "deallocated" if k % 25 == 24 else "running")
            group = s["id"].split("/")[4]
            members.append(_enrich(m, s["id"].split("/")[2], group, f"{s['name']}_{k}"))
            fleet.object_bytes += len(json.dumps(members[-1]))
        sub.scale_set_vms[s["id"].lower()] = members
        if gpu:
            fleet.gpu += len(members)
        else:
            fleet.other += len(members)

    for sid, count in zip(subscriptions, halves(n), strict=True):
        sub = arm.sub(sid)
        aks, uniform, flex, plain = split(count, [0.40, 0.25, 0.05, 0.30])

        # AKS: two clusters, each a CPU system pool of 3 and two GPU pools (h100 autoscaled over 3 zones,
        # a100 spot by hand), each pool backed by a Uniform scale set in the node resource group.
        for ci, (cname, csize) in enumerate(
            zip(("train-aks", "serve-aks"), split(aks, [0.6, 0.4]), strict=True)
        ):
            c = cluster(sid, "aks-rg", cname, location="eastus")
            sub.clusters.append(c)
            node_group = c["properties"]["nodeResourceGroup"]
            specs = [
                ("system", "Standard_D8s_v5", 3, None, (), False),
                ("h100", "Standard_ND96isr_H100_v5", 0, (0, 400), ("1", "2", "3"), False),
                ("a100", "Standard_NC24ads_A100_v4", 0, None, (), True),
            ]
            h100, a100 = split(csize, [0.6, 0.4])
            pools = []
            for name, size, fixed, auto, zones, spot in specs:
                count_here = fixed or (h100 if name == "h100" else a100)
                pools.append(
                    agent_pool(
                        c,
                        name,
                        size,
                        count_here,
                        autoscale=auto,
                        zones=zones,
                        spot=spot,
                        mode="System" if name == "system" else "User",
                    )
                )
                s = scale_set(
                    sid,
                    node_group,
                    f"aks-{name}-{12345678 + ci}-vmss",
                    size,
                    count_here,
                    zones=zones,
                    priority="Spot" if spot else "Regular",
                    tags={"aks-managed-poolName": name, "aks-managed-orchestrator": "Kubernetes:1.33.2"},
                    computer_prefix=f"aks-{name}-{12345678 + ci}-vmss",
                    single_placement_group=False,
                )
                add_scale_set(sub, s, gpu=name != "system")
                if name != "system":
                    fleet.pools["aks-agentpool"] += 1
            sub.agent_pools[c["id"].lower()] = pools

        # Uniform scale sets of their own (vmss pools): four, of 100 or fewer each where they fit a single
        # placement group.
        for k, size in enumerate(split(uniform, [1, 1, 1, 1])):
            vm_size = AZURE_GPU_SIZES[k % len(AZURE_GPU_SIZES)]
            s = scale_set(
                sid,
                "batch-rg",
                f"gpu-batch-{k}",
                vm_size,
                size,
                zones=("1", "2"),
                single_placement_group=size <= 100,
                priority="Spot" if k == 3 else "Regular",
            )
            add_scale_set(sub, s, gpu=True)
            fleet.pools["vmss"] += 1

        # A Flexible scale set: its VMs are in the VM list, naming it.
        fx = scale_set(
            sid,
            "flex-rg",
            "flex-h100",
            "Standard_NC40ads_H100_v5",
            flex,
            orchestration="Flexible",
            single_placement_group=False,
        )
        sub.scale_sets.append(fx)
        fleet.pools["vmss"] += 1
        for k in range(flex):
            name = f"flex-h100_{k:06x}"
            v = vm(sid, "flex-rg", name, "Standard_NC40ads_H100_v5", zone=str(1 + k % 3), scale_set=fx["id"])
            sub.vms.append(_enrich(v, sid, "flex-rg", name))
            fleet.object_bytes += len(json.dumps(v))
            fleet.gpu += 1

        # Plain VMs: a mix of sizes, regions and states; some spot.
        locations = ("eastus", "westeurope", "southcentralus")
        for k in range(plain):
            size = AZURE_GPU_SIZES[k % len(AZURE_GPU_SIZES)]
            group = ("ml-train", "ml-serve", "research")[k % 3]
            name = f"gpu-vm-{k:04d}"
            state = "deallocated" if k % 20 == 7 else "stopped" if k % 53 == 5 else "running"
            v = vm(
                sid,
                group,
                name,
                size,
                location=locations[k % 3],
                zone=str(1 + k % 3),
                state=state,
                priority="Spot" if k % 10 == 3 else "Regular",
                tags={"team": group},
            )
            sub.vms.append(_enrich(v, sid, group, name))
            fleet.object_bytes += len(json.dumps(v))
            fleet.gpu += 1
    return fleet


# --- AWS: the fleet -----------------------------------------------------------------------------------------

AWS_TYPES = ("p5.48xlarge", "p4d.24xlarge", "g5.12xlarge", "g6.12xlarge", "g6e.xlarge")


def seed_aws(url: str, n: int) -> Fleet:
    """``n`` GPU instances over two regions through boto3: standalone (60 %, some spot, some stopped) and
    Auto Scaling groups of launch templates (40 %), plus an EKS cluster with a managed node group."""
    import boto3

    fleet = Fleet()
    for region, count in zip(AWS_REGIONS, halves(n), strict=True):
        ec2 = boto3.client("ec2", region_name=region, endpoint_url=url)
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        subnets = [
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=f"{region}{z}")[
                "Subnet"
            ]["SubnetId"]
            for i, z in enumerate("abc", start=1)
        ]
        image = ec2.describe_images(
            Owners=["amazon"], Filters=[{"Name": "name", "Values": ["amzn2-ami-hvm*"]}]
        )
        ami = image["Images"][0]["ImageId"]
        solo, pooled = split(count, [0.6, 0.4])
        for k, size in enumerate(split(solo, [1] * len(AWS_TYPES))):
            if not size:
                continue
            kw: JSON = {"InstanceMarketOptions": {"MarketType": "spot"}} if k == 3 else {}
            tags = [{"ResourceType": "instance", "Tags": [{"Key": "team", "Value": "ml"}]}]
            ids = [
                i["InstanceId"]
                for i in ec2.run_instances(
                    ImageId=ami, MinCount=size, MaxCount=size, InstanceType=AWS_TYPES[k],
                    SubnetId=subnets[k % 3], TagSpecifications=tags, **kw,
                )["Instances"]
            ]  # fmt: skip
            if k == 1:
                ec2.stop_instances(InstanceIds=ids[: max(1, size // 10)])
            fleet.gpu += size
        asg = boto3.client("autoscaling", region_name=region, endpoint_url=url)
        for k, size in enumerate(split(pooled, [1, 1])):
            name = f"gpu-asg-{k}"
            ec2.create_launch_template(
                LaunchTemplateName=f"{name}-lt",
                LaunchTemplateData={"ImageId": ami, "InstanceType": AWS_TYPES[2 + k]},
            )
            asg.create_auto_scaling_group(
                AutoScalingGroupName=name,
                LaunchTemplate={"LaunchTemplateName": f"{name}-lt", "Version": "$Latest"},
                MinSize=0,
                MaxSize=1000,
                DesiredCapacity=size,
                VPCZoneIdentifier=",".join(subnets),
            )
            fleet.gpu += size
            fleet.pools["asg"] += 1
        eks = boto3.client("eks", region_name=region, endpoint_url=url)
        eks.create_cluster(
            name="prod",
            roleArn="arn:aws:iam::123456789012:role/eks",
            resourcesVpcConfig={"subnetIds": subnets},
        )
        eks.create_nodegroup(
            clusterName="prod",
            nodegroupName="h100",
            scalingConfig={"minSize": 0, "maxSize": 8, "desiredSize": 0},
            subnets=subnets,
            instanceTypes=["p5.48xlarge"],
            nodeRole="arn:aws:iam::123456789012:role/node",
            capacityType="ON_DEMAND",
        )
        fleet.pools["eks-nodegroup"] += 1
    fleet.notes.append("instances as moto describes them; the EKS node group has no nodes")
    return fleet


# --- the servers, each in a child process -------------------------------------------------------------------


class _Meter:
    """Time spent in some methods (wall, and the calling thread's CPU), summed over the threads calling them:
    a server's schema checks, or the source's parts in :func:`breakdown`. The timer is set on the object
    (an instance, a module): its code is unchanged."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sums: Counter[str] = Counter()

    def wrap(self, obj: Any, name: str, key: str) -> None:
        fn = getattr(obj, name)

        def timed(*args: Any, **kw: Any) -> Any:
            t, c = time.perf_counter(), time.thread_time()
            try:
                return fn(*args, **kw)
            finally:
                with self.lock:
                    self.sums[key] += time.perf_counter() - t
                    self.sums[f"{key} cpu"] += time.thread_time() - c

        setattr(obj, name, timed)


def _serve(cloud: str, n: int, secret: str, folder: str, pipe: multiprocessing.connection.Connection) -> None:
    """Start ``cloud``'s test server with ``n`` GPU instances, tell the parent where it is, then answer its
    questions (``stats``) until ``stop``."""
    meter = _Meter()
    stop: Callable[[], None]
    info: JSON = {}
    if cloud == "gcp":
        from cryptography.hazmat.primitives import serialization

        from tests.gcp.conftest import SA_EMAIL
        from tests.gcp.server import GoogleCloud

        gcp = GoogleCloud()
        gcp.page_size = GCP_PAGE
        key = serialization.load_pem_private_key(secret.encode(), password=None)
        gcp.register_key(SA_EMAIL, key.public_key())  # type: ignore[arg-type]
        fleet = seed_gcp(gcp, n)
        gcp.start()
        for api in gcp.apis.values():
            meter.wrap(api, "check", "schema checks")

        def counts() -> Counter[str]:
            with gcp.lock:
                return Counter(gcp.seen)

        def errors() -> list[str]:
            return list(gcp.schema_errors[:3])

        info["url"], stop = gcp.url, gcp.stop
    elif cloud == "azure":
        from tests.azure.armserver import ArmServer
        from tests.azure.conftest import CLIENT_ID, FAKE_SECRET, FAKE_TOKEN, SUB_A, SUB_B, TENANT

        arm = ArmServer(
            Path(folder),
            tenant=TENANT,
            client_id=CLIENT_ID,
            client_secret=FAKE_SECRET,
            token=FAKE_TOKEN,
            page_size=AZURE_PAGE,
        )
        fleet = seed_azure(arm, n, (SUB_A, SUB_B))
        arm.__enter__()

        def counts() -> Counter[str]:
            with arm.lock:
                out = Counter(arm.calls)
                out["entra (token, OpenID configuration)"] = len(arm.entra_requests)
                return out

        def errors() -> list[str]:
            return []

        info["url"], info["ca_file"] = arm.url, str(arm.ca_file)
        stop = lambda: arm.__exit__(None, None, None)  # noqa: E731
    else:
        from moto.server import ThreadedMotoServer

        from tests.aws.conftest import FAKE_KEY_ID, FAKE_SECRET, FaultProxy

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request

        os.environ.update(AWS_ACCESS_KEY_ID=FAKE_KEY_ID, AWS_SECRET_ACCESS_KEY=FAKE_SECRET)

        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        host, port = moto.get_host_and_port()
        upstream = f"http://{host}:{port}"
        fleet = seed_aws(upstream, n)
        proxy = FaultProxy(upstream)
        proxy.__enter__()

        def counts() -> Counter[str]:
            return Counter(proxy.seen)

        def errors() -> list[str]:
            return []

        info["url"] = proxy.url

        def stop() -> None:
            proxy.__exit__(None, None, None)
            moto.stop()

    info["fleet"] = fleet
    pipe.send(info)
    while True:
        cmd = pipe.recv()
        if cmd == "stop":
            break
        t = os.times()
        with meter.lock:
            sums = dict(meter.sums)
        pipe.send({"requests": counts(), "cpu": t.user + t.system, "sums": sums, "errors": errors()})
    stop()
    pipe.send("stopped")


class Server:
    """A test server in a child process: where it is, and its counters on demand."""

    def __init__(self, cloud: str, n: int, secret: str, folder: Path) -> None:
        ctx = multiprocessing.get_context("spawn")
        self._pipe, theirs = ctx.Pipe()
        self._process = ctx.Process(target=_serve, args=(cloud, n, secret, str(folder), theirs), daemon=True)
        self._process.start()
        self.info: JSON = self._pipe.recv()
        self.url: str = self.info["url"]
        self.fleet: Fleet = self.info["fleet"]

    def stats(self) -> JSON:
        self._pipe.send("stats")
        return self._pipe.recv()  # type: ignore[no-any-return]

    def stop(self) -> None:
        with contextlib.suppress(OSError, EOFError):
            self._pipe.send("stop")
            self._pipe.recv()
        self._process.join(10)
        if self._process.is_alive():
            self._process.terminate()


# --- the clients: each cloud's source and its baseline ------------------------------------------------------


def _env(cloud: str, server_info: JSON, folder: Path, secret: str) -> dict[str, str]:
    """The environment the cloud's SDKs are pointed at the server with, as the tests set it."""
    env: dict[str, str] = {}
    if cloud == "gcp":
        from tests.gcp.conftest import service_account

        key_file = folder / "sa.json"
        key_file.write_text(json.dumps(service_account(server_info["url"], secret)), encoding="utf-8")
        (folder / "gcloud").mkdir(exist_ok=True)
        env = {"GOOGLE_APPLICATION_CREDENTIALS": str(key_file), "CLOUDSDK_CONFIG": str(folder / "gcloud")}
    elif cloud == "azure":
        from tests.azure.conftest import CLIENT_ID, FAKE_SECRET, TENANT

        (folder / "azure-config").mkdir(exist_ok=True)
        env = {
            "AZURE_CONFIG_DIR": str(folder / "azure-config"),
            "AZURE_TENANT_ID": TENANT,
            "AZURE_CLIENT_ID": CLIENT_ID,
            "AZURE_CLIENT_SECRET": FAKE_SECRET,
            "AZURE_AUTHORITY_HOST": server_info["url"],
            "REQUESTS_CA_BUNDLE": server_info["ca_file"],
        }
    else:
        from tests.aws.conftest import FAKE_KEY_ID, FAKE_SECRET, FAKE_TOKEN

        (folder / "aws-config").write_text("")
        env = {
            "AWS_ACCESS_KEY_ID": FAKE_KEY_ID,
            "AWS_SECRET_ACCESS_KEY": FAKE_SECRET,
            "AWS_SESSION_TOKEN": FAKE_TOKEN,
            "AWS_CONFIG_FILE": str(folder / "aws-config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(folder / "aws-credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    return env


@contextlib.contextmanager
def environment(env: dict[str, str]) -> Iterator[None]:
    """``env`` set, and nothing of the machine's cloud settings, for the duration."""
    cleared = (
        "GOOGLE_",
        "CLOUDSDK_",
        "GCE_",
        "GCLOUD_",
        "AZURE_",
        "IDENTITY_",
        "MSI_",
        "IMDS_",
        "AWS_",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "SSL_CERT_FILE",
    )
    saved = dict(os.environ)
    for var in list(os.environ):
        if var.startswith(cleared):
            del os.environ[var]
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def make_source(cloud: str, url: str) -> Any:
    from aios_tui.config import AwsSettings, AzureSettings, GcpSettings, Settings
    from aios_tui.sources import build_sources

    if cloud == "gcp":
        settings = Settings(
            gcp=GcpSettings(enabled=True, projects=GCP_PROJECTS, endpoint_url=url, timeout=60.0)
        )
    elif cloud == "azure":
        from tests.azure.conftest import SUB_A, SUB_B

        settings = Settings(
            azure=AzureSettings(enabled=True, subscriptions=(SUB_A, SUB_B), endpoint_url=url, timeout=60.0)
        )
    else:
        settings = Settings(
            aws=AwsSettings(enabled=True, regions=AWS_REGIONS, endpoint_url=url, timeout=60.0)
        )
    (src,) = build_sources(settings)
    return src


class Baseline:
    """The plain SDK listing of the fleet's instances, no conversion: one thread per project /
    subscription / region, as the source has; each client made at its first use, as the source makes
    its own. Calling it lists everything and returns the count."""

    def __init__(self, cloud: str, url: str, *, scale_sets: bool = False) -> None:
        self.cloud, self.url, self.scale_sets = cloud, url, scale_sets
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.credential: Any = None
        # The SDKs imported here, as the providers import them with their module: a poll does not.
        if cloud == "gcp":
            import google.auth
            from google.cloud import compute_v1  # noqa: F401

            self.credential, _ = google.auth.default(scopes=[CLOUD_PLATFORM])
            self.scopes: tuple[str, ...] = GCP_PROJECTS
        elif cloud == "azure":
            from azure.identity import DefaultAzureCredential
            from azure.mgmt.compute import ComputeManagementClient  # noqa: F401

            from tests.azure.conftest import SUB_A, SUB_B

            self.credential = DefaultAzureCredential(
                exclude_interactive_browser_credential=True, disable_instance_discovery=True
            )
            self.scopes = (SUB_A, SUB_B)
        else:
            import boto3  # noqa: F401

            self.scopes = AWS_REGIONS
        self._pool = ThreadPoolExecutor(len(self.scopes), thread_name_prefix="baseline")

    def prepare(self) -> None:
        """Credentials (a token) before the first listing, as the source's ``begin``."""
        if self.cloud == "azure":
            self.credential.get_token(f"{self.url}/.default")

    def _client(self, scope: str) -> Any:
        with self._lock:
            if scope in self._clients:
                return self._clients[scope]
            if self.cloud == "gcp":
                from google.api_core.client_options import ClientOptions
                from google.cloud import compute_v1

                options = ClientOptions(api_endpoint=self.url)
                made = next(iter(self._clients.values()), None) or compute_v1.InstancesClient(
                    credentials=self.credential, transport="rest", client_options=options
                )  # one client for every project, as the source has
            elif self.cloud == "azure":
                from azure.mgmt.compute import ComputeManagementClient

                made = ComputeManagementClient(
                    self.credential, scope, base_url=self.url, credential_scopes=[f"{self.url}/.default"]
                )
            else:
                import boto3

                made = boto3.client("ec2", region_name=scope, endpoint_url=self.url)
            self._clients[scope] = made
            return made

    def _one(self, scope: str) -> int:
        c = self._client(scope)
        if self.cloud == "gcp":
            pager = c.aggregated_list(request={"project": scope, "max_results": GCP_PAGE})
            return len([i for _, scoped in pager for i in scoped.instances])
        if self.cloud == "azure":
            vms = list(c.virtual_machines.list_all())
            statuses = list(c.virtual_machines.list_all(status_only="true"))
            assert len(vms) == len(statuses)
            n = len(vms)
            if self.scale_sets:
                for s in c.virtual_machine_scale_sets.list_all():
                    if s.orchestration_mode == "Flexible" or s.sku.name not in AZURE_GPU_SIZES:
                        continue
                    group = s.id.split("/")[4]
                    n += len(list(c.virtual_machine_scale_set_vms.list(group, s.name, expand="instanceView")))
            return n
        states = ["pending", "running", "stopping", "stopped", "shutting-down"]  # the source's filter
        pages = c.get_paginator("describe_instances").paginate(
            Filters=[{"Name": "instance-state-name", "Values": states}]
        )
        return len([i for page in pages for r in page["Reservations"] for i in r["Instances"]])

    def __call__(self) -> int:
        return sum(self._pool.map(self._one, self.scopes))

    def close(self) -> None:
        self._pool.shutdown()
        for c in {id(c): c for c in self._clients.values()}.values():
            if self.cloud == "gcp":
                c.transport.close()
            elif self.cloud == "azure":
                c.close()
        if self.cloud == "azure":
            self.credential.close()


def round_trip(cloud: str, info: JSON, tries: int = 20) -> float:
    """Median seconds of one small request on a kept-alive connection: an unauthenticated list, which the
    server refuses (GCP, Azure: 401) after routing it; for AWS moto's answer to ``GET /``."""
    import requests

    from tests.azure.conftest import SUB_A

    url, verify = info["url"], info.get("ca_file", True)
    if cloud == "gcp":
        url += f"/compute/v1/projects/{GCP_PROJECTS[0]}/aggregated/instances"
    elif cloud == "azure":
        url += f"/subscriptions/{SUB_A}/providers/Microsoft.ContainerService/managedClusters"
    else:
        url += "/"
    times = []
    with requests.Session() as session:
        for _ in range(tries):
            t = time.perf_counter()
            _ = session.get(url, verify=verify, timeout=10).content
            times.append(time.perf_counter() - t)
    return statistics.median(times)


# --- memory, in a fresh process -----------------------------------------------------------------------------


def _status_mb(field_name: str) -> float:
    with Path("/proc/self/status").open(encoding="ascii") as f:
        for line in f:
            if line.startswith(f"{field_name}:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _trim() -> None:
    """Freed heap back to the system (glibc keeps it otherwise, and the next poll's peak would reuse it)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def _memory_child(cloud: str, which: str, url: str, pipe: multiprocessing.connection.Connection) -> None:
    """What one poll adds to this fresh process: the peak RSS of its first poll above the RSS before it, what
    the process holds after it, and the peak of Python's own allocations (tracemalloc) in a third poll."""
    try:
        if which == "source":
            src = make_source(cloud, url)
            loop = asyncio.new_event_loop()

            def poll() -> int:
                return len(loop.run_until_complete(src.fetch()).nodes)

            begin = getattr(src._provider, "begin", None)
            if begin is not None:
                begin()  # credentials: not what a poll costs
        else:
            poll = Baseline(cloud, url, scale_sets=which == "baseline+scale sets")
            poll.prepare()  # credentials: not what a poll costs
        out = {}
        _trim()
        Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
        before = _status_mb("VmRSS")
        poll()
        out["first"] = _status_mb("VmHWM") - before
        _trim()
        out["kept"] = _status_mb("VmRSS") - before
        poll()
        tracemalloc.start()
        poll()
        out["traced"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        pipe.send(out)
    except BaseException as exc:
        pipe.send(repr(exc))
        raise


def memory(cloud: str, which: str, url: str) -> JSON | str:
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    p = ctx.Process(target=_memory_child, args=(cloud, which, url, theirs), daemon=True)
    p.start()
    try:
        return ours.recv()  # type: ignore[no-any-return]
    finally:
        p.join(60)


# --- the measurements ---------------------------------------------------------------------------------------


@dataclass
class Runs:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    server_cpu: list[float] = field(default_factory=list)
    sums: list[Counter[str]] = field(default_factory=list)
    requests: list[Counter[str]] = field(default_factory=list)
    found: int = 0


def _delta(after: JSON, before: JSON) -> tuple[Counter[str], float, Counter[str]]:
    req = Counter(after["requests"])
    req.subtract(before["requests"])
    sums = Counter(after["sums"])
    sums.subtract(before["sums"])
    return +req, after["cpu"] - before["cpu"], sums


async def measure(server: Server, runs: int, kinds: dict[str, Callable[[], Any]]) -> dict[str, Runs]:
    """One warm-up of each, then ``runs`` rounds, the order of the kinds rotating from round to round."""
    out = {k: Runs() for k in kinds}
    names = list(kinds)
    for r in range(runs + 1):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            before = server.stats()
            t, c = time.perf_counter(), time.process_time()
            found = await kinds[name]()
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            req, server_cpu, sums = _delta(server.stats(), before)
            if r == 0:
                print(f"  warm-up {name}: {wall:.2f} s, {sum(req.values())} requests, {found} instances")
                continue
            run = out[name]
            run.wall.append(wall)
            run.cpu.append(cpu)
            run.server_cpu.append(server_cpu)
            run.sums.append(sums)
            run.requests.append(req)
            run.found = found
    return out


CONVERTERS = {"gcp": ("_instance",), "azure": ("_vm", "_scale_set_vm"), "aws": ("_instance",)}
"""The provider's methods that turn one listed instance into a ``CloudInstance``."""


async def breakdown(src: Any, cloud: str, runs: int = 3) -> str:
    """Where a fetch's time goes: ``runs`` more fetches with timers around the provider's ``instances`` and
    ``pools`` (per scope, on their threads), its per-instance conversion (CPU), and the source's own work
    after the listings (cleaning every record, building nodes and pools); medians, in words."""
    import aios_tui.sources.clouds.base as cloud_base

    p = src._provider
    wrapped = [(p, n) for n in ("instances", "pools", *CONVERTERS[cloud])] + [
        (src, "_node"),
        (src, "_node_pool"),
    ]
    cleaned = cloud_base._cleaned
    samples: list[Counter[str]] = []
    try:
        for _ in range(runs):
            meter = _Meter()
            for obj, name in wrapped:
                vars(obj).pop(name, None)
                meter.wrap(obj, name, name)
            cloud_base._cleaned = cleaned  # type: ignore[attr-defined]
            meter.wrap(cloud_base, "_cleaned", "_cleaned")
            t = time.perf_counter()
            await src.fetch()
            meter.sums["fetch"] = time.perf_counter() - t
            samples.append(meter.sums)
    finally:
        for obj, name in wrapped:
            vars(obj).pop(name, None)
        cloud_base._cleaned = cleaned  # type: ignore[attr-defined]

    def med(key: str) -> float:
        return statistics.median(s[key] for s in samples)

    n = len(p.scopes)
    converting = sum(med(f"{k} cpu") for k in CONVERTERS[cloud]) / n
    return (
        f"fetch {med('fetch'):.3f} s (median of {runs}, timers on); per scope, on its threads: instances() "
        f"{med('instances') / n:.3f} s, of which "
        f"converting each instance {converting:.3f} s CPU; pools() {med('pools') / n:.3f} s; then on the "
        f"event loop: cleaning the records {med('_cleaned'):.3f} s, nodes {med('_node'):.3f} s, node pools "
        f"{med('_node_pool'):.3f} s"
    )


def _med(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def report(
    cloud: str, server: Server, results: dict[str, Runs], mem: dict[str, JSON | str], rtt: float, where: str
) -> None:
    base = _med(results["baseline"].wall)
    print(f"\n{cloud}: {server.fleet.describe()}")
    print(
        f"  one small request's round trip to the server (kept-alive connection, median of 20): "
        f"{rtt * 1e3:.0f} ms"
    )
    for note in server.fleet.notes:
        print(f"  note: {note}")
    print("  | what | median | min–max | ×baseline | client CPU | server CPU | requests |")
    print("  |---|---:|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        checks = [_med([s[k] for s in r.sums]) for k in ("schema checks cpu",) if k in r.sums[0]]
        extra = "".join(f" (schema checks {c:.3f} s)" for c in checks)
        requests = {tuple(sorted(q.items())) for q in r.requests}
        n = sorted(sum(q.values()) for q in r.requests)
        count = f"{n[0]}" if n[0] == n[-1] else f"{n[0]}–{n[-1]}"
        print(
            f"  | {name} ({r.found:,} instances) | {_med(r.wall):.3f} s | "
            f"{min(r.wall):.3f}–{max(r.wall):.3f} | "
            f"×{_med(r.wall) / base:.2f} | {_med(r.cpu):.3f} s | {_med(r.server_cpu):.3f} s{extra} | "
            f"{count} |"
        )
        if len(requests) > 1:
            print(f"    (requests differ between runs: {n})")
    pairs = [s / b for s, b in zip(results["source"].wall, results["baseline"].wall, strict=True)]
    print(f"  where the source's time goes: {where}")
    print(f"  source / baseline per round: {' '.join(f'{p:.2f}' for p in pairs)}")
    for name, r in results.items():
        by = ", ".join(f"{k} {v}" for k, v in sorted(r.requests[-1].items()))
        print(f"  requests of one {name}: {by}")
    errors = server.stats()["errors"]
    if errors:
        print(f"  SCHEMA ERRORS at the server: {errors}")
    for name, m in mem.items():
        if isinstance(m, str):
            print(f"  memory, {name}: failed: {m}")
        else:
            print(
                f"  memory, {name} (fresh process): first poll's peak RSS +{m['first']:.1f} MB, held after "
                f"it +{m['kept']:.1f} MB; a third poll's Python allocations (tracemalloc) peak "
                f"{m['traced']:.1f} MB"
            )


async def bench_cloud(cloud: str, n: int, runs: int, secret: str, folder: Path) -> None:
    began = time.perf_counter()
    server = Server(cloud, n, secret, folder)
    print(
        f"\n{cloud}: server seeded with {server.fleet.gpu:,} GPU instances in "
        f"{time.perf_counter() - began:.1f} s"
    )
    try:
        with environment(_env(cloud, server.info, folder, secret)):
            src = make_source(cloud, server.url)
            baselines = {"baseline": Baseline(cloud, server.url)}
            if cloud == "azure":
                baselines["baseline+scale sets"] = Baseline(cloud, server.url, scale_sets=True)
            loop = asyncio.get_running_loop()
            rtt = round_trip(cloud, server.info)

            async def source() -> int:
                data = await src.fetch()
                return len(data.nodes)

            kinds: dict[str, Callable[[], Any]] = {"source": source}
            for name, b in baselines.items():
                kinds[name] = lambda b=b: loop.run_in_executor(None, b)
            try:
                results = await measure(server, runs, kinds)
                where = await breakdown(src, cloud)
                data = await src.fetch()
                print(
                    f"  the source's view: {len(data.nodes):,} nodes, {len(data.pools)} pools, "
                    f"problems {list(data.problems)}"
                )
            finally:
                await src.close()
                for b in baselines.values():
                    b.close()
            mem = {name: memory(cloud, name, server.url) for name in kinds}
        report(cloud, server, results, mem, rtt, where)
    finally:
        server.stop()
    print(f"  ({cloud} took {time.perf_counter() - began:.0f} s in all)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--instances", type=int, default=1500, help="GPU instances for Google Cloud and Azure"
    )
    parser.add_argument("--aws-instances", type=int, default=300, help="GPU instances for AWS (moto)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--clouds", nargs="+", default=["gcp", "azure", "aws"], choices=["gcp", "azure", "aws"]
    )
    args = parser.parse_args()
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    secret = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine()}, load average {os.getloadavg()[0]:.2f}")
    print(
        f"runs {args.runs} (after one warm-up each); instances: {args.instances} (GCP, Azure), "
        f"{args.aws_instances} (AWS)"
    )
    for cloud in args.clouds:
        with tempfile.TemporaryDirectory() as tmp:
            n = args.aws_instances if cloud == "aws" else args.instances
            asyncio.run(bench_cloud(cloud, n, args.runs, secret, Path(tmp)))
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
