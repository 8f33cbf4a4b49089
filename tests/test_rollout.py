"""The rollout engine: lockstep lanes, one batched query per step, per-episode noise, row independence."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from handbench.baselines import BASELINES, get_baseline

from handbench.evaluation import EvalConfig, run_evaluation
from handbench.evaluation.results import TIMING_COLUMNS
from handbench.policy import BatchPolicy, Policy
from handbench.registry import make_env
from handbench.rollout import BatchDriver, EpisodeDriver, EpisodeRequest, lane_dependent_rows, run_lanes
from handbench.seeding import policy_noise_seed
from handbench.training.batch import model_inputs
from handbench.training.normalizer import fit_policy_normalizer
from handbench.training.runtime import TrainedPolicy, observation_arrays
from handbench.training.spec import ObsActionSpec

TASK, HAND = "lift-cube", "hb16"
SEEDS = [1_000_000 + i for i in range(5)]


class NoisyLanes:
    """A stochastic policy with both forms: home pose plus noise from each lane's own stream.

    It records the width of every batched call, which lanes were live, and the noise seeds lanes got.
    """

    def __init__(self, scale: float = 0.05) -> None:
        env = make_env(TASK, HAND)
        self.home = env.home_ctrl.astype(np.float32)
        self.low, self.high = env.action_space.low, env.action_space.high
        env.close()
        self.scale = scale
        self.streams: dict[int, np.random.Generator] = {}
        self.widths: list[int] = []
        self.live: list[tuple[int, ...]] = []
        self.noise_seeds: list[int | None] = []

    def reset(self) -> None:
        self.reset_lane(0)

    def act(self, observation):
        return self.act_batch([observation])[0]

    def reset_lane(self, lane: int, noise_seed: int | None = None) -> None:
        self.noise_seeds.append(noise_seed)
        self.streams[lane] = np.random.default_rng(0 if noise_seed is None else noise_seed)

    def act_batch(self, observations):
        self.widths.append(len(observations))
        self.live.append(tuple(i for i, obs in enumerate(observations) if obs is not None))
        actions = np.zeros((len(observations), len(self.home)), dtype=np.float32)
        for i, obs in enumerate(observations):
            if obs is not None:
                noisy = self.home + self.scale * self.streams[i].standard_normal(len(self.home))
                actions[i] = np.clip(noisy, self.low, self.high)
        return actions


def traces_by_seed(width: int, policy_noise: str, seeds=SEEDS, steps=(6, 3, 8, 2, 5), env_threads: int = 1,
                   record: bool = False, policy: NoisyLanes | None = None):
    policy = policy or NoisyLanes()
    envs = [make_env(TASK, HAND) for _ in range(width)]
    requests = [EpisodeRequest(seed, max_steps, stop_on_success=False, record=record)
                for seed, max_steps in zip(seeds, steps, strict=True)]
    traces = {t.seed: t for t in run_lanes(envs, BatchDriver(policy, width, policy_noise), requests,
                                           env_threads=env_threads)}
    return traces, policy


def test_policy_protocols_are_recognised():
    policy = NoisyLanes()
    assert isinstance(policy, Policy) and isinstance(policy, BatchPolicy)


def test_engine_queries_every_live_lane_once_per_step_at_a_fixed_width():
    traces, policy = traces_by_seed(width=3, policy_noise="episode")
    assert {seed: traces[seed].steps for seed in SEEDS} == dict(zip(SEEDS, (6, 3, 8, 2, 5), strict=True))
    assert set(policy.widths) == {3}  # idle lanes are padded (None), never dropped
    # Lanes 0-2 start seeds 0-2; lane 1 (3 steps) takes seed 3 (2 steps), then seed 4 (5 steps) at step 5.
    assert policy.live[0] == (0, 1, 2) and len(policy.widths) == 10  # seed 4 runs steps 5..9
    assert policy.live[-1] == (1,)
    assert sum(len(live) for live in policy.live) == sum((6, 3, 8, 2, 5))


def test_results_do_not_depend_on_lane_width_or_order():
    """With per-episode noise, an episode's actions depend only on its seed: width 1, 3 or shuffled."""
    one, _ = traces_by_seed(width=1, policy_noise="episode")
    three, _ = traces_by_seed(width=3, policy_noise="episode")
    shuffled, _ = traces_by_seed(width=3, policy_noise="episode", seeds=SEEDS[::-1], steps=(5, 2, 8, 3, 6))
    for seed in SEEDS:
        assert one[seed].total_return == three[seed].total_return == shuffled[seed].total_return
        assert one[seed].steps == three[seed].steps == shuffled[seed].steps


