"""Sharing the CPU (craftlib.threads): the thread count training uses when other processes keep cores busy, and
the caller's count restored afterwards (no timing here: the speed-up is measured in benchmarks/bench_share.py)."""

from __future__ import annotations

import pytest
import torch

from craftlib import threads
from craftlib.errors import ConfigError


@pytest.mark.parametrize("cores, others, ceiling, want", [
    (2, None, 2, 2),    # load unknown: leave the caller's count
    (2, 0.1, 2, 2),     # an idle machine
    (2, 0.9, 2, 1),     # one core taken by another training
    (2, 2.0, 2, 1),     # every core taken: still one thread
    (8, 2.6, 8, 5),
    (8, 0.0, 4, 4),     # never more than the caller asked for
])
def test_threads_for(cores, others, ceiling, want):
    assert threads.threads_for(cores, others, ceiling) == want


def test_threads_setting(monkeypatch):
    monkeypatch.delenv("CRAFTLIB_THREADS", raising=False)
    assert threads.threads_setting() is None
    assert threads.threads_setting("3") == 3
    for bad in ("0", "-1", "many"):
        with pytest.raises(ConfigError, match="CRAFTLIB_THREADS"):
            threads.threads_setting(bad)


def test_load_probe_subtracts_this_process(monkeypatch):
    """Busy cores of *other* processes: system CPU time minus this process's own, over the wall-clock interval."""
    clock = iter([100.0, 102.0])
    system = iter([50.0, 54.0])   # 4 CPU-seconds in 2 s: 2 cores busy in all
    own = iter([10.0, 11.0])      # of which 1 CPU-second is ours: 3 CPU-seconds of others in 2 s
    monkeypatch.setattr(threads.time, "monotonic", lambda: next(clock))
    monkeypatch.setattr(threads, "_system_busy_seconds", lambda: next(system))
    monkeypatch.setattr(threads, "_own_seconds", lambda: next(own))
    probe = threads.LoadProbe()
    assert probe.read() is None  # the first reading only starts the interval
    assert probe.read() == pytest.approx(1.5)


def test_load_probe_reads_this_machine():
    assert threads._system_busy_seconds() is not None  # psutil or /proc/stat
    busy = threads.LoadProbe().sample(0.2)
    assert busy is not None and 0.0 <= busy <= threads._cores() + 0.5


@pytest.fixture
def shared_cpu(monkeypatch):
    """A CPU whose every core another process keeps busy, on a machine where sizing applies."""
    monkeypatch.delenv("CRAFTLIB_THREADS", raising=False)
    monkeypatch.setattr(threads, "_skip_sizing", lambda: False)
    monkeypatch.setattr(threads, "_cores", lambda: 4)
    monkeypatch.setattr(threads.LoadProbe, "sample", lambda self, seconds=0: 3.0)
    before = torch.get_num_threads()
    torch.set_num_threads(4)
    yield
    torch.set_num_threads(before)


def test_training_is_sized_to_the_free_cores_and_restores_the_callers_count(shared_cpu, capsys):
    seen = []

    @threads.sized_for_sharing
    def train(nested: bool = False):
        seen.append(torch.get_num_threads())
        if nested:
            train()  # a two-step run training its step 1: the outer decision holds, no second message
        return "done"

    assert train(nested=True) == "done"
    assert seen == [1, 1]
    assert torch.get_num_threads() == 4
    out = capsys.readouterr().out
    assert out.count("The CPU is shared") == 1 and "3.0 of 4 cores busy" in out and "1 thread(s) instead of 4" in out

    @threads.sized_for_sharing
    def interrupted():
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert torch.get_num_threads() == 4  # restored on an interrupt too
    assert threads.active_plan() is None


def test_recheck_follows_the_load_both_ways(shared_cpu, monkeypatch):
    loads = iter([0.2, 2.2])

    @threads.sized_for_sharing
    def train():
        plan = threads.active_plan()
        monkeypatch.setattr(plan.probe, "read", lambda: next(loads))
        assert threads.recheck() is None  # not yet: every RECHECK_SECONDS
        assert threads.recheck(force=True) == 4 and torch.get_num_threads() == 4  # the other job ended
        assert threads.recheck(force=True) == 2 and torch.get_num_threads() == 2  # two cores taken again

    train()
    assert torch.get_num_threads() == 4


def test_forced_thread_count(shared_cpu, monkeypatch, capsys):
    monkeypatch.setenv("CRAFTLIB_THREADS", "2")

    @threads.sized_for_sharing
    def train():
        return torch.get_num_threads()

    assert train() == 2
    assert "CRAFTLIB_THREADS=2" in capsys.readouterr().out
