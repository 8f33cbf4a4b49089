"""Training pipeline: data windows, normalisers, split, checkpoints, resume, load_policy and bad input."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from handbench.baselines import get_baseline

import handbench
from handbench.cli import main as cli_main
from handbench.dataset import DatasetHeader, Episode, dataset_hash, flat_observation, write_dataset
from handbench.errors import HandbenchError
from handbench.registry import make_env
from handbench.training import trainer as trainer_module
from handbench.training.checkpoint import FORMAT_VERSION, load_policy, read_checkpoint, save_checkpoint
from handbench.training.config import TrainConfig
from handbench.training.data import DemoData, WindowSampler, load_demos, split_episodes
from handbench.training.normalizer import Normalizer, fit_policy_normalizer
from handbench.training.runtime import TrainedPolicy
from handbench.training.spec import ObsActionSpec
from handbench.training.trainer import TrainRequest, train

torch.set_num_threads(1)
IMAGE_SIZE = (16, 16)
TINY_BC = {"hidden": 32, "depth": 1, "image_channels": (8, 16), "image_feature_dim": 8}
TINY_DIFFUSION = {"down_dims": (16, 32), "step_embed_dim": 16, "horizon": 8, "action_steps": 4, "groups": 4,
                  "image_channels": (8, 16), "image_feature_dim": 8}
TINY_ACT = {"d_model": 16, "heads": 2, "encoder_layers": 1, "decoder_layers": 1, "cvae_layers": 1, "feedforward": 32,
            "horizon": 4, "action_steps": 4, "latent_dim": 4, "image_channels": (8, 16)}


def record_expert_dataset(path, obs_mode: str, seeds, steps: int) -> None:
    """The lift-cube expert's first ``steps`` steps for each seed, written in the canonical schema."""
    import mujoco  # after handbench, which picks the headless GL backend first
    cameras = ["overview", "top"] if obs_mode == "pixels" else []
    env = make_env("lift-cube", "hb16", obs_mode=obs_mode, cameras=cameras or None, image_size=IMAGE_SIZE)
    episodes = []
    for seed in seeds:
        obs, _ = env.reset(seed=seed)
        expert = env.make_expert(seed)
        expert.reset()
        observations, actions, states = {}, [], []
        for _ in range(steps):
            states.append(env.full_state())
            for key, value in flat_observation(env.state_observation(), obs.get("pixels")).items():
                observations.setdefault(key, []).append(value)
            actions.append(expert.act(obs))
            obs, *_ = env.step(actions[-1])
        episodes.append(Episode(seed=seed, success=False, strategy=expert.strategy, action_noise=0.0,
                                episode_params={}, actions=np.asarray(actions, np.float32),
                                observations={k: np.stack(v) for k, v in observations.items()},
                                rewards=np.zeros(steps, np.float32), states=np.asarray(states),
                                final_observation=flat_observation(env.state_observation(), obs.get("pixels")),
                                final_state=env.full_state()))
    header = DatasetHeader(task="lift-cube", task_version=env.task.version, hand="hb16",
                           env_name="handbench/lift-cube-hb16-v0", expert_version=0, model_hash=env.model_hash,
                           obs_mode=obs_mode, cameras=cameras, image_size=list(IMAGE_SIZE), frame_skip=env.frame_skip,
                           control_dt=env.dt, action_noise=0.0, protocol="hb-v1",
                           handbench_version=handbench.__version__, mujoco_version=mujoco.__version__,
                           action_low=env.action_space.low.tolist(), action_high=env.action_space.high.tolist())
    write_dataset(path, header, episodes)
    env.close()


@pytest.fixture(scope="module")
def state_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "lift-state.hdf5"
    record_expert_dataset(path, "state", seeds=[1, 2, 3], steps=30)
    return path