def test_stepping_the_lanes_envs_in_threads_changes_no_episode():
    """env_threads=2 steps the live lanes' envs at once: every action, reward, recorded state and final state, the
    order episodes end in and the policy's calls are those of the one-thread engine."""
    serial, serial_policy = traces_by_seed(width=3, policy_noise="episode", record=True)
    threaded, threaded_policy = traces_by_seed(width=3, policy_noise="episode", record=True, env_threads=2)
    assert list(serial) == list(threaded)  # episodes end in the same order
    assert serial_policy.live == threaded_policy.live and serial_policy.noise_seeds == threaded_policy.noise_seeds
    for seed in SEEDS:
        a, b = serial[seed], threaded[seed]
        assert (a.steps, a.rewards, a.total_return, a.error) == (b.steps, b.rewards, b.total_return, b.error)
        assert all(np.array_equal(x, y) for x, y in zip(a.actions, b.actions, strict=True))
        assert all(np.array_equal(x, y) for x, y in zip(a.states + [a.final_state], b.states + [b.final_state],
                                                        strict=True))

    class NaNOnLaneOne(NoisyLanes):
        def act_batch(self, observations):
            actions = super().act_batch(observations)
            actions[1] = np.nan
            return actions

    failing, _ = traces_by_seed(width=2, policy_noise="episode", env_threads=2, policy=NaNOnLaneOne())
    assert all("NaN" in failing[seed].error for seed in (SEEDS[1], SEEDS[2], SEEDS[3]))
    assert failing[SEEDS[0]].error == "" and failing[SEEDS[0]].steps == 6
    with pytest.raises(ValueError, match="env_threads must be >= 1"):
        next(run_lanes([make_env(TASK, HAND)], BatchDriver(NoisyLanes(), 1), [], env_threads=0))


def test_noise_is_fixed_under_hb_v1_and_per_episode_under_hb_v2():
    _, fixed = traces_by_seed(width=1, policy_noise="fixed")
    assert fixed.noise_seeds == [None] * len(SEEDS)  # the policy's own fixed seed (0), as published
    _, episode = traces_by_seed(width=2, policy_noise="episode")
    assert sorted(episode.noise_seeds) == sorted(policy_noise_seed(seed, "episode") for seed in SEEDS)
    assert len(set(episode.noise_seeds)) == len(SEEDS)
    first = policy_noise_seed(SEEDS[0], "episode")
    assert first == policy_noise_seed(SEEDS[0], "episode") != policy_noise_seed(SEEDS[1], "episode")


def test_a_bad_action_fails_only_its_episode():
    class NaNOnLaneOne(NoisyLanes):
        def act_batch(self, observations):
            actions = super().act_batch(observations)
            actions[1] = np.nan
            return actions

    envs = [make_env(TASK, HAND) for _ in range(2)]
    requests = [EpisodeRequest(seed, 4, stop_on_success=False) for seed in SEEDS[:2]]
    traces = {t.seed: t for t in run_lanes(envs, BatchDriver(NaNOnLaneOne(), 2, "episode"), requests)}
    assert traces[SEEDS[0]].error == "" and traces[SEEDS[0]].steps == 4
    assert "NaN" in traces[SEEDS[1]].error and traces[SEEDS[1]].steps == 0


