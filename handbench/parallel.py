"""Work over Ray actors with no idle gaps: the one pool that demo generation and evaluation share.

Ray's ``ActorPool`` hands an actor its next item only after the driver has collected the previous
result, so every actor waits for a round trip (and whatever the driver does with the result, e.g.
writing an episode file) between items. Here each actor keeps ``depth`` calls queued (Ray runs an
actor's calls one at a time, in order), so it starts the next episode the moment one ends.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

IN_FLIGHT_PER_ACTOR = 2


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
