"""Stopping the import's and export's background tasks (action_jobs.async_cancel_task)."""

import asyncio

import pytest

from custom_components.spotify_scrobbler.action_jobs import async_cancel_task


async def test_a_task_failing_on_its_way_out_does_not_stop_the_unload() -> None:
    """A task that raises while it is cancelled has logged already: stopping goes on."""
    started = asyncio.Event()

    async def fails_when_cancelled() -> None:
        started.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("cleanup failed") from None

    task = asyncio.create_task(fails_when_cancelled())
    await started.wait()
    await async_cancel_task(task)
    assert task.done()
    await async_cancel_task(task)  # done already: nothing to do
    await async_cancel_task(None)


async def test_a_cancel_of_the_caller_still_propagates() -> None:
    """Cancelled while waiting for the task, the caller is cancelled too."""
    release = asyncio.Event()

    async def slow_to_stop() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            await release.wait()
            raise

    task = asyncio.create_task(slow_to_stop())
    await asyncio.sleep(0)
    stopper = asyncio.create_task(async_cancel_task(task))
    await asyncio.sleep(0)
    stopper.cancel()
    release.set()
    with pytest.raises(asyncio.CancelledError):
        await stopper