@pytest.fixture(scope="module")
def pixel_dataset(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "lift-pixels.hdf5"
    record_expert_dataset(path, "pixels", seeds=[1, 2], steps=6)
    return path


def request_for(policy, dataset, out, steps=20, overrides=None, **train_overrides) -> TrainRequest:
    return TrainRequest(policy=policy, dataset=dataset, out=out, steps=steps, seed=3, device="cpu", threads=1,
                        progress=False, model_overrides=overrides or TINY_BC,
                        train_overrides={"batch_size": 8, "log_every": 5, "val_every": 10, "val_batches": 1,
                                         **train_overrides})


# ---------------------------------------------------------------------------------------------- data
def test_normalizer_round_trip_and_ranges():
    rng = np.random.default_rng(0)
    state = rng.normal(3.0, 2.0, (200, 4))
    state[:, 3] = 7.0  # a constant dimension
    actions = rng.uniform(-0.5, 2.0, (200, 3))
    normalizer = fit_policy_normalizer(state, actions)
    restored = Normalizer.from_state_dict(normalizer.state_dict())
    for key, values in (("state", state), ("action", actions)):
        x = torch.as_tensor(values, dtype=torch.float32)
        assert torch.allclose(restored.unnormalize(key, restored.normalize(key, x)), x, atol=1e-4)
    normalized_actions = normalizer.normalize("action", torch.as_tensor(actions, dtype=torch.float32))
    assert normalized_actions.min() == pytest.approx(-1.0, abs=1e-5)
    assert normalized_actions.max() == pytest.approx(1.0, abs=1e-5)
    normalized_state = normalizer.normalize("state", torch.as_tensor(state, dtype=torch.float32))
    assert torch.allclose(normalized_state[:, :3].mean(0), torch.zeros(3), atol=1e-4)
    assert torch.allclose(normalized_state[:, :3].std(0, unbiased=False), torch.ones(3), atol=1e-3)
    assert torch.all(normalized_state[:, 3] == 0)  # constant: mapped to 0, not divided by zero


def test_state_guard_floors_the_std_and_clamps_to_the_training_range():
    rng = np.random.default_rng(1)
    state = np.stack([rng.normal(0.0, 1.0, 500), rng.normal(0.5, 2e-4, 500)], axis=1)  # a joint held still
    actions = rng.uniform(-1.0, 1.0, (500, 2))
    legacy = fit_policy_normalizer(state, actions)
    guarded = fit_policy_normalizer(state, actions, state_std_floor=0.01, clamp_states=True)
    assert float(legacy.scale["state"][1]) == pytest.approx(1 / state[:, 1].std(), rel=1e-5)  # amplified ~5,000x
    assert float(guarded.scale["state"][1]) == pytest.approx(100.0)  # divided by the floor instead
    assert float(guarded.scale["state"][0]) == pytest.approx(float(legacy.scale["state"][0]))  # above the floor
    normalised = guarded.normalize("state", torch.as_tensor(state, dtype=torch.float32))
    assert torch.allclose(normalised.min(0).values, guarded.low["state"], atol=1e-5)
    assert torch.allclose(normalised.max(0).values, guarded.high["state"], atol=1e-5)
    deflected = torch.tensor([[50.0, 0.8]])  # far outside both dimensions' demonstrations
    assert legacy.normalize("state", deflected)[0, 1] > 1000
    assert torch.equal(guarded.normalize("state", deflected)[0], guarded.high["state"])
    assert not legacy.low and "low" not in legacy.state_dict()  # unguarded checkpoints keep their old layout
    restored = Normalizer.from_state_dict(guarded.state_dict())
    assert torch.equal(restored.normalize("state", deflected), guarded.normalize("state", deflected))
    actions_t = torch.as_tensor(actions, dtype=torch.float32)  # actions are never clamped
    assert torch.equal(guarded.normalize("action", actions_t), legacy.normalize("action", actions_t))


def test_state_guard_is_a_train_option_recorded_in_the_checkpoint(state_dataset, tmp_path, capsys):
    for bad in ("0", "-0.1", "nan"):
        assert cli_main(["train", "--policy", "bc", "--dataset", str(state_dataset), "--state-std-floor", bad,
                         "--out", str(tmp_path / "bad")]) == 2
        assert "--state-std-floor: must be a finite number > 0" in capsys.readouterr().err
    with pytest.raises(HandbenchError, match="state_std_floor must be a finite number > 0"):
        TrainConfig(state_std_floor=-1.0)
    result = train(request_for("bc", state_dataset, tmp_path / "guarded", steps=3, state_std_floor=0.01,
                               clamp_states=True))
    content = read_checkpoint(result.checkpoint)
    assert content["train_config"]["state_std_floor"] == 0.01 and content["train_config"]["clamp_states"] is True
    policy = load_policy(result.checkpoint)
    assert "state" in policy.normalizer.low and result.amplified_state_dims == 0
    plain = train(request_for("bc", state_dataset, tmp_path / "plain", steps=3))
    unguarded = load_policy(plain.checkpoint).normalizer
    scale = unguarded.scale["state"].double()  # the hint counts the dimensions this normaliser amplifies > 100x
    assert plain.amplified_state_dims == int(((scale > 100) & (scale < 1e4)).sum()) > 0
    assert not unguarded.low


def test_a_run_begun_before_the_state_guard_existed_resumes(state_dataset, tmp_path):
    train(request_for("bc", state_dataset, tmp_path / "run", steps=10, checkpoint_every=5))
    state_path = tmp_path / "run" / "train_state.pt"
    state = torch.load(state_path, weights_only=False)
    for key in ("state_std_floor", "clamp_states"):  # as an older handbench wrote it
        del state["signature"]["train_config"][key]
    state["step"] = 5
    torch.save(state, state_path)
    assert train(request_for("bc", state_dataset, tmp_path / "run", steps=10, checkpoint_every=5)).resumed_from == 5


def test_windows_pad_at_episode_edges():
    spec = ObsActionSpec("state", ("agent_pos",), 1, 1)
    frames = np.arange(7, dtype=np.float32)[:, None]  # episode 0: frames 0-3, episode 1: frames 4-6
    data = DemoData(spec, state=frames, actions=frames + 100, images=None, episode_ends=np.array([4, 7]),
                    episode_names=("demo_0", "demo_1"))
    sampler = WindowSampler(data, obs_steps=2, horizon=4)
    window = sampler.batch(np.array([0, 3, 4, 6]))
    assert window["state"][..., 0].tolist() == [[0, 0], [2, 3], [4, 4], [5, 6]]
    assert window["action"][..., 0].tolist() == [[100, 100, 101, 102], [102, 103, 103, 103],
                                                 [104, 104, 105, 106], [105, 106, 106, 106]]
    assert window["action_is_pad"].tolist() == [[True, False, False, False], [False, False, True, True],
                                                [True, False, False, False], [False, False, True, True]]


def test_split_is_by_episode_and_seeded():
    train_a, val_a = split_episodes(20, 0.1, seed=1)
    train_b, val_b = split_episodes(20, 0.1, seed=1)
    assert np.array_equal(train_a, train_b) and np.array_equal(val_a, val_b)
    assert len(val_a) == 2 and set(train_a).isdisjoint(val_a) and set(train_a) | set(val_a) == set(range(20))
    assert not np.array_equal(val_a, split_episodes(20, 0.1, seed=2)[1])
    assert len(split_episodes(1, 0.1, seed=0)[1]) == 0  # a single episode trains, no validation


def test_load_demos_reads_modes(state_dataset, pixel_dataset):
    data, attrs = load_demos(state_dataset)
    assert data.spec.state_keys == ("agent_pos", "environment_state", "tactile")
    assert data.num_episodes == 3 and data.state.shape[0] == 90 and attrs["task"] == "lift-cube"
    pixels, _ = load_demos(pixel_dataset)
    assert pixels.spec.cameras == ("overview", "top") and pixels.images.shape == (12, 2, 16, 16, 3)
    assert "environment_state" not in pixels.spec.state_keys
    assert load_demos(pixel_dataset, "state")[0].spec.obs_mode == "state"


# ---------------------------------------------------------------------------------------------- training
def test_train_writes_checkpoint_logs_and_a_ready_policy(state_dataset, tmp_path):
    result = train(request_for("bc", state_dataset, tmp_path / "run", steps=20))
    assert result.checkpoint == tmp_path / "run" / "policy.pt"
    assert (tmp_path / "run" / "losses.csv").is_file() and (tmp_path / "run" / "losses.png").is_file()
    content = read_checkpoint(result.checkpoint)
    provenance = content["provenance"]
    assert provenance["dataset_hash"] == dataset_hash(state_dataset)
    assert provenance["dataset_attrs"]["task"] == "lift-cube" and provenance["dataset_attrs"]["model_hash"]
    assert content["handbench_version"] == handbench.__version__ and content["format_version"] == FORMAT_VERSION
    assert set(provenance["train_episodes"]).isdisjoint(provenance["val_episodes"])
    policy = handbench.load_policy(result.checkpoint)
    assert policy.provenance["task"] == "lift-cube" and policy.provenance["obs_mode"] == "state"
    env = make_env("lift-cube", "hb16")
    obs, _ = env.reset(seed=1_000_000)
    action = policy.act(obs)
    assert action.shape == env.action_space.shape and np.all(np.isfinite(action))


def test_resume_after_interruption_matches_an_uninterrupted_run(state_dataset, tmp_path, monkeypatch):
    full = train(request_for("bc", state_dataset, tmp_path / "full", steps=30, checkpoint_every=10))
    original = trainer_module.model_batch
    calls = {"n": 0}

    def interrupted(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 16:
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "model_batch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(request_for("bc", state_dataset, tmp_path / "cut", steps=30, checkpoint_every=10))
    monkeypatch.setattr(trainer_module, "model_batch", original)
    resumed = train(request_for("bc", state_dataset, tmp_path / "cut", steps=30, checkpoint_every=10))
    assert resumed.resumed_from == 10
    full_weights = read_checkpoint(full.checkpoint)["weights"]
    resumed_weights = read_checkpoint(resumed.checkpoint)["weights"]
    assert all(torch.equal(full_weights[k], resumed_weights[k]) for k in full_weights)
    assert (tmp_path / "full" / "losses.csv").read_text() == (tmp_path / "cut" / "losses.csv").read_text()


def test_resume_refuses_a_folder_of_another_run(state_dataset, tmp_path):
    train(request_for("bc", state_dataset, tmp_path / "run", steps=5))
    with pytest.raises(HandbenchError, match="different seed"):
        train(dataclasses.replace(request_for("bc", state_dataset, tmp_path / "run", steps=5), seed=4))


def test_save_and_load_give_identical_actions(state_dataset, tmp_path):
    data, attrs = load_demos(state_dataset)
    module = get_baseline("diffusion")
    config = dataclasses.replace(module.CONFIG(), **TINY_DIFFUSION)
    torch.manual_seed(0)
    model = module.MODEL(config, data.spec)
    normalizer = fit_policy_normalizer(data.state, data.actions)
    path = save_checkpoint(tmp_path / "policy.pt", policy="diffusion", preset="cpu-small",
                           model_config=dataclasses.asdict(config), train_config={}, spec=data.spec,
                           normalizer=normalizer, weights=model.state_dict(), provenance={"dataset_attrs": attrs})
    in_memory = TrainedPolicy(model, normalizer, data.spec)
    loaded = load_policy(path)
    env = make_env("lift-cube", "hb16")
    runs = []
    for policy in (in_memory, loaded, loaded):
        obs, _ = env.reset(seed=1_000_001)
        policy.reset()
        actions = []
        for _ in range(6):
            actions.append(policy.act(obs))
            obs, *_ = env.step(actions[-1])
        runs.append(np.array(actions))
    assert np.array_equal(runs[0], runs[1]) and np.array_equal(runs[1], runs[2])


@pytest.mark.parametrize("policy, overrides", [("act", TINY_ACT), ("diffusion", TINY_DIFFUSION), ("bc", TINY_BC)])
def test_pixels_mode_trains_and_acts_on_rendered_observations(policy, overrides, pixel_dataset, tmp_path):
    result = train(request_for(policy, pixel_dataset, tmp_path / policy, steps=3, overrides=overrides,
                               val_fraction=0.0))
    loaded = load_policy(result.checkpoint)
    assert loaded.spec.cameras == ("overview", "top")
    env = make_env("lift-cube", "hb16", obs_mode="pixels", cameras=["overview", "top"], image_size=IMAGE_SIZE)
    obs, _ = env.reset(seed=1_000_000)
    action = loaded.act(obs)
    assert action.shape == env.action_space.shape and np.all(np.isfinite(action))
    env.close()


# ---------------------------------------------------------------------------------------------- bad input
def test_bad_datasets_are_refused_with_one_line(state_dataset, tmp_path):
    with pytest.raises(HandbenchError, match="does not exist|not found"):
        load_demos(tmp_path / "missing.hdf5")
    import h5py

    with h5py.File(tmp_path / "foreign.hdf5", "w") as handle:
        handle.create_dataset("x", data=np.zeros(3))
    with pytest.raises(HandbenchError, match="data"):
        load_demos(tmp_path / "foreign.hdf5")
    with pytest.raises(HandbenchError, match="no pixel observations"):
        load_demos(state_dataset, "pixels")


def test_cli_prints_one_line_for_bad_input(state_dataset, tmp_path, capsys):
    assert cli_main(["train", "--policy", "bc", "--dataset", str(tmp_path / "nope.hdf5"), "--out",
                     str(tmp_path / "o")]) == 2
    assert cli_main(["train", "--policy", "bc", "--dataset", str(state_dataset), "--obs", "pixels", "--out",
                     str(tmp_path / "o")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "nope.hdf5" in lines[0] and "no pixel observations" in lines[1]


def test_mismatched_checkpoints_are_refused(state_dataset, tmp_path):
    result = train(request_for("bc", state_dataset, tmp_path / "run", steps=2))
    with pytest.raises(HandbenchError, match="trained for task 'lift-cube', not 'press-button'"):
        load_policy(result.checkpoint, task="press-button")
    with pytest.raises(HandbenchError, match="task_version"):
        load_policy(result.checkpoint, task="lift-cube", task_version=7)
    content = torch.load(result.checkpoint, weights_only=True)
    torch.save({**content, "handbench_version": "9.9.0"}, tmp_path / "old.pt")
    with pytest.raises(HandbenchError, match="written by handbench 9.9.0"):
        load_policy(tmp_path / "old.pt")
    torch.save({**content, "format_version": FORMAT_VERSION + 1}, tmp_path / "future.pt")
    with pytest.raises(HandbenchError, match="format version"):
        load_policy(tmp_path / "future.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(HandbenchError, match="not a readable handbench checkpoint"):
        load_policy(tmp_path / "junk.pt")
    with pytest.raises(HandbenchError, match="does not exist"):
        load_policy(tmp_path / "absent.pt")


def test_training_stops_with_one_line_when_the_loss_becomes_nan(state_dataset, tmp_path, monkeypatch):
    from handbench.baselines import get_baseline

    BC = get_baseline("bc").MODEL
    original = BC.compute_loss
    calls = {"n": 0}

    def diverging(self, batch):
        calls["n"] += self.training  # validation batches do not count
        loss, terms = original(self, batch)
        return (loss * float("nan"), terms) if calls["n"] >= 12 and self.training else (loss, terms)

    monkeypatch.setattr(BC, "compute_loss", diverging)
    with pytest.raises(HandbenchError, match="loss became nan at step 12 .last checkpoint: step 10"):
        train(request_for("bc", state_dataset, tmp_path / "run", steps=30, checkpoint_every=10))
    assert (tmp_path / "run" / "policy.pt").is_file()  # the last finite checkpoint is kept


def test_checkpoint_records_the_train_command_for_leaderboard_entries(state_dataset, tmp_path):
    import dataclasses

    from handbench.leaderboard.validate import meta_commands

    command = f"handbench train --policy bc --dataset {state_dataset} --steps 5"
    result = train(dataclasses.replace(request_for("bc", state_dataset, tmp_path / "run", steps=5), command=command))
    provenance = read_checkpoint(result.checkpoint)["provenance"]
    assert provenance["command"] == command
    eval_meta = {"command": "handbench eval ...", "policy": {"provenance": provenance}}
    assert meta_commands(eval_meta) == {"eval": "handbench eval ...", "train": command}
