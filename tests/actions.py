"""Helpers the action tests share."""

from __future__ import annotations

from typing import Any

from aios_tui.sources.base import LaunchSpec


def launch_args(spec: LaunchSpec) -> dict[str, Any]:
    """The ``launch`` action's arguments for a job written as a :class:`LaunchSpec`."""
    return {
        "job": f"{spec.namespace}/{spec.name}",
        "image": spec.image,
        "workers": spec.workers,
        "gpus_per_worker": spec.gpus_per_worker,
        "gpu_model": spec.gpu_model,
        "zone": spec.zone,
        "priority": spec.priority,
    }
