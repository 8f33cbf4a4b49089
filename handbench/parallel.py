"""Work over Ray actors with no idle gaps: the one pool that demo generation and evaluation share.

Ray's ``ActorPool`` hands an actor its next item only after the driver has collected the previous
result, so every actor waits for a round trip (and whatever the driver does with the result, e.g.
writing an episode file) between items. Here each actor keeps ``depth`` calls queued (Ray runs an
actor's calls one at a time, in order), so it starts the next episode the moment one ends.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from handbench.errors import HandbenchError

IN_FLIGHT_PER_ACTOR = 2
PROBE_TIMEOUT_S = 5.0


def cluster_address(address: str | None) -> str | None:
    """The Ray cluster to join: ``address`` (``--ray-address``), else ``RAY_ADDRESS``, else None (start locally)."""
    return address or os.environ.get("RAY_ADDRESS") or None


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


def imap_unordered(actors: list[Any], call: Callable[[Any, Any], Any], items: Iterable[Any],
                   depth: int = IN_FLIGHT_PER_ACTOR) -> Iterator[Any]:
    """Yield ``ray.get(call(actor, item))`` for every item, in completion order.

    ``items`` is consumed lazily (at most ``depth`` per actor ahead of the results yielded), so a caller
    can stop producing items based on the results it has seen. A failed call raises from ``ray.get``.
    """
    import ray

    pending = iter(items)
    owner: dict[Any, Any] = {}  # in-flight future -> the actor running it

    def submit(actor: Any) -> None:
        for item in pending:
            owner[call(actor, item)] = actor
            return

    for _ in range(depth):
        for actor in actors:
            submit(actor)
    while owner:
        [ready], _ = ray.wait(list(owner), num_returns=1)
        actor = owner.pop(ready)
        result = ray.get(ready)
        submit(actor)  # before yielding: the actor stays busy while the caller handles this result
        yield result
