"""Longest synchronous slices of an asyncio event loop.

Every callback an asyncio loop runs (task steps, I/O readiness callbacks, timers, call_soon)
goes through ``asyncio.events.Handle._run``; while a meter is active that method is wrapped
to time each call of the measured loop with ``time.perf_counter`` (wall) and
``time.thread_time`` (CPU of this thread). The loop cannot do anything else during one call,
so the longest call is the longest time the loop was blocked. Wall time also counts the
moments the OS gave the CPU to another process (FerretDB, the fake, anything else on a busy
2-core machine); CPU time does not, and would miss blocking system calls: both are kept.
"""

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self

TOP = 5


@dataclass(frozen=True, slots=True)
class Slice:
    """One callback run."""

    wall_ms: float
    cpu_ms: float
    what: str


@dataclass(slots=True)
class LoopBlockMeter:
    """Context manager: times every callback of ``loop`` while active."""

    loop: asyncio.AbstractEventLoop
    callbacks: int = 0
    total_ms: float = 0.0
    top: list[Slice] = field(default_factory=list)  # longest wall-clock slices first
    most_cpu: Slice | None = None  # the slice that used the most CPU
    _original: Callable[[asyncio.Handle], None] | None = None

    @property
    def max_wall_ms(self) -> float:
        """The longest callback (wall clock)."""
        return self.top[0].wall_ms if self.top else 0.0

    @property
    def max_cpu_ms(self) -> float:
        """The most CPU time one callback used (preemption excluded)."""
        return self.most_cpu.cpu_ms if self.most_cpu else 0.0

    def __enter__(self) -> Self:
        """Start timing."""
        original = asyncio.events.Handle._run  # noqa: SLF001
        self._original = original
        meter = self

        def timed_run(handle: asyncio.Handle) -> None:
            if handle._loop is not meter.loop:  # type: ignore[attr-defined]  # noqa: SLF001
                original(handle)  # another loop (another thread): not measured
                return
            before = _describe(handle)
            wall, cpu = time.perf_counter(), time.thread_time()
            try:
                original(handle)
            finally:
                meter.record(
                    (time.perf_counter() - wall) * 1000, (time.thread_time() - cpu) * 1000, before
                )

        asyncio.events.Handle._run = timed_run  # type: ignore[method-assign,assignment]  # noqa: SLF001
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop timing."""
        if self._original is not None:
            asyncio.events.Handle._run = self._original  # type: ignore[method-assign,assignment]  # noqa: SLF001
            self._original = None

    def record(self, wall_ms: float, cpu_ms: float, what: Callable[[], str]) -> None:
        """Keep the TOP longest callbacks."""
        self.callbacks += 1
        self.total_ms += wall_ms
        if len(self.top) < TOP or wall_ms > self.top[-1].wall_ms:
            self.top.append(Slice(wall_ms, cpu_ms, what()))
            self.top.sort(key=lambda s: s.wall_ms, reverse=True)
            del self.top[TOP:]
        if self.most_cpu is None or cpu_ms > self.most_cpu.cpu_ms:
            self.most_cpu = Slice(wall_ms, cpu_ms, what())


def _describe(handle: asyncio.Handle) -> Callable[[], str]:
    """A cheap closure naming what the callback resumes (only called for the longest)."""
    callback = handle._callback  # type: ignore[attr-defined]  # noqa: SLF001
    task = getattr(callback, "__self__", None)
    if isinstance(task, asyncio.Task):
        # Where the task was suspended: the slice runs from there to its next await.
        frames = _await_chain(task.get_coro())

        def task_step() -> str:
            return f"task {task.get_name()} resumed in {' > '.join(frames[-3:]) or '?'}"

        return task_step
    name = getattr(callback, "__qualname__", None) or type(callback).__qualname__

    def plain() -> str:
        return str(name)

    return plain


def _await_chain(coro: Any) -> list[str]:
    names: list[str] = []
    while coro is not None and len(names) < 20:
        code = getattr(coro, "cr_code", None) or getattr(coro, "gi_code", None)
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if code is not None:
            line = f":{frame.f_lineno}" if frame is not None else ""
            names.append(f"{code.co_qualname}{line}")
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return names
