"""Sharing the CPU: how busy other processes keep the cores, and how many threads training should use.

PyTorch starts one compute thread per core. Two trainings on the same cores then run 2 x cores threads that wait
for each other at every parallel step (a descheduled thread holds up its siblings), and each training becomes far
slower than twice its time alone. :func:`sized_for_sharing` (a decorator of the training inside
:func:`craftlib.train.train_recipe`, once a finished run was not reused) measures, before training starts, how many cores other processes keep busy, says so, and gives training only the
cores left (at least one); :func:`recheck` (called from the training loop) re-measures every
:data:`RECHECK_SECONDS` and follows the load both ways (a training that started alone gives a core back when a
second one starts, and takes it again when it ends). The caller's thread count is restored afterwards, whatever
happens (also on an interrupt). ``CRAFTLIB_THREADS``: ``auto`` (default), or a number of threads to use as is.

How busy the cores are: system-wide CPU time (``psutil``, else ``/proc/stat``) minus this process's own CPU time
over the same interval, in cores. Where neither can be read, nothing is changed.
"""

from __future__ import annotations

import contextvars
import functools
import os
import time
from dataclasses import dataclass, field

from craftlib.errors import ConfigError
from craftlib.runtime import detect_device

#: Seconds between two load measurements during training.
RECHECK_SECONDS = 5.0
#: Seconds of the first measurement, before training starts.
SAMPLE_SECONDS = 0.5


def threads_setting(value: str | None = None) -> int | None:
    """``CRAFTLIB_THREADS``: ``None`` for ``auto`` (size by the load), else the number of threads asked for."""
    value = (value if value is not None else os.environ.get("CRAFTLIB_THREADS", "auto")).strip().lower()
    if value in ("", "auto"):
        return None
    if value.isdigit() and int(value) >= 1:
        return int(value)
    raise ConfigError(f"CRAFTLIB_THREADS={value!r} is not 'auto' or a number of threads >= 1: unset it or fix it.")


def _system_busy_seconds() -> float | None:
    """CPU seconds all processes have spent (every core, not idle) since boot, or ``None`` where unknown."""
    try:
        import psutil

        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)
    except (ImportError, AttributeError, OSError):
        pass
    try:
        with open("/proc/stat") as fh:
            fields = [float(x) for x in fh.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    busy = sum(fields[:8]) - idle  # user nice system idle iowait irq softirq steal (guest is inside user)
    return busy / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    t = os.times()
    return t.user + t.system


@dataclass
class LoadProbe:
    """Cores kept busy by *other* processes between two :meth:`read` calls."""

    last: tuple[float, float, float] | None = None

    def _now(self) -> tuple[float, float, float] | None:
        busy = _system_busy_seconds()
        return None if busy is None else (time.monotonic(), busy, _own_seconds())

    def read(self) -> float | None:
        """Busy cores of other processes since the previous call (``None`` on the first call or where unknown)."""
        now = self._now()
        before, self.last = self.last, now
        if now is None or before is None or now[0] - before[0] <= 0:
            return None
        wall = now[0] - before[0]
        return max(0.0, ((now[1] - before[1]) - (now[2] - before[2])) / wall)

    def sample(self, seconds: float = SAMPLE_SECONDS) -> float | None:
        self.read()
        time.sleep(seconds)
        return self.read()


def threads_for(cores: int, others_busy: float | None, ceiling: int) -> int:
    """Threads for a training on ``cores`` cores when other processes keep ``others_busy`` of them busy: the cores
    left (a core counts as taken when it is more than half busy), at least 1, at most ``ceiling``."""
    if others_busy is None:
        return ceiling
    return max(1, min(ceiling, cores - int(others_busy + 0.5)))


@dataclass
class ThreadPlan:
    """What :func:`sized_for_sharing` decided: the caller's thread count, the cores, the load it saw, its choice."""

    caller_threads: int
    cores: int
    others_busy: float | None
    threads: int
    forced: bool = False
    changes: list[tuple[float, int]] = field(default_factory=list)
    probe: LoadProbe = field(default_factory=LoadProbe)
    checked: float = field(default_factory=time.monotonic)

    def message(self) -> str | None:
        """One line for the learner when the CPU is shared (or the count was forced); ``None`` otherwise."""
        if self.forced:
            if self.threads == self.caller_threads:
                return None
            return f"CRAFTLIB_THREADS={self.threads}: training uses {self.threads} thread(s) on {self.cores} core(s)."
        if self.others_busy is None or self.threads >= self.caller_threads:
            return None
        return (f"The CPU is shared: other processes keep {self.others_busy:.1f} of {self.cores} cores busy, so "
                f"training uses {self.threads} thread(s) instead of {self.caller_threads} (both jobs run at about "
                "half speed instead of fighting over the cores; it takes the cores back when they are free; "
                "CRAFTLIB_THREADS=N overrides).")


_ACTIVE: contextvars.ContextVar[ThreadPlan | None] = contextvars.ContextVar("craftlib_thread_plan", default=None)


def active_plan() -> ThreadPlan | None:
    return _ACTIVE.get()


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def plan_threads(probe: LoadProbe | None = None, announce: bool = True) -> ThreadPlan:
    """Measure the load (:data:`SAMPLE_SECONDS`) and decide the thread count; print the reason when it is lowered."""
    import torch

    caller, forced = torch.get_num_threads(), threads_setting()
    probe = probe or LoadProbe()
    if forced is not None:
        plan = ThreadPlan(caller, _cores(), None, forced, forced=True, probe=probe)
    else:
        others = probe.sample()
        plan = ThreadPlan(caller, _cores(), others, threads_for(_cores(), others, caller), probe=probe)
    if announce and plan.message():
        print(plan.message(), flush=True)
    return plan


def recheck(force: bool = False) -> int | None:
    """During training (on the thread that trains): every :data:`RECHECK_SECONDS`, re-measure the other processes'
    load and resize the thread count (within the caller's). Returns the new count when it changed."""
    plan = _ACTIVE.get()
    if plan is None or plan.forced:
        return None
    now = time.monotonic()
    if not force and now - plan.checked < RECHECK_SECONDS:
        return None
    plan.checked = now
    others = plan.probe.read()
    if others is None:
        return None
    plan.others_busy = others
    want = threads_for(plan.cores, others, plan.caller_threads)
    import torch

    if want == torch.get_num_threads():
        return None
    torch.set_num_threads(want)
    plan.changes.append((now, want))
    return want


def sized_for_sharing(func):
    """Decorator: run ``func`` with the thread count of :func:`plan_threads` (on a CPU, one process), then restore
    the caller's count. Nested calls (a two-step run training its step 1) reuse the outer decision."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        if _ACTIVE.get() is not None or _skip_sizing():
            return func(*args, **kwargs)
        import torch

        before = torch.get_num_threads()
        plan = plan_threads()
        token = _ACTIVE.set(plan)
        try:
            torch.set_num_threads(plan.threads)
            return func(*args, **kwargs)
        finally:
            _ACTIVE.reset(token)
            torch.set_num_threads(before)

    return wrapper


def _skip_sizing() -> bool:
    """Several processes (torchrun: each has its own threads setting) or a GPU: leave the threads alone."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        return True
    return detect_device().type != "cpu"


def training_callback():
    """A ``transformers.TrainerCallback`` that calls :func:`recheck` after every optimizer step."""
    from transformers import TrainerCallback

    class ShareTheCPU(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            recheck()
            return control

    return ShareTheCPU()
