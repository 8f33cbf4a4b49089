"""The worker pool: dead cluster addresses fail in one line, a lost node changes no result."""

from __future__ import annotations

import time

import pytest

from handbench.cli import main
from handbench.errors import HandbenchError
from handbench.evaluation.jobs import EpisodeJob, EpisodeOutcome
from handbench.evaluation.policies import ExpertSource
from handbench.evaluation.results import TIMING_COLUMNS
from handbench.evaluation.workers import run_jobs
from handbench.parallel import resolve_workers
from handbench.protocol import load_protocol

DEAD = "127.0.0.1:1"  # nothing listens on port 1


@pytest.mark.parametrize("command", [
    ["generate-demos", "--task", "lift-cube", "--hand", "hb16", "--num-demos", "2", "--workers", "2"],
    ["check-experts", "--tasks", "lift-cube", "--hands", "hb16", "--seeds", "2", "--workers", "2"],
    ["eval", "--policy", "expert", "--task", "lift-cube", "--episodes", "2", "--workers", "2"],
])
def test_a_dead_ray_address_is_one_line_within_seconds(command, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    began = time.monotonic()
    assert main([*command, "--ray-address", DEAD]) != 0
    assert time.monotonic() - began < 60  # it used to hang for 10 minutes or more
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"cannot reach the Ray cluster at {DEAD}" in err


def test_worker_count_rule():
    assert resolve_workers(0, 10) == 0
    assert resolve_workers(4, 3) == 3  # never more workers than items
    assert resolve_workers(None, 10, cluster=True) is None  # one per cluster CPU, once Ray is up
    assert resolve_workers(None, 1) == 0  # one item: no Ray start-up
    with pytest.raises(HandbenchError, match="--workers must be >= 0"):
        resolve_workers(-1, 3)


def expert_jobs(count: int) -> list[EpisodeJob]:
    entry = load_protocol("hb-v1").task("lift-cube")
    return [EpisodeJob("lift-cube", "hb16", seed, entry.episode_steps, entry.stop_on_success)
            for seed in entry.eval_seeds[:count]]


def run_rows(jobs, workers, on_outcome=None, ray_address=None) -> list[dict]:
    outcomes: list[EpisodeOutcome] = []

    def keep(outcome: EpisodeOutcome) -> None:
        outcomes.append(outcome)
        if on_outcome is not None:
            on_outcome(outcome)

    run_jobs(jobs, ExpertSource(), "state", workers, keep, ray_address)
    rows = sorted((o.row for o in outcomes), key=lambda row: row["seed"])
    return [{k: v for k, v in row.items() if k not in TIMING_COLUMNS} for row in rows], outcomes


@pytest.mark.slow
def test_a_run_that_loses_a_worker_node_completes_with_identical_results():
    """Two-node Ray cluster; the worker node is removed after the first result arrives."""
    import ray
    from ray.cluster_utils import Cluster

    jobs = expert_jobs(10)
    undisturbed, _ = run_rows(jobs, workers=0)
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 2})
    worker_node = cluster.add_node(num_cpus=2)
    cluster.wait_for_nodes()
    removed: list[int] = []
    outcomes_so_far: list[EpisodeOutcome] = []

    def remove_worker_node(outcome: EpisodeOutcome) -> None:
        """Once the worker node has delivered a result (its actor is busy with the next ones), remove it."""
        if not removed and outcome.extra["node"] == worker_node.node_id:
            removed.append(len(outcomes_so_far))
            cluster.remove_node(worker_node)
        outcomes_so_far.append(outcome)

    try:
        disturbed, outcomes = run_rows(jobs, workers=2, on_outcome=remove_worker_node, ray_address=cluster.address)
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    assert removed, "no episode ran on the worker node (actors are spread over nodes)"
    after = {outcome.extra["node"] for outcome in outcomes[removed[0] + 1:]}
    assert after and worker_node.node_id not in after  # the rest ran on the head node, some of it retried
    assert disturbed == undisturbed
