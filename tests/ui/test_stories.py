"""The four on-call stories of issue 13, each from the first screen to the fix carried out, in at most ten
keys. Each hop is asserted on what the screen shows, so a missing hop (a view that does not sort the worst
first, a detail without the what-if, a view without the action) fails the story.

A confirmation typed for production targets (the endpoint's name) is the safety step, not navigation: it is
typed where the plan asks for it and counted apart.
"""

from __future__ import annotations

from typing import Any

from aios_tui.domain import JobState
from aios_tui.ui.app import AiosApp
from aios_tui.ui.screens.detail import DetailScreen
from aios_tui.ui.screens.main import MainScreen
from aios_tui.ui.screens.plan import PlanScreen
from aios_tui.ui.screens.views import CordonScreen, IdleScreen
from tests.ui.conftest import MakeApp, screen_text

MAX_KEYS = 10


class Keys:
    """Presses keys one at a time (as a person types) and counts them."""

    def __init__(self, app: AiosApp, pilot: Any) -> None:
        self.app, self.pilot, self.count = app, pilot, 0

    async def __call__(self, *keys: str) -> str:
        for key in keys:
            await self.pilot.press(key)
            await self.pilot.pause()
            self.count += 1
        return screen_text(self.app)

    async def confirm(self, phrase: str) -> None:
        """Type the plan's confirmation phrase (not counted) and enter it."""
        screen = self.app.screen
        assert isinstance(screen, PlanScreen)
        for ch in phrase:
            await self.pilot.press(ch)
        await self.pilot.press("enter")
        await settle(self.app, self.pilot)


async def settle(app: AiosApp, pilot: Any) -> None:
    await app.workers.wait_for_complete()
    await pilot.pause()


async def test_p99_breach_to_scale_up(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        keys = Keys(app, pilot)
        text = await keys("4")
        first = text.splitlines()[4]
        # The breaching endpoint first, its objective and its state in words (NO_COLOR still tells).
        assert "ranking-dlr" in first and "/32" in first and "BREACH" in first, first
        text = await keys("s")
        assert isinstance(app.screen, PlanScreen) and "ml-prod/ranking-dlrm-feed" in text
        await keys("end", "ctrl+u", "1", "2", "enter")
        plan = app.screen.plan
        assert plan is not None and plan.ok and plan.confirm_phrase == "ranking-dlrm-feed"
        await keys.confirm(plan.confirm_phrase)
        assert keys.count <= MAX_KEYS, keys.count
        assert isinstance(app.screen, MainScreen)
        assert (
            app.fleet is not None
            and app.fleet.endpoint_by_key["ml-prod/ranking-dlrm-feed"].replicas_desired == 12
        )


async def test_xid_79_to_drain(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.fleet is not None
        [bad] = [g for g in app.fleet.gpus if g.xid == 79]
        keys = Keys(app, pilot)
        text = await keys("h")
        assert isinstance(app.screen, CordonScreen)
        row = next(line for line in text.splitlines() if line.startswith(bad.node))
        assert row.split()[1] == "reboot" and "XID 79" in row and "ago" in row, row  # the XID has its time
        assert app.screen.table.cursor_key == bad.node  # worst first: the cursor is on it
        text = await keys("D")
        assert isinstance(app.screen, PlanScreen) and f"Drain {bad.node}" in text
        # A notebook's scratch space on it: the plan says so and how to allow it, in its first field.
        assert "holds emptyDir data" in text and "Delete emptyDir data? y/n" in text
        await keys("ctrl+u", "y", "enter")
        await settle(app, pilot)
        assert keys.count <= MAX_KEYS, keys.count
        assert not isinstance(app.screen, PlanScreen), screen_text(app)
        node = app.fleet.node_by_name[bad.node]
        left = app.fleet.pods_by_node.get(bad.node, ())
        assert node.cordoned and left and all(p.owner_kind == "DaemonSet" for p in left)


async def test_pending_job_to_what_would_fit_to_started(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        keys = Keys(app, pilot)
        text = await keys("3")
        queued = app.main.table("jobs").cursor_key
        assert queued is not None and "Queued" in text.splitlines()[4]  # the waiting job on top
        text = await keys("enter")
        assert isinstance(app.screen, DetailScreen)
        # Why it waits, and what would fit it.
        assert "Why pending" in text and "would fit it" in text
        text = await keys("s")
        assert isinstance(app.screen, PlanScreen)
        assert "Scale pool h100-a" in text and f"Unblocks  1 queued: {queued}" in text
        await keys("enter")
        await settle(app, pilot)
        assert keys.count <= MAX_KEYS, keys.count
        for _ in range(120):  # new nodes boot, then the queue starts the gang whole
            app.fake_clock.advance(5)  # type: ignore[attr-defined]
            await app.action_refresh()
            await settle(app, pilot)
            assert app.fleet is not None
            if app.fleet.job_by_key[queued].state is not JobState.QUEUED:
                break
        assert app.fleet.job_by_key[queued].state in (JobState.STARTING, JobState.RUNNING)


async def test_n_on_a_queued_job_plans_a_launch_like_it(make_app: MakeApp) -> None:
    """The other way from a waiting job: from its detail, a launch filled in like it, whose plan says what
    would fit (n in the Jobs pane itself starts a new job from the defaults)."""
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        keys = Keys(app, pilot)
        await keys("3", "enter")
        queued = app.main.table("jobs").cursor_key
        assert app.fleet is not None and queued is not None
        job = app.fleet.job_by_key[queued]
        text = await keys("n")
        assert isinstance(app.screen, PlanScreen)
        assert app.screen.values["job"] == f"{queued}-2" and app.screen.values["image"] == job.image
        assert app.screen.values["workers"] == str(job.workers)
        assert "What would fit  +2 × p5.48xlarge in pool h100-a" in text


async def test_idle_cost_to_owner_to_scale_down(make_app: MakeApp) -> None:
    app = make_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        keys = Keys(app, pilot)
        text = await keys("i")
        assert isinstance(app.screen, IdleScreen)
        lines = text.splitlines()
        assert "$/H" in lines[3] and "OWNER" in lines[3]
        # Owners, dearest first: a job, then the endpoint wasting its GPUs.
        assert lines[4].split()[:3] == ["team-nlp", "whisper-ft-0012", "job"]
        assert lines[5].split()[:3] == ["ml-staging", "llama-3-8b-canary", "endpoint"]
        text = await keys("down", "s")
        assert isinstance(app.screen, PlanScreen) and "ml-staging/llama-3-8b-canary" in text
        await keys("end", "ctrl+u", "1", "enter")
        await settle(app, pilot)
        assert keys.count <= MAX_KEYS, keys.count
        assert not isinstance(app.screen, PlanScreen), screen_text(app)
        assert app.fleet is not None
        assert app.fleet.endpoint_by_key["ml-staging/llama-3-8b-canary"].replicas_desired == 1
