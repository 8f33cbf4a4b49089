"""The one worker pool: in this process (``workers=0``) or on Ray actors, locally or on a cluster.

Demo generation, evaluation and the expert check all run their episodes through :class:`WorkerPool`:

- one ``ray.init`` path (:func:`ray_session`): ``--ray-address`` / ``RAY_ADDRESS`` joins an existing
  cluster after a socket probe that fails in one line within seconds; otherwise Ray starts locally;
- one runtime env for every actor (:func:`worker_env_vars`: MUJOCO_GL, thread counts, the driver's
  import path) and one thread limit (``threads`` per worker, default 1: one worker = one core);
- one worker-count rule (:func:`resolve_workers`);
- no idle gaps: each actor keeps ``IN_FLIGHT_PER_ACTOR`` calls queued, so it starts its next item the
  moment one ends (Ray's ``ActorPool`` waits for the driver between items);
- fault tolerance: actors restart (Ray's ``max_restarts``/``max_task_retries``), and an item whose actor
  died anyway (its node was lost) is resubmitted to a fresh actor. Items must be idempotent (an
  episode depends only on its seed), so a run that loses a node ends with the results of an undisturbed one.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from collections.abc import Iterable, Iterator
from typing import Any

from handbench.errors import HandbenchError

IN_FLIGHT_PER_ACTOR = 2
ACTOR_RESTARTS = 3  # Ray restarts a dead actor (on any node with a free CPU) this many times
ITEM_ATTEMPTS = 4  # an item is resubmitted to a new actor until it has failed this many times on lost actors
PROBE_TIMEOUT_S = 5.0


def resolve_workers(requested: int | None, items: int, cluster: bool = False) -> int | None:
    """The worker-count rule. ``requested``: >0 that many (at most one per item), 0 in this process,
    None: one per local CPU (0 when that is one: a single actor only adds Ray's start-up time), or on a
    cluster ``None`` again, meaning one per cluster CPU once Ray is up. Raises HandbenchError when < 0."""
    if requested is not None and requested < 0:
        raise HandbenchError(f"--workers must be >= 0 (0 runs in this process), got {requested}")
    if requested is not None:
        return min(requested, max(items, 1)) if requested else 0
    if cluster:
        return None
    count = min(os.cpu_count() or 1, items)
    return count if count > 1 else 0


def worker_env_vars(threads: int = 1) -> dict[str, str]:
    """Environment of every Ray worker: headless GL, thread counts, and the driver's import path."""
    import handbench.rendering  # noqa: F401  (importing handbench chooses MUJOCO_GL)

    path = [os.getcwd(), *[p for p in sys.path if p and os.path.isdir(p)]]
    env = {
        "OMP_NUM_THREADS": str(threads),
        "MKL_NUM_THREADS": str(threads),
        "PYTHONPATH": os.pathsep.join(dict.fromkeys(path)),
    }
    for name in ("MUJOCO_GL", "PYOPENGL_PLATFORM"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def limit_threads(threads: int) -> None:
    """One worker = ``threads`` cores: keep torch (if imported) from oversubscribing the machine."""
    torch = sys.modules.get("torch")
    if torch is not None and threads:
        torch.set_num_threads(threads)


def probe_address(address: str, timeout: float = PROBE_TIMEOUT_S) -> None:
    """Fail fast, in one line, when a ``host:port`` cluster address does not answer.

    ``ray.init`` retries a dead address for minutes; a plain TCP connect answers within ``timeout``
    seconds. ``auto`` (find a local cluster) is left to Ray. Raises :class:`HandbenchError`.
    """
    if address == "auto":
        return
    host_port = address.split("://", 1)[-1]
    host, _, port = host_port.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise HandbenchError(f"bad Ray address {address!r}; expected host:port, ray://host:port or auto")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise HandbenchError(f"cannot reach the Ray cluster at {address} ({reason}); "
                             "check --ray-address / RAY_ADDRESS or start it with `ray start --head`") from exc


def join_cluster(address: str, **options: Any) -> None:
    """``ray.init`` on an existing cluster after :func:`probe_address`; one line if it cannot be joined."""
    import ray

    probe_address(address)
    try:
        ray.init(address=address, **options)
    except Exception as exc:  # ConnectionError, RuntimeError, grpc errors: all mean "cannot join"
        raise HandbenchError(f"cannot join the Ray cluster at {address}: {str(exc).splitlines()[0]}") from exc


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster to join: ``address`` (``--ray-address``), else ``RAY_ADDRESS``, else None (start locally)."""
    return address or os.environ.get("RAY_ADDRESS") or None


@contextlib.contextmanager
def ray_session(address: str | None, workers: int) -> Iterator[Any]:
    """Join the cluster at ``address`` (or RAY_ADDRESS), reuse a running session, or start Ray locally."""
    import ray

    address = cluster_address(address)
    if address:
        probe_address(address)  # before anything else: a dead address is one line within seconds
    if ray.is_initialized():
        yield ray
        return
    if address:
        join_cluster(address, log_to_driver=False, configure_logging=False)
    else:
        # address="local": always a new local instance, never a cluster another process on this machine
        # happens to be running (Ray would join the one named in /tmp/ray/ray_current_cluster).
        ray.init(address="local", num_cpus=max(workers, os.cpu_count() or 1), include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()


class WorkerPool:
    """``workers`` copies of ``worker_class(*args)``: Ray actors, or one object in this process (0).

    ``map_unordered(method, items)`` calls ``worker.method(*item)`` for every item and yields the results
    in completion order. A HandbenchError raised by a worker is re-raised as is; any other worker
    exception becomes one HandbenchError line.
    """

    def __init__(self, worker_class: type, args: tuple = (), workers: int | None = 0, items: int = 1,
                 ray_address: str | None = None, threads: int = 1) -> None:
        self.worker_class, self.args, self.threads = worker_class, args, threads
        self.workers = resolve_workers(workers, items, cluster=cluster_address(ray_address) is not None)
        self._stack = contextlib.ExitStack()
        self._actors: list[Any] = []
        if self.workers == 0:
            self._local = worker_class(*args)
            return
        ray = self._stack.enter_context(ray_session(ray_address, self.workers or items))
        if self.workers is None:
            self.workers = max(1, min(items, int(ray.cluster_resources().get("CPU", 1))))
        self._runtime_env = {"env_vars": worker_env_vars(threads)}
        self._remote = ray.remote(num_cpus=1, max_restarts=ACTOR_RESTARTS, max_task_retries=ACTOR_RESTARTS)(
            _RemoteWorker)
        self._actors = [self._new_actor() for _ in range(self.workers)]

    def _new_actor(self) -> Any:
        return self._remote.options(runtime_env=self._runtime_env, scheduling_strategy="SPREAD").remote(
            self.worker_class, self.args, self.threads)

    def map_unordered(self, method: str, items: Iterable[tuple], depth: int = IN_FLIGHT_PER_ACTOR) -> Iterator[Any]:
        """Yield ``worker.method(*item)`` for every item, in completion order.

        ``items`` is consumed lazily (at most ``depth`` per actor ahead of the results yielded), so a caller
        can stop producing items based on the results it has seen.
        """
        if self.workers == 0:
            for item in items:
                yield getattr(self._local, method)(*item)
            return
        import ray

        pending = iter(items)
        owner: dict[Any, tuple[int, Any, tuple, int]] = {}  # in-flight future -> (index, actor, item, attempts)

        def submit(index: int, item: tuple, attempts: int = 0) -> None:
            actor = self._actors[index]
            owner[actor.call.remote(method, item)] = (index, actor, item, attempts)

        def submit_next(index: int) -> None:
            for item in pending:
                submit(index, item)
                return

        for _ in range(depth):
            for index in range(len(self._actors)):
                submit_next(index)
        while owner:
            [ready], _ = ray.wait(list(owner), num_returns=1)
            index, actor, item, attempts = owner.pop(ready)
            try:
                result = ray.get(ready)
            except ray.exceptions.RayTaskError as exc:  # the worker's own code raised
                cause = getattr(exc, "cause", None)
                if isinstance(cause, HandbenchError):
                    raise cause from None
                raise HandbenchError(f"a Ray worker failed ({_first_line(exc)})") from exc
            except ray.exceptions.RayError as exc:  # the actor or its node is gone: run the item elsewhere
                if attempts + 1 >= ITEM_ATTEMPTS:
                    raise HandbenchError(f"a Ray worker was lost {ITEM_ATTEMPTS} times running one item "
                                         f"({_first_line(exc)}); finished work is kept, rerun to resume") from exc
                if self._actors[index] is actor:  # its other in-flight items fail too: replace it once
                    with contextlib.suppress(Exception):
                        ray.kill(actor, no_restart=True)
                    self._actors[index] = self._new_actor()
                submit(index, item, attempts + 1)
                continue
            submit_next(index)  # before yielding: the actor stays busy while the caller handles this result
            yield result

    def close(self) -> None:
        if self.workers == 0:
            close = getattr(self._local, "close", None)
            if close is not None:
                close()
        else:
            import ray

            for actor in self._actors:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
        self._stack.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _RemoteWorker:
    """The Ray actor around a worker object: thread limit, then method calls by name."""

    def __init__(self, worker_class: type, args: tuple, threads: int) -> None:
        import handbench.rendering  # noqa: F401  (importing handbench sets MUJOCO_GL before MuJoCo loads)

        self.threads = threads
        limit_threads(threads)
        self.worker = worker_class(*args)

    def call(self, method: str, item: tuple) -> Any:
        limit_threads(self.threads)  # OMP_NUM_THREADS covers a torch imported later; this one already loaded
        return getattr(self.worker, method)(*item)


def _first_line(exc: BaseException) -> str:
    line = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
    return line.strip()[:200]
