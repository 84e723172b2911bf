"""AWS: EC2 instances with GPUs (and Neuron devices), Auto Scaling groups and EKS managed node groups."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aios_tui.config import ConfigError
from aios_tui.sources.clouds import CloudSpec
from aios_tui.sources.clouds.aws.prices import CATALOGUE

if TYPE_CHECKING:
    from aios_tui.config import Settings
    from aios_tui.sources.base import Source

__all__ = ["SPEC"]


def _sources(settings: Settings) -> list[Source]:
    """One cloud source per AWS profile (no network: credentials are resolved at the first fetch)."""
    from aios_tui.sources.base import SourceError
    from aios_tui.sources.clouds.aws.provider import AwsProvider
    from aios_tui.sources.clouds.base import CloudSource, price_overrides

    aws = settings.aws
    read_only = settings.read_only or aws.read_only
    why = "read_only in the settings" if settings.read_only else "aws read_only in the settings"
    out: list[Source] = []
    for profile in aws.profiles or ("",):
        try:
            provider = AwsProvider(
                profile=profile,
                regions=aws.regions,
                endpoint_url=aws.endpoint_url,
                timeout=aws.timeout,
                max_attempts=aws.max_attempts,
            )
        except SourceError as exc:
            if profile:
                raise ConfigError(settings.config_file, "[aws] profiles", detail=str(exc)) from None
            raise ConfigError(None, "AWS_PROFILE", detail=str(exc)) from None
        out.append(
            CloudSource(
                provider,
                name=f"aws:{profile}" if profile else "aws",
                interval=aws.interval,
                timeout=aws.timeout,
                read_only=read_only,
                read_only_why=why,
                prices=price_overrides(aws.prices),
                spot_prices=aws.spot_prices,
            )
        )
    return out


SPEC = CloudSpec(name="aws", catalogue=CATALOGUE, sources=_sources)
