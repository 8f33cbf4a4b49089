"""HandEnv: the gymnasium environment every (task, hand) pair runs in.

Observation (a dict, LeRobot names): ``agent_pos`` (hand joint positions then velocities),
``environment_state`` (object and goal, ``state`` mode only), ``tactile`` (touch sensors) and
``pixels`` (a dict camera -> uint8 HxWx3, ``pixels`` mode only). Action: absolute joint targets for
every actuator, inside the ctrlrange. ``info["is_success"]`` on every step; success terminates.

A physics failure (MuJoCo flags an unstable state and resets the simulation, see
:data:`PHYSICS_WARNINGS`) ends the episode as truncated, with ``info["physics_error"]`` naming it.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from handbench.errors import HandbenchError
from handbench.expert import Expert
from handbench.hands import BoundHand, HandSpec
from handbench.scene import MAX_RENDER_SIZE, STANDARD_CAMERAS
from handbench.task import OBS_MODES, EpisodeParams, Task

DEFAULT_IMAGE_SIZE = (96, 96)
# MuJoCo warnings that mean the simulation became unstable; on each, mj_step resets the state to the
# model's defaults (sim time jumps back to ~0) and carries on, so an episode must end there.
PHYSICS_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL,
                    mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADCTRL)

__all__ = ["DEFAULT_IMAGE_SIZE", "OBS_MODES", "PHYSICS_WARNINGS", "Episode", "HandEnv"]


@dataclass(frozen=True)
class Episode:
    """The current episode: its seed and its parameters, the one place they are held."""

    seed: int | None
    params: EpisodeParams


class HandEnv(gym.Env):
    """One task (one version) with one hand. Build it with :func:`handbench.make_env` or ``gymnasium.make``: the
    registry compiles (and caches) the scene and hands the env what it runs; the env only copies the model,
    because tasks change some of its fields per episode (``Task.model_fields``, restored before each episode).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        task: Task,
        hand: HandSpec,
        model: mujoco.MjModel,
        model_hash: str,
        obs_mode: str = "state",
        cameras: Sequence[str] | None = None,
        image_size: tuple[int, int] = DEFAULT_IMAGE_SIZE,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (240, 320),
    ) -> None:
        if obs_mode not in OBS_MODES:
            raise HandbenchError(f"unknown observation mode {obs_mode!r}; valid: {', '.join(OBS_MODES)}")
        if obs_mode not in task.obs_modes:
            raise HandbenchError(f"task {task.name} has no observation mode {obs_mode!r}; valid: "
                                 f"{', '.join(task.obs_modes)}")
        self.task = task
        self.hand_spec = hand
        self.model_hash = model_hash
        self._base_model = model
        self.model = copy.copy(model)  # tasks change some fields per episode; the base stays as compiled
        self.data = mujoco.MjData(self.model)
        self.hand = BoundHand(hand, self.model)
        self.task.bind(self.model, self.hand)
        self.obs_mode = obs_mode
        self.cameras = tuple(cameras) if cameras is not None else STANDARD_CAMERAS[:2]
        valid_cameras = [self.model.camera(i).name for i in range(self.model.ncam)]
        for cam in self.cameras:
            if cam not in valid_cameras:
                raise HandbenchError(f"unknown camera {cam!r}; valid: {', '.join(valid_cameras)}")
        self.image_size = tuple(image_size)
        self.render_mode = render_mode
        self.render_size = tuple(render_size)
        for size in (self.image_size, self.render_size):
            if not (0 < size[0] <= MAX_RENDER_SIZE[0] and 0 < size[1] <= MAX_RENDER_SIZE[1]):
                raise HandbenchError(f"image size {size} out of range; height <= {MAX_RENDER_SIZE[0]}, "
                                     f"width <= {MAX_RENDER_SIZE[1]}")
        self._renderers: dict[tuple[int, int], Any] = {}
        self.frame_skip = self.task.frame_skip
        self.dt = self.model.opt.timestep * self.frame_skip

        hand_qpos = np.concatenate([self.hand.wrist_qpos, self.hand.finger_qpos])
        hand_dofs = np.concatenate([self.hand.wrist_dofs, self.hand.finger_dofs])
        self._hand_qpos, self._hand_dofs = hand_qpos, hand_dofs
        self._action_shape = (len(self.hand.ctrl_low),)  # checked every step; the space's property is slower
        self.action_space = gym.spaces.Box(self.hand.ctrl_low.astype(np.float32),
                                           self.hand.ctrl_high.astype(np.float32), dtype=np.float32)
        env_dim = self.task.state_size
        spaces: dict[str, gym.Space] = {
            "agent_pos": gym.spaces.Box(-np.inf, np.inf, (2 * len(hand_qpos),), np.float32),
            "tactile": gym.spaces.Box(0.0, np.inf, (len(self.hand.touch_adr),), np.float32),
        }
        if obs_mode == "state":
            spaces["environment_state"] = gym.spaces.Box(-np.inf, np.inf, (env_dim,), np.float32)
        else:
            spaces["pixels"] = gym.spaces.Dict({
                cam: gym.spaces.Box(0, 255, (*self.image_size, 3), np.uint8) for cam in self.cameras
            })
        self.observation_space = gym.spaces.Dict(spaces)
        self.home_ctrl = self._home_ctrl()
        self.episode: Episode | None = None

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._restore_model_fields()
        mujoco.mj_resetData(self.model, self.data)
        self.set_hand_home()
        self.data.ctrl[:] = self.home_ctrl
        self.episode = Episode(seed, self.task.sample(self.np_random))
        self.task.start_episode(self.data, self.episode.params)
        mujoco.mj_forward(self.model, self.data)
        return self._observation(), {"is_success": False}

    def step(self, action):
        if self.episode is None:
            raise HandbenchError("call reset() before step()")
        action = np.asarray(action, dtype=np.float64)
        if action.shape != self._action_shape:
            raise HandbenchError(f"action has shape {action.shape}; expected {self._action_shape}")
        if not np.all(np.isfinite(action)):
            raise HandbenchError("action contains NaN or infinite values")
        np.clip(action, self.hand.ctrl_low, self.hand.ctrl_high, out=self.data.ctrl)
        warnings_before = self._warning_counts()
        time_before = self.data.time
        mujoco.mj_step(self.model, self.data, nstep=self.frame_skip)
        # mj_step leaves positions and sensors one substep behind qpos; recompute them so observations,
        # scores and images match the state (and images re-rendered from stored states are identical).
        mujoco.mj_forward(self.model, self.data)
        error = self._physics_error(warnings_before, time_before)
        if error:  # the state is MuJoCo's reset, not the episode's: no score, the episode is over
            return self._observation(), 0.0, False, True, {"is_success": False, "physics_error": error}
        score = self.task.score(self.data)
        info = {"is_success": score.success, "reward_terms": dict(score.terms)}
        return self._observation(), score.reward, score.success, False, info

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.render_camera("overview", self.render_size)

    def __getstate__(self) -> dict[str, Any]:
        """Pickle/deepcopy without the renderers: their GL contexts belong to this process and thread.

        The copy renders again on first use (:meth:`render_camera` creates renderers lazily), so an env can be
        pickled or deep-copied at any time, after rendering included (vector envs, multiprocessing).
        """
        state = self.__dict__.copy()
        state["_renderers"] = {}
        return state

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()

    # ------------------------------------------------------------------ state and images
    def state_observation(self) -> dict[str, np.ndarray]:
        """``agent_pos``, ``environment_state`` and ``tactile``, whatever the observation mode."""
        return {
            "agent_pos": np.concatenate([self.data.qpos[self._hand_qpos], self.data.qvel[self._hand_dofs]])
            .astype(np.float32),
            "environment_state": self.task.environment_state(self.data).astype(np.float32),
            "tactile": self.hand.touch(self.data).astype(np.float32),
        }

    def render_camera(self, camera: str, size: tuple[int, int] | None = None) -> np.ndarray:
        from handbench.rendering import FrameRenderer

        size = tuple(size or self.image_size)
        if size not in self._renderers:
            self._renderers[size] = FrameRenderer(self.model, *size)
        return self._renderers[size].render(self.data, camera)

    def full_state(self) -> np.ndarray:
        """The complete simulator state (``mjSTATE_INTEGRATION``): enough to re-render or resume."""
        spec = mujoco.mjtState.mjSTATE_INTEGRATION
        state = np.empty(mujoco.mj_stateSize(self.model, spec))
        mujoco.mj_getState(self.model, self.data, state, spec)
        return state

    def set_full_state(self, state: np.ndarray) -> None:
        mujoco.mj_setState(self.model, self.data, np.asarray(state, dtype=np.float64),
                           mujoco.mjtState.mjSTATE_INTEGRATION)
        mujoco.mj_forward(self.model, self.data)

    def _observation(self) -> dict[str, Any]:
        obs = self.state_observation()
        if self.obs_mode == "pixels":
            del obs["environment_state"]
            obs["pixels"] = {cam: self.render_camera(cam) for cam in self.cameras}
        return obs

    # ------------------------------------------------------------------ internals
    def _warning_counts(self) -> tuple[int, ...]:
        return tuple(int(self.data.warning[w].number) for w in PHYSICS_WARNINGS)

    def _physics_error(self, warnings_before: tuple[int, ...], time_before: float) -> str:
        """What went wrong in the last step ("" if nothing): a new instability warning, or time going back."""
        for warning, before, now in zip(PHYSICS_WARNINGS, warnings_before, self._warning_counts(), strict=True):
            if now > before:
                return f"{warning.name} (MuJoCo reset the unstable simulation at t={time_before:.3f} s)"
        if self.data.time < time_before:
            return f"sim time went back from {time_before:.3f} s to {self.data.time:.3f} s"
        return ""

    def _home_ctrl(self) -> np.ndarray:
        wrist = self.model.qpos0[self.hand.wrist_qpos]
        return self.hand.action(wrist, self.hand.synergy("open", 0.0))

    def _restore_model_fields(self) -> None:
        """Undo the task's per-episode model changes (its declared ``model_fields``), so an episode never
        depends on the previous one."""
        for name in self.task.model_fields:
            getattr(self.model, name)[:] = getattr(self._base_model, name)

    # ------------------------------------------------------------------ episode
    @property
    def episode_seed(self) -> int | None:
        return None if self.episode is None else self.episode.seed

    def make_expert(self, seed: int, action_noise: float = 0.0) -> Expert:
        """The task's scripted expert for the current episode (after ``reset(seed=seed)``): it gets the task,
        the hand, the sim data and the episode's parameters. ``action_noise`` is Gaussian noise as a fraction
        of each actuator's range. Raises :class:`HandbenchError` before the first reset."""
        if self.episode is None:
            raise HandbenchError("call reset() before make_expert()")
        return self.task.expert(self.task, self.hand, self.data, self.episode.params, seed, action_noise)

    def set_hand_home(self) -> None:
        """Put the hand at its home pose with fingers open (used by ``reset``)."""
        self.data.qpos[self.hand.finger_qpos] = self.hand.synergy("open", 0.0)
