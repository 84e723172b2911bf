"""Polling: one loop per source, merged into one :class:`~aios_tui.domain.FleetSnapshot`."""

from aios_tui.poll.history import RingHistory
from aios_tui.poll.poller import Poller, backoff_delay, describe_error

__all__ = ["Poller", "RingHistory", "backoff_delay", "describe_error"]
