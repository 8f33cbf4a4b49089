"""Where a trained policy's state inputs leave its demonstrations: per dimension, how many standard deviations away.

A baseline normalises each state dimension with the mean and standard deviation of its training demonstrations
(``handbench.training.normalizer``, ``gaussian`` mode). A dimension the expert hardly moves has a tiny standard
deviation, so a deflection the demonstrations never showed reaches the network as a huge input, and what the
network does with it is undefined. :func:`check_inputs` rolls a state-mode checkpoint out on a protocol's eval
seeds and records, for every state dimension, the largest |normalised value| of the observations the policy was
given (at every control step; a policy that executes action chunks feeds the network only at its query steps), and
for every episode the first control step at which some dimension left ``bound`` standard deviations.

``pin`` is the counterfactual that tests a suspicion: the named dimensions are replaced by their demonstration
mean before the policy sees them (the env and the success rule are untouched). If success rises, those inputs
were what broke the policy. The rollouts run one episode at a time with the policy's fixed noise seed (protocol
hb-v1's execution), so compare runs of this check with each other, not with a protocol's results.
``handbench check-inputs`` prints it.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from handbench.errors import HandbenchError
from handbench.pinned import make_env
from handbench.protocol import eval_seeds
from handbench.rollout import EpisodeRequest, run_episode
from handbench.training.runtime import observation_arrays

if TYPE_CHECKING:
    from handbench.env import HandEnv
    from handbench.training.runtime import TrainedPolicy

DEFAULT_BOUND = 10.0  # standard deviations: far outside anything the demonstrations showed


def state_dimension_names(env: HandEnv, state_keys: Sequence[str]) -> list[str]:
    """A name per entry of the concatenated state vector, in ``state_keys`` order.

    ``agent_pos``: ``<joint>.pos`` then ``<joint>.vel`` for every hand joint; ``tactile``: the touch sensors;
    ``environment_state``: ``environment_state[i]`` (its layout is the task's ``state_size`` comment)."""
    spec = env.hand.spec
    joints = list(spec.wrist_joints + spec.finger_joints)
    names: list[str] = []
    for key in state_keys:
        if key == "agent_pos":
            names += [f"{joint}.pos" for joint in joints] + [f"{joint}.vel" for joint in joints]
        elif key == "tactile":
            names += list(spec.touch_sensors)
        else:
            names += [f"{key}[{i}]" for i in range(int(np.prod(env.observation_space[key].shape)))]
    return names


def select_dimensions(names: Sequence[str], patterns: Sequence[str]) -> np.ndarray:
    """Indices of ``names`` matched by any of the shell-style ``patterns`` (``*_abd.*``).

    Raises :class:`HandbenchError` naming a pattern that matches nothing, and what is valid."""
    chosen: set[int] = set()
    for pattern in patterns:
        hits = [i for i, name in enumerate(names) if fnmatch.fnmatchcase(name, pattern)]
        if not hits:
            raise HandbenchError(f"--pin {pattern!r} matches no state dimension; valid names: {', '.join(names)}")
        chosen.update(hits)
    return np.array(sorted(chosen), dtype=int)


class InspectedPolicy:
    """A Policy wrapper: records the normalised state at every step, and gives the policy pinned inputs."""

    def __init__(self, policy: TrainedPolicy, pinned: np.ndarray) -> None:
        self.policy = policy
        normalizer = policy.normalizer
        self.scale = normalizer.scale["state"].double().numpy()
        self.offset = normalizer.offset["state"].double().numpy()
        self.mean = -self.offset / self.scale  # the demonstrations' mean of each dimension
        self.pinned = pinned
        self.z: list[np.ndarray] = []  # per step: the normalised state the env produced (before pinning)

    def reset(self) -> None:
        self.z = []
        self.policy.reset()

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        state = observation_arrays(observation, self.policy.spec)[0].astype(np.float64)
        self.z.append(state * self.scale + self.offset)
        if len(self.pinned):
            observation = dict(observation)
            start = 0
            for key in self.policy.spec.state_keys:
                values = np.asarray(observation[key], dtype=np.float32).ravel().copy()
                inside = self.pinned[(self.pinned >= start) & (self.pinned < start + len(values))]
                values[inside - start] = self.mean[inside]
                observation[key] = values
                start += len(values)
        return self.policy.act(observation)


@dataclass(frozen=True)
class InputEpisode:
    seed: int
    success: bool
    steps: int
    first_step: int | None  # first control step (0-based) with some |normalised input| > bound; None: never
    first_dimension: str  # the dimension furthest out at that step ("" if never)
    first_value: float  # its |normalised value|
    error: str  # the episode's error ("" if none), e.g. an out-of-range action


@dataclass(frozen=True)
class InputCheck:
    """A checkpoint's rollouts on one task and hand, and how far its state inputs left the demonstrations."""

    task: str
    hand: str
    protocol: str
    names: tuple[str, ...]
    unit: np.ndarray  # (D,) the raw change one normalised unit stands for: the demonstrations' standard deviation
    # (1 for a dimension the demonstrations hold constant, std <= 1e-4, which the normaliser only centres)
    largest: np.ndarray  # (D,) the largest |normalised value| of each dimension over every step of every episode
    episodes_beyond: np.ndarray  # (D,) in how many episodes each dimension went beyond ``bound``
    episodes: tuple[InputEpisode, ...]
    pinned: tuple[str, ...]
    bound: float

    @property
    def successes(self) -> int:
        return sum(e.success for e in self.episodes)

    def furthest(self, count: int) -> list[int]:
        """Indices of the ``count`` dimensions that went furthest out, furthest first."""
        return [int(i) for i in np.argsort(-self.largest, kind="stable")[:count]]


def check_inputs(checkpoint: str | Path, protocol: str, seeds: int | None = None, pin: Sequence[str] = (),
                 bound: float = DEFAULT_BOUND) -> InputCheck:
    """Roll ``checkpoint`` (a state-mode ``handbench train`` policy.pt) out on the first ``seeds`` eval seeds of
    its task in ``protocol`` (all if None), at the task and hand versions the protocol pins.

    Raises :class:`HandbenchError` for a pixels checkpoint, one trained for another task version or scene, a
    ``pin`` pattern that matches no dimension, or ``seeds`` outside 1..(number of eval seeds)."""
    from handbench.training.checkpoint import load_policy, read_checkpoint

    content = read_checkpoint(checkpoint)
    attrs = content["provenance"].get("dataset_attrs", {})
    if content["spec"].get("cameras"):
        raise HandbenchError(f"checkpoint {Path(checkpoint).name} was trained on pixels; check-inputs reads the "
                             f"state inputs of state-mode checkpoints")
    task, hand = str(attrs["task"]), str(attrs["hand"])
    env = make_env(task, hand, protocol=protocol)
    try:
        policy = load_policy(checkpoint, task=task, task_version=env.task.version, hand=hand,
                             model_hash=env.model_hash)
        names = state_dimension_names(env, policy.spec.state_keys)
        pinned = select_dimensions(names, pin) if pin else np.zeros(0, dtype=int)
        inspected = InspectedPolicy(policy, pinned)
        chosen = eval_seeds(task, protocol)
        if seeds is not None and not 1 <= seeds <= len(chosen):
            raise HandbenchError(f"--seeds must be in 1..{len(chosen)} (the eval seeds), got {seeds}")
        episodes, largest, beyond = [], np.zeros(len(names)), np.zeros(len(names), dtype=int)
        for seed in chosen[:seeds] if seeds else chosen:
            trace = run_episode(env, inspected, EpisodeRequest(seed, env.task.max_episode_steps))
            z = np.abs(np.array(inspected.z))
            largest = np.maximum(largest, z.max(0))
            beyond += (z > bound).any(0)
            out = np.flatnonzero((z > bound).any(1))
            step = int(out[0]) if len(out) else None
            worst = int(z[step].argmax()) if step is not None else -1
            episodes.append(InputEpisode(seed, trace.success, trace.steps, step, names[worst] if step is not None
                                         else "", float(z[step, worst]) if step is not None else 0.0,
                                         trace.error or trace.physics_error))
    finally:
        env.close()
    return InputCheck(task, hand, protocol, tuple(names), 1.0 / inspected.scale, largest, beyond, tuple(episodes),
                      tuple(names[i] for i in pinned), bound)
