"""Predictive sampling (handbench.planning): it optimizes the cost, it is deterministic whatever the thread
count, unstable rollouts never win, and bad settings are refused with one line."""

from __future__ import annotations

import dataclasses

import mujoco
import numpy as np
import pytest

from handbench.env import HandEnv
from handbench.errors import HandbenchError
from handbench.planning import CostTerm, PhysicsView, PlannerConfig, PredictiveSampler, total_cost
from handbench.registry import make_env

TASK = "reorient-cube"
SMALL = PlannerConfig(samples=6, horizon=0.15, knots=2, planning_timestep=0.01, noise=0.1)


def sampler_for(env: HandEnv, terms, config: PlannerConfig, seed: int = 0) -> PredictiveSampler:
    hand = env.hand
    free = np.zeros(env.model.nu, dtype=bool)
    free[hand.n_wrist:] = True
    fixed = env.data.ctrl.copy()
    return PredictiveSampler(env.model, env.dt, free, fixed, terms, config, np.random.default_rng(seed))


def run_actions(threads: int, steps: int = 4, config: PlannerConfig = SMALL) -> np.ndarray:
    env = make_env(TASK, "hb16")
    env.reset(seed=3)
    sampler = sampler_for(env, env.task.cost_terms(), dataclasses.replace(config, threads=threads))
    actions = []
    for _ in range(steps):
        action = sampler.act(env.data)
        env.step(action)
        actions.append(action)
    sampler.close()
    return np.array(actions)


def test_same_actions_whatever_the_thread_count():
    serial = run_actions(threads=0)
    np.testing.assert_array_equal(serial, run_actions(threads=2))
    np.testing.assert_array_equal(serial, run_actions(threads=3))


def test_refined_sparse_implicit_search_is_deterministic_too():
    """Two searches per step, sparse noise, the implicit planning integrator and the env check: still
    thread-count free."""
    config = dataclasses.replace(SMALL, iterations=2, noise_density=0.5, integrator="implicit", verify_steps=1)
    serial = run_actions(threads=0, steps=3, config=config)
    np.testing.assert_array_equal(serial, run_actions(threads=2, steps=3, config=config))
    assert not np.array_equal(serial, run_actions(threads=0, steps=3))


def test_pyramidal_frictionless_planning_model_is_deterministic_and_leaves_the_env_alone():
    """cone="pyramidal" and frictionloss=False change only the planner's copy of the model."""
    config = dataclasses.replace(SMALL, cone="pyramidal", frictionloss=False, integrator="implicit")
    serial = run_actions(threads=0, steps=3, config=config)
    np.testing.assert_array_equal(serial, run_actions(threads=2, steps=3, config=config))
    env = make_env(TASK, "shadow")
    env.reset(seed=3)
    cone, friction = env.model.opt.cone, env.model.dof_frictionloss.copy()
    sampler = sampler_for(env, env.task.cost_terms(), config)
    assert sampler.model.opt.cone == mujoco.mjtCone.mjCONE_PYRAMIDAL and not sampler.model.dof_frictionloss.any()
    assert env.model.opt.cone == cone and friction.any()
    np.testing.assert_array_equal(env.model.dof_frictionloss, friction)


def test_keeps_the_lowest_cost_rollout():
    """With a cost on one finger target, the chosen controls move toward it and the kept cost falls."""
    env = make_env(TASK, "hb16")
    env.reset(seed=0)
    joint = env.hand.n_wrist + 1
    target = env.hand.ctrl_low[joint] + 0.8 * (env.hand.ctrl_high[joint] - env.hand.ctrl_low[joint])
    term = CostTerm("reach", 1.0, lambda view: np.abs(view.ctrl[..., joint] - target))
    sampler = sampler_for(env, [term], SMALL)
    start = abs(env.data.ctrl[joint] - target)
    costs = []
    for _ in range(6):
        action = sampler.act(env.data)
        costs.append(sampler.last_cost)
        env.step(action)
    assert abs(action[joint] - target) < start
    assert costs[-1] < costs[0]
    # The wrist (not free) stays at its fixed targets.
    np.testing.assert_array_equal(action[: env.hand.n_wrist], env.data.ctrl[: env.hand.n_wrist])