def test_simple_policies_and_experts_run_one_lane_per_episode():
    env = make_env(TASK, HAND)
    driver = EpisodeDriver(lambda env, seed: env.make_expert(seed, 0.0))
    (trace,) = run_lanes([env], driver, [EpisodeRequest(SEEDS[0], env.task.max_episode_steps)])
    assert trace.success and trace.error == "" and trace.strategy


# ---------------------------------------------------------------------------------------------- baselines
def baseline_policy(name: str, device: str = "cpu") -> TrainedPolicy:
    """An untrained cpu-small baseline for lift-cube/hb16 state observations (its inference path is what counts)."""
    env = make_env(TASK, HAND)
    obs = env.reset(seed=SEEDS[0])[0]
    keys = ("agent_pos", "environment_state", "tactile")
    state_dim = sum(obs[key].size for key in keys)
    action_dim = env.action_space.shape[0]
    spec = ObsActionSpec("state", keys, state_dim, action_dim)
    module = get_baseline(name)
    torch.manual_seed(0)
    model = module.MODEL(module.PRESETS["cpu-small"].model, spec)
    rng = np.random.default_rng(0)
    normalizer = fit_policy_normalizer(rng.normal(size=(64, state_dim)),
                                       rng.uniform(env.action_space.low, env.action_space.high, (64, action_dim)))
    return TrainedPolicy(model, normalizer, spec, device=device)


def lane_observations(count: int, seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    env = make_env(TASK, HAND)
    observations = []
    for _ in range(count):
        obs = env.reset(seed=int(rng.integers(1_000_000, 1_000_050)))[0]
        observations.append({k: v + rng.normal(scale=0.01, size=v.shape).astype(np.float32) for k, v in obs.items()})
    return observations


DEVICES = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_a_rows_actions_do_not_depend_on_the_other_rows(name, device):
    """At the default protocol's width (hb-v2: 32), lane 0's actions are bit-identical whatever the other rows hold
    (or if idle)."""
    from handbench.protocol import load_protocol

    torch.set_num_threads(1)
    width, steps = load_protocol().lanes, 3
    mine = lane_observations(1, seed=1)[0]
    runs = []
    for others in ("crowd-a", "crowd-b", "idle"):
        policy = baseline_policy(name, device)
        crowd = lane_observations(width - 1, seed=len(others) + ord(others[-1]))
        for lane in range(width):
            policy.reset_lane(lane, noise_seed=policy_noise_seed(SEEDS[0] + lane, "episode"))
        actions = []
        for _ in range(steps):
            rows = [mine, *(crowd if others != "idle" else [None] * (width - 1))]
            actions.append(policy.act_batch(rows)[0])
        runs.append(np.stack(actions))
    assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[0], runs[2])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", sorted(BASELINES))
def test_a_rows_actions_do_not_depend_on_its_lane(name, device):
    """At the default protocol's width, the same observation and noise stream give bit-identical actions in every
    lane, so an episode's result does not depend on which lane the grouping of episodes put it in. (At widths of
    25, 50 and 56, Diffusion Policy's last row took another oneDNN kernel path and differed by about 4e-7.)"""
    from handbench.protocol import load_protocol

    torch.set_num_threads(1)
    width = load_protocol().lanes
    rows = [*lane_observations(1, seed=1), *lane_observations(width - 1, seed=2)]
    seeds = [policy_noise_seed(SEEDS[0] + lane, "episode") for lane in range(width)]
    assert lane_dependent_rows(baseline_policy(name, device), rows, seeds) == []


