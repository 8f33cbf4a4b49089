"""Where episodes run: in this process (``workers=0``) or on Ray actors built once and reused.

Each worker holds one env per (task, hand) it has seen and the policies its PolicySource built, so
physics models, renderers and weights are created once per worker, inside it, never shipped across
processes. ``--ray-address`` / ``RAY_ADDRESS`` joins an existing cluster; otherwise Ray starts locally.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from handbench.errors import HandbenchError
from handbench.evaluation.jobs import EpisodeJob, EpisodeOutcome, run_episode
from handbench.parallel import cluster_address, join_cluster

if TYPE_CHECKING:
    from handbench.env import HandEnv
    from handbench.evaluation.policies import PolicySource


class EpisodeWorker:
    """Runs episode jobs; the same class serves in-process and as a Ray actor."""

    def __init__(self, source: PolicySource, obs_mode: str, torch_threads: int | None = None) -> None:
        import handbench  # noqa: F401  (sets MUJOCO_GL before MuJoCo loads, registers tasks)

        self.source = source
        self.obs_mode = obs_mode
        self.torch_threads = torch_threads
        self.envs: dict[tuple[str, str], HandEnv] = {}

    def env_for(self, task: str, hand: str) -> HandEnv:
        from handbench.env import HandEnv

        if (task, hand) not in self.envs:
            self.envs[(task, hand)] = HandEnv(task, hand, obs_mode=self.obs_mode)
        return self.envs[(task, hand)]

    def run(self, job: EpisodeJob) -> EpisodeOutcome:
        import mujoco

        import handbench

        env = self.env_for(job.task, job.hand)
        if self.torch_threads and "torch" in sys.modules:  # OMP_NUM_THREADS covers a torch imported later
            sys.modules["torch"].set_num_threads(self.torch_threads)
        outcome = run_episode(env, self.source, job)
        outcome.row.update(obs_mode=self.obs_mode, task_version=int(env.task.version), model_hash=env.model_hash,
                           expert_version=self.source.expert_version(env),
                           handbench_version=handbench.__version__, mujoco_version=mujoco.__version__)
        return outcome

    def close(self) -> None:
        for env in self.envs.values():
            env.close()
        self.envs.clear()


def worker_env_vars(torch_threads: int) -> dict[str, str]:
    """Environment of every Ray worker: headless GL, thread counts, and the driver's import path."""
    import handbench  # noqa: F401  (chooses MUJOCO_GL)

    path = [os.getcwd(), *[p for p in sys.path if p and os.path.isdir(p)]]
    env = {
        "OMP_NUM_THREADS": str(torch_threads),
        "MKL_NUM_THREADS": str(torch_threads),
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
    }
    if os.environ.get("MUJOCO_GL"):
        env["MUJOCO_GL"] = os.environ["MUJOCO_GL"]
    if os.environ.get("PYOPENGL_PLATFORM"):
        env["PYOPENGL_PLATFORM"] = os.environ["PYOPENGL_PLATFORM"]
    return env


@contextlib.contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[Any]:
    """Join the cluster at ``address`` (or RAY_ADDRESS), reuse a running session, or start Ray locally."""
    import ray

    if ray.is_initialized():
        yield ray
        return
    address = cluster_address(address)
    if address:
        join_cluster(address, log_to_driver=False)
    else:
        ray.init(num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


def run_jobs(jobs: Iterable[EpisodeJob], source: PolicySource, obs_mode: str, workers: int | None,
             on_outcome: Callable[[EpisodeOutcome], None], ray_address: str | None = None,
             torch_threads: int = 1) -> int:
    """Run every job, calling ``on_outcome`` in the driver as each finishes (in completion order).

    ``workers=None`` means one Ray actor per CPU of the cluster (at most one per job). Returns the
    number of workers used (0: in this process).
    """
    jobs = list(jobs)
    if not jobs:
        return 0
    if workers is not None and workers <= 0:
        worker = EpisodeWorker(source, obs_mode)  # in-process: leave the caller's torch threads alone
        try:
            for job in jobs:
                on_outcome(worker.run(job))
        finally:
            worker.close()
        return 0
    with ray_session(ray_address, workers or len(jobs)) as ray:
        from handbench.parallel import imap_unordered

        if workers is None:
            workers = max(1, int(ray.cluster_resources().get("CPU", 1)))

        actor_class = ray.remote(num_cpus=1)(EpisodeWorker)
        runtime_env = {"env_vars": worker_env_vars(torch_threads)}
        actors = [actor_class.options(runtime_env=runtime_env).remote(source, obs_mode, torch_threads)
                  for _ in range(min(workers, len(jobs)))]
        try:
            for outcome in imap_unordered(actors, lambda actor, job: actor.run.remote(job), jobs):
                on_outcome(outcome)
        except ray.exceptions.RayError as exc:  # a worker died or could not be built: not a policy fault
            first_line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
            raise HandbenchError(f"a Ray worker failed ({first_line.strip()[:200]}); finished episodes are kept, "
                                 "rerun the same command to resume") from exc
        finally:
            for actor in actors:
                ray.kill(actor)
    return len(actors)