def test_unstable_rollouts_get_infinite_cost():
    env = make_env(TASK, "hb16")
    env.reset(seed=0)
    sampler = sampler_for(env, env.task.cost_terms(), SMALL)
    sampler.act(env.data)  # fills the sampler's copy of the start state
    samples, steps = 3, sampler.steps * sampler.substeps
    time = sampler._state[0] + np.arange(1, steps + 1) * sampler.model.opt.timestep
    states = np.tile(sampler._state, (samples, steps, 1))
    states[..., 0] = time
    states[1, steps // 2:, 0] = 0.0  # MuJoCo reset this rollout (its clock jumped back): a physics failure
    states[2, -1, 1 + env.model.nq] = 1e4  # a huge velocity
    sensors = np.zeros((samples, steps, env.model.nsensordata))
    controls = np.tile(env.data.ctrl, (samples, steps, 1))
    costs = sampler._score(states, sensors, controls)
    assert np.isfinite(costs[0])
    assert np.isinf(costs[1]) and np.isinf(costs[2])


def test_env_check_replays_the_env_exactly_and_flags_failures():
    """fails_in_env steps a copy of the live state on the env's own model: the env's next state, exactly."""
    env = make_env(TASK, "hb16")
    env.reset(seed=0)
    sampler = sampler_for(env, env.task.cost_terms(), dataclasses.replace(SMALL, verify_steps=1))
    action = env.data.ctrl.copy()
    action[env.hand.n_wrist:] = env.hand.ctrl_high[env.hand.n_wrist:]
    qpos = env.data.qpos.copy()
    assert not sampler.fails_in_env(env.data, action[None])
    np.testing.assert_array_equal(env.data.qpos, qpos)  # the live state is untouched
    env.step(action)
    np.testing.assert_array_equal(sampler._check.qpos, env.data.qpos)
    env.data.qvel[env.task.object_qvel] = 1e3  # a state that is already blowing up
    assert sampler.fails_in_env(env.data, action[None])


def test_a_plan_failing_in_the_env_gives_way_to_the_next_cheapest():
    env = make_env(TASK, "hb16")
    env.reset(seed=0)
    sampler = sampler_for(env, env.task.cost_terms(), dataclasses.replace(SMALL, verify_steps=2,
                                                                          verify_candidates=3))
    checked = []

    def fails_once(data, controls):
        checked.append(controls)
        return len(checked) == 1

    sampler.fails_in_env = fails_once
    costs = np.array([3.0, 1.0, 2.0, np.inf, 5.0, 4.0])
    controls = np.random.default_rng(0).random((len(costs), sampler.steps * sampler.substeps, env.model.nu))
    assert sampler._safest_cheapest(env.data, costs, controls) == 2
    assert sampler.rejected == 1
    np.testing.assert_array_equal(checked[0], controls[1, :: sampler.substeps][:2])  # the first 2 control steps
    sampler.fails_in_env = lambda data, controls: True
    assert sampler._safest_cheapest(env.data, costs, controls) == 1  # none passes: the cheapest after all


def test_cost_terms_share_shapes_with_a_live_state():
    env = make_env(TASK, "hb16")
    env.reset(seed=0)
    view = PhysicsView.of_data(env.data)
    terms = env.task.cost_terms()
    assert len({term.name for term in terms}) == len(terms)
    assert np.shape(total_cost(terms, view)) == ()
    batch = PhysicsView(*(np.tile(np.asarray(a), (2, 3, 1)) for a in (view.qpos, view.qvel, view.sensordata,
                                                                          view.ctrl)))
    np.testing.assert_allclose(total_cost(terms, batch), float(total_cost(terms, view)))


@pytest.mark.parametrize("field, value", [("samples", 1), ("knots", 1), ("planning_timestep", 0.0),
                                          ("noise", -0.1), ("threads", -1), ("iterations", 0),
                                          ("noise_density", 0.0), ("noise_density", 1.5), ("integrator", "verlet"),
                                          ("cone", "round"),
                                          ("verify_steps", -1), ("verify_candidates", 0), ("retry_horizon", -0.1),
                                          ("retry_knots", 1)])
def test_bad_settings_are_refused(field, value):
    with pytest.raises(HandbenchError, match=field if field != "planning_timestep" else "timestep"):
        dataclasses.replace(PlannerConfig(), **{field: value})


def test_the_stalled_retry_plans_over_its_own_horizon():
    """retry_horizon/retry_knots: while the expert retries a stalled search it plans with a second sampler over the
    longer horizon; without them there is no second sampler."""
    assert PlannerConfig().for_retry() is None
    config = PlannerConfig(horizon=0.3, knots=3, retry_horizon=0.6, retry_knots=4)
    retry = config.for_retry()
    assert (retry.horizon, retry.knots, retry.for_retry()) == (0.6, 4, None)
    env = make_env("rotate-block", "hb16")
    assert env.task.planner_config().for_retry() is not None  # rotate-block v1 retries over 0.6 s
    obs, _ = env.reset(seed=3)
    expert = env.make_expert(3)
    expert.reset()
    obs, *_ = env.step(expert.act(obs))
    assert expert.active is expert.sampler and expert.retry_sampler.steps == 2 * expert.sampler.steps
    expert.boost_steps = 2  # as after a stall
    expert.act(obs)
    assert expert.active is expert.retry_sampler and np.isfinite(expert.retry_sampler.last_cost)
    expert.act(obs)  # the retry's last step, then back to the usual planner
    expert.act(obs)
    assert expert.active is expert.sampler