def test_the_lane_check_finds_a_row_that_depends_on_its_lane():
    """The check itself can fail: a policy whose last lane computes differently is caught there, and only there."""

    class LastLaneOff(NoisyLanes):
        def act_batch(self, observations):
            actions = super().act_batch(observations)
            actions[-1] = actions[-1] + np.float32(1e-6)
            return actions

    rows = lane_observations(4, seed=5)
    assert lane_dependent_rows(LastLaneOff(), rows, [11, 12, 13, 14]) == [3]
    assert lane_dependent_rows(NoisyLanes(), rows, [11, 12, 13, 14]) == []
    with pytest.raises(ValueError, match="4 observations but 3 noise seeds"):
        lane_dependent_rows(NoisyLanes(), rows, [11, 12, 13])


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_width_one_with_the_fixed_seed_is_the_published_single_episode_query(name):
    """Protocol hb-v1: one lane seeded with the policy's seed is the one-generator query the baselines made."""
    torch.set_num_threads(1)
    policy = baseline_policy(name)
    obs = lane_observations(1, seed=3)[0]
    policy.reset()
    batched = policy.act(obs)
    policy.reset()
    lane = policy.lanes[0]
    lane.history.extend([observation_arrays(obs, policy.spec)] * policy.obs_steps)
    states = np.stack([s for s, _ in lane.history])[None]
    generator = torch.Generator().manual_seed(policy.seed)
    single = policy.model.predict_action(model_inputs(states, None, policy.normalizer, policy.device),
                                         generator=generator)[0].clamp(-1.0, 1.0)
    expected = policy.normalizer.unnormalize("action", single).numpy()[policy.obs_steps - 1]
    assert np.array_equal(batched, expected.astype(np.float32))


# ---------------------------------------------------------------------------------------------- evaluator
@pytest.mark.slow
def test_evaluation_is_identical_for_0_1_2_workers_and_any_lane_width():
    """A stochastic batched policy, per-episode noise: per-episode results whatever the workers or the width."""
    frames = {}
    for workers, lanes in ((0, 8), (1, 8), (2, 8), (0, 1)):
        result = run_evaluation(EvalConfig(policy=NoisyLanes(scale=0.2), task=TASK, hand=HAND, episodes=10,
                                           workers=workers, lanes=lanes, policy_noise="episode", progress=False))
        frame = result.episodes.drop(columns=list(TIMING_COLUMNS))
        assert set(frame["lanes"]) == {lanes} and result.meta["rollout"]["lanes"] == lanes
        # two workers split the 10 episodes into groups of one width (8 + 2); in-process one group refills its lanes
        assert result.meta["workers"] == (2 if (workers, lanes) == (2, 8) else min(workers, 1) if lanes == 8 else 0)
        frames[(workers, lanes)] = frame.drop(columns=["lanes"])
    reference = frames[(0, 8)]
    assert reference["return"].nunique() > 1  # the noise matters
    for key, frame in frames.items():
        assert frame.equals(reference), key


def test_hb_v1_evaluation_queries_one_episode_at_a_time_with_fixed_noise():
    policy = NoisyLanes()
    result = run_evaluation(EvalConfig(policy=policy, task=TASK, hand=HAND, episodes=2, workers=0,
                                       protocol="hb-v1", progress=False))
    assert result.meta["rollout"] == {"lanes": 1, "policy_noise": "fixed", "protocol_lanes": 1,
                                      "protocol_policy_noise": "fixed"}
    assert set(policy.widths) == {1} and policy.noise_seeds == [None, None]
    assert list(result.episodes["lanes"]) == [1, 1]


def test_resumed_rows_must_come_from_the_same_lane_width(tmp_path):
    def run(lanes):
        return run_evaluation(EvalConfig(policy=NoisyLanes(), task=TASK, hand=HAND, episodes=2, workers=0, lanes=lanes,
                                         policy_noise="episode", out=tmp_path, progress=False))

    assert run(8).meta["episodes_run_now"] == 2
    assert run(8).meta["episodes_reused"] == 2  # same width: resumed
    again = run(1)
    assert again.meta["episodes_stale_rerun"] == 2 and set(again.episodes["lanes"]) == {1}
