"""Replicas sharing one device (``Cluster.gpu_of``) take turns on it a step at a time, pay for it once and idle
it once; a fleet of several models routes each class to its own replicas (``Cluster.serves``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from inferplan.api import build_deployment
from inferplan.sim.cluster import Cluster
from inferplan.sim.loop import simulate
from inferplan.sim.summary import summarize
from inferplan.workload.presets import WorkloadSpec
from inferplan.workload.request import Workload
from inferplan.workload.transforms import mix

DEP = build_deployment("llama-3.1-8b", "h100-sxm", weights="fp8")
HALF = replace(DEP, limits=replace(DEP.limits, gpu_memory_utilization=0.45))


def _pair() -> Workload:
    """One request per class, both at t=0: 512 prompt tokens, 65 output tokens."""
    return Workload.build([0.0, 0.0], [512, 512], [65, 65], class_index=np.array([0, 1]), class_names=("a", "b"))


def test_two_replicas_on_one_device_take_turns_so_the_pair_takes_twice_as_long() -> None:
    """Alone, a request takes T (a prefill and 64 decode steps). Two identical ones on one device alternate step
    by step: the second finishes at 2T, the first one decode step earlier; on two devices both finish at T."""
    alone = simulate(Workload.build([0.0], [512], [65]), Cluster.replicas([HALF]))
    shared = simulate(_pair(), Cluster.colocated([HALF, HALF], [0, 0], [[0], [1]]))
    apart = simulate(_pair(), Cluster.colocated([HALF, HALF], [0, 1], [[0], [1]]))
    t = alone.makespan_s
    assert shared.makespan_s == pytest.approx(2 * t, rel=1e-9) and apart.makespan_s == pytest.approx(t, rel=1e-9)
    finish = shared.table.t_finish
    step = t - alone.table.t_first_token[0]  # 64 decode steps after the prefill
    assert finish[1] == pytest.approx(2 * t) and finish[1] - finish[0] == pytest.approx(step / 64, rel=0.02)
    assert shared.table.replica.tolist() == [0, 1]  # each class on its own replica


def test_a_shared_device_is_priced_once_and_idles_only_while_no_replica_steps() -> None:
    """Request b is short (2 tokens). Apart, b's device idles from b's end to a's: idle power x that gap more
    energy than shared, where one of them always steps; shared, one device is paid for."""
    pair = Workload.build([0.0, 0.0], [512, 512], [65, 2], class_index=np.array([0, 1]), class_names=("a", "b"))
    shared_run = simulate(pair, Cluster.colocated([HALF, HALF], [0, 0], [[0], [1]]))
    apart_run = simulate(pair, Cluster.colocated([HALF, HALF], [0, 1], [[0], [1]]))
    shared, apart = summarize(shared_run).sim, summarize(apart_run).sim
    assert shared is not None and apart is not None
    assert shared.cost_per_hour == pytest.approx(2.99) and apart.cost_per_hour == pytest.approx(5.98)
    assert sum(shared.utilization) == pytest.approx(1.0)  # one of them always stepping: no idle time
    b = apart_run.replicas[1]
    gap = apart_run.makespan_s - b.busy_s
    assert apart.energy_j - shared.energy_j == pytest.approx(b.cost.idle_w * gap, rel=1e-6)


def test_models_on_shared_devices_never_overlap_steps_and_keep_their_classes() -> None:
    """Three devices each running a replica of two models, under chat and code traffic: every request is served by
    its model's replicas, and no device is busy for longer than the run (its replicas' steps never overlap)."""
    qwen = build_deployment("qwen3-8b", "h100-sxm", weights="fp8")
    qwen = replace(qwen, limits=replace(qwen.limits, gpu_memory_utilization=0.45))
    chat = replace(WorkloadSpec(workload="chat", rate=6.0, num_requests=600, seed=3).build_workload(), name="llama")
    code = replace(WorkloadSpec(workload="code", rate=4.0, num_requests=400, seed=4).build_workload(), name="qwen")
    wl = mix(chat, code)
    cluster = Cluster.colocated([HALF, qwen] * 3, [0, 0, 1, 1, 2, 2], [[0, 2, 4], [1, 3, 5]])
    res = simulate(wl, cluster, router="least-outstanding")
    served = res.table.replica
    assert (served % 2 == wl.class_index).all()
    for g in range(3):
        busy = res.replicas[2 * g].busy_s + res.replicas[2 * g + 1].busy_s
        assert busy <= res.makespan_s * (1 + 1e-9)
    assert summarize(res).num_finished == len(wl)


@pytest.mark.parametrize(("kwargs", "needle"), [
    ({"aggregated": (DEP,), "gpu_of": (0, 0)}, "gpu_of names the device of every replica"),
    ({"aggregated": (DEP, DEP), "serves": ((0,), (2,))}, "serves needs, per class, a non-empty list"),
    ({"aggregated": (DEP,), "serves": ((),)}, "serves needs, per class, a non-empty list"),
])
def test_a_bad_shared_cluster_is_refused(kwargs: dict[str, object], needle: str) -> None:
    with pytest.raises(ValueError, match=needle):
        Cluster(**kwargs)  # type: ignore[arg-type]


def test_a_class_without_replicas_is_refused() -> None:
    with pytest.raises(ValueError, match="serves lists 1 classes, the workload has 2"):
        simulate(_pair(), Cluster.colocated([HALF], [0], [[0]]))
