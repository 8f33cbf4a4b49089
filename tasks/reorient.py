"""reorient: turn a block lying in the upturned palm a quarter turn with the fingers, the wrist held still.

The episode starts palm up (the wrist rolled half a turn about the axis along the fingers; this task
widens that joint's range inside its own scene) with a rectangular block resting in the palm. Only the
fingers may move it: success needs the wrist to have stayed within a small tolerance of its start pose
for the whole episode. The block is symmetric under a half turn, so its yaw is compared modulo pi.

Status: NOT registered (no ``TASK`` export). The issue's bar is >= 95% expert success on the 50 protocol
eval seeds for both hands; ``python -m handbench.tasks.reorient`` measured hb16 32/50 (finger-first 14/26,
thumb-first 18/24) and shadow 0/50. What limits it: the gait (outer finger flicks the block's front face,
thumb pushes its back) turns the block by an amount that varies from seed to seed, and once the long axis
nears the fingers' direction neither stroke has a lever on it, so about a third of hb16 episodes stall
0.5-0.9 rad short; nothing recentres the block sideways. The shadow gait is a first guess only: its little
finger turns the block about 0.35 rad, its thumb pose shoves the block sideways without turning it.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np

from handbench.expert import Expert
from handbench.scene import free_joint_qpos, free_joint_qvel, set_body_mass
from handbench.task import StepScore, Task

# hand -> (actuator name, wrist hinge whose axis lies along the fingers at home); rolling it by pi turns the palm up.
PALM_UP_JOINT = {"hb16": ("wrist_ry", "wrist_ry"), "shadow": ("A_ARRz", "ARRz")}
PALM_UP_ROLL = np.pi
ROLL_RANGE_MARGIN = 0.2
# hand -> where the block starts: world x, y of its centre and the height of the palm's upper surface.
BLOCK_START = {"hb16": (0.0, -0.038, 0.262), "shadow": (0.005, -0.028, 0.266)}
BLOCK_FRICTION = 0.4  # low enough that a finger push slides the block before it tips it over
ORIENTATION_TOLERANCE = 0.4  # rad, yaw error modulo pi
HOLD_STEPS = 5
WRIST_SLIDE_TOLERANCE = 0.01  # m
WRIST_HINGE_TOLERANCE = 0.05  # rad
DROP_TOLERANCE = 0.015  # block centre more than this below its start height: it left the palm
PALM_RADIUS = 0.06  # ... or more than this from its start, horizontally
GOAL_MARKER_OFFSET = (-0.13, 0.0, 0.0)  # the translucent goal block floats beside the hand, level with the block


def wrap_half_turn(angle: float) -> float:
    """Angle modulo pi, in [-pi/2, pi/2): the block looks the same after a half turn."""
    return float((angle + np.pi / 2) % np.pi - np.pi / 2)


def quat_yaw(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return float(np.arctan2(2 * (w * z + x * y), 1 - 2 * (y * y + z * z)))


def set_box_half_sizes(model: mujoco.MjModel, geom_id: int, half: np.ndarray) -> None:
    """Resize a (non-cubic) box geom after compilation, keeping its collision bounds consistent."""
    model.geom_size[geom_id] = half
    model.geom_rbound[geom_id] = float(np.linalg.norm(half))
    model.geom_aabb[geom_id, 3:] = half


class Reorient(Task):
    name = "reorient"
    order = 60
    version = 0
    skill = "in-hand manipulation (finger gaiting, wrist still)"
    description = ("A rectangular block rests in the upturned palm; turn it about the vertical axis to the goal "
                   "yaw (about a quarter turn, shown by the translucent block beside the hand) with the fingers "
                   "only, keeping it in the palm and the wrist still.")
    success_rule = (f"block yaw within {ORIENTATION_TOLERANCE} rad of the goal (modulo pi), block still on the palm, "
                    f"for {HOLD_STEPS} consecutive steps; void for the episode once any wrist joint leaves its start "
                    f"by more than {WRIST_SLIDE_TOLERANCE} m / {WRIST_HINGE_TOLERANCE} rad")
    reward_doc = ("orient: 2 * (1 - |yaw error| / (pi/2)); on palm: 1 while the block is on the palm; "
                  "wrist: -1 once the wrist has moved; +5 on success")
    max_episode_steps = 200

    def build(self, spec: mujoco.MjSpec) -> None:
        for actuator_name, joint_name in PALM_UP_JOINT.values():
            joint = spec.joint(joint_name)
            if joint is None:  # the other hand's joint
                continue
            limits = [float(joint.range[0]), PALM_UP_ROLL + ROLL_RANGE_MARGIN]
            joint.range = limits
            spec.actuator(actuator_name).ctrlrange = limits
        block = spec.worldbody.add_body(name="block", pos=[0, 0, 0.5])
        block.add_freejoint(name="block_joint")
        # Priority: the block's own (low) friction applies to all its contacts, palm and fingers alike.
        block.add_geom(name="block_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.034, 0.022, 0.03],
                       rgba=[0.2, 0.45, 0.85, 1], mass=0.05, friction=[BLOCK_FRICTION, 0.005, 0.0001],
                       condim=4, priority=1)
        # A yellow stripe along the long axis makes the yaw readable in images.
        block.add_geom(name="block_stripe", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.03, 0.004, 0.0005],
                       pos=[0, 0, 0.0305], rgba=[0.95, 0.85, 0.1, 1], contype=0, conaffinity=0, mass=0.0001)
        # A close view from above the upturned palm (the standard cameras frame the table, not the hand).
        spec.worldbody.add_camera(name="palm", pos=[0.0, -0.03, 0.62], xyaxes=[1, 0, 0, 0, 1, 0], fovy=30)
        goal = spec.worldbody.add_body(name="block_goal", mocap=True, pos=[0, 0, 0.5])
        goal.add_geom(name="block_goal_geom", type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.034, 0.022, 0.03],
                      rgba=[0.1, 0.9, 0.2, 0.3], contype=0, conaffinity=0, group=1)

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        self.block_body = model.body("block").id
        self.block_geom = model.geom("block_geom").id
        self.goal_geom = model.geom("block_goal_geom").id
        self.goal_mocap = model.body_mocapid[model.body("block_goal").id]
        self.block_qpos = free_joint_qpos(model, "block_joint")
        self.block_qvel = free_joint_qvel(model, "block_joint")
        joint_name = PALM_UP_JOINT[hand.spec.name][1]
        self.roll_index = list(hand.spec.wrist_joints).index(joint_name)
        is_slide = model.jnt_type[model.dof_jntid[hand.wrist_dofs]] == mujoco.mjtJoint.mjJNT_SLIDE
        self.wrist_tolerance = np.where(is_slide, WRIST_SLIDE_TOLERANCE, WRIST_HINGE_TOLERANCE)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        initial_yaw = float(rng.uniform(-0.15, 0.15))
        turn = float(rng.uniform(np.pi / 2 - 0.3, np.pi / 2 + 0.3))
        return {
            "block_offset": rng.uniform(-0.004, 0.004, size=2),
            "block_half_size": np.array([rng.uniform(0.032, 0.036), rng.uniform(0.02, 0.024), 0.03]),
            "block_mass": float(rng.uniform(0.03, 0.08)),
            "initial_yaw": initial_yaw,
            "goal_yaw": wrap_half_turn(initial_yaw + turn),
        }

    def apply(self, data: mujoco.MjData, params: dict[str, Any]) -> None:
        hand = self.hand
        wrist = data.qpos[hand.wrist_qpos].copy()
        wrist[self.roll_index] = PALM_UP_ROLL
        data.qpos[hand.wrist_qpos] = wrist
        data.ctrl[: hand.n_wrist] = wrist
        half = np.asarray(params["block_half_size"], dtype=np.float64)
        set_box_half_sizes(self.model, self.block_geom, half)
        set_box_half_sizes(self.model, self.goal_geom, half)
        set_body_mass(self.model, self.block_body, params["block_mass"])
        x, y, palm_top = BLOCK_START[hand.spec.name]
        start = np.array([x + params["block_offset"][0], y + params["block_offset"][1], palm_top + half[2] + 0.0005])
        yaw = params["initial_yaw"]
        data.qpos[self.block_qpos] = [*start, np.cos(yaw / 2), 0.0, 0.0, np.sin(yaw / 2)]
        goal = params["goal_yaw"]
        data.mocap_pos[self.goal_mocap] = start + GOAL_MARKER_OFFSET
        data.mocap_quat[self.goal_mocap] = [np.cos(goal / 2), 0.0, 0.0, np.sin(goal / 2)]
        self.start_position = start
        self.start_wrist = wrist
        self.goal_yaw = float(goal)
        self.hold_steps = 0
        self.wrist_moved = False

    # ------------------------------------------------------------------ state
    def block_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.block_qpos][:3].copy()

    def block_yaw(self, data: mujoco.MjData) -> float:
        return quat_yaw(data.qpos[self.block_qpos][3:])

    def yaw_error(self, data: mujoco.MjData) -> float:
        """Signed goal - block yaw, modulo pi (positive: the block must turn counter-clockwise)."""
        return wrap_half_turn(self.goal_yaw - self.block_yaw(data))

    def on_palm(self, data: mujoco.MjData) -> bool:
        position = self.block_position(data)
        return bool(position[2] > self.start_position[2] - DROP_TOLERANCE
                    and np.linalg.norm(position[:2] - self.start_position[:2]) < PALM_RADIUS)

    def wrist_within_tolerance(self, data: mujoco.MjData) -> bool:
        drift = np.abs(data.qpos[self.hand.wrist_qpos] - self.start_wrist)
        return bool(np.all(drift <= self.wrist_tolerance))

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        goal = getattr(self, "goal_yaw", 0.0)
        error = self.yaw_error(data) if hasattr(self, "goal_yaw") else 0.0
        return np.concatenate([data.qpos[self.block_qpos], data.qvel[self.block_qvel],
                               [np.cos(2 * goal), np.sin(2 * goal), error], self.model.geom_size[self.block_geom]])

    def score(self, data: mujoco.MjData) -> StepScore:
        self.wrist_moved = self.wrist_moved or not self.wrist_within_tolerance(data)
        error = abs(self.yaw_error(data))
        on_palm = self.on_palm(data)
        aligned = error < ORIENTATION_TOLERANCE and on_palm and not self.wrist_moved
        self.hold_steps = self.hold_steps + 1 if aligned else 0
        success = self.hold_steps >= HOLD_STEPS
        reward = 2.0 * (1.0 - error / (np.pi / 2)) + float(on_palm) - float(self.wrist_moved)
        return StepScore(float(reward + (5.0 if success else 0.0)), success)

    def make_expert(self, env, seed: int, action_noise: float = 0.0) -> Expert:
        return ReorientExpert(env, seed, action_noise)


# Finger gait per hand: joint targets (on top of the open synergy) for each stage of a push cycle. In-hand
# gaiting depends on each hand's finger layout, so unlike the other experts this one names finger joints.
# "raise": the pushing finger stands up in front of the block; "sweep": it curls back across the block's front
# face off its centre (a torque about the vertical); "stop"/"push": the thumb stands behind the block's other end,
# then swings forward against it (the same sense of torque, and it recentres the block on the palm).
GAITS: dict[str, dict[str, dict[str, float]]] = {
    "hb16": {
        "stop": {"thumb_cmc": -0.2},
        "raise": {"thumb_cmc": -0.2, "ring_mcp": 1.55},
        "sweep": {"thumb_cmc": -0.2, "ring_mcp": 1.55, "ring_pip": 1.5, "ring_dip": 0.5},
        "push": {"thumb_cmc": 0.8},
    },
    "shadow": {
        "stop": {},
        "raise": {"LFJ2": 1.55},
        "sweep": {"LFJ2": 1.55, "LFJ1": 1.5, "LFJ0": 0.5},
        "push": {"THJ4": 1.0, "THJ3": 1.2},
    },
}
DONE_ERROR = 0.12  # rad: a push stops once the block is this close to the goal
FULL_STROKE_ERROR = 1.0  # rad: strokes shrink in proportion below this much error ...
MIN_STROKE = 0.5  # ... down to this fraction
REBOUND = 0.05  # rad: a stroke ends once the error grows this much past its best
RESUME_ERROR = 0.3  # ... and gaiting resumes if it drifts this far away again
# phase -> (steps to reach the target, steps in the phase); the sweep is a flick: a slow push only shoves the block.
STAGE_STEPS = {"raise": (5, 5), "sweep": (1, 6), "lower": (3, 5), "stop": (3, 3), "push": (3, 6), "back": (3, 4)}


class ReorientExpert(Expert):
    """Finger gaiting: the outer finger sweeps the block's front face, then the thumb pushes its back, repeatedly.

    Closed loop on the block's yaw error: every stroke ends early once the block is close to the goal, and
    the hand then holds still. Strategy: which stroke starts the cycle.
    """

    strategies = ("finger-first", "thumb-first")

    def reset(self) -> None:
        super().reset()
        self.pose_from = self.hand.synergy("open", 0.0)
        self.target = self.pose_from
        self.stage_index = 0

    def _pose(self, stage: str) -> np.ndarray:
        names = self.hand.spec.finger_joints
        pose = self.hand.synergy("open", 0.0).copy()
        for joint, value in GAITS[self.hand.spec.name][stage].items():
            pose[names.index(joint)] = value
        return pose

    def _cycle(self) -> list[tuple[str, str]]:
        """(phase, target pose) for one gait cycle."""
        finger = [("raise", "raise"), ("sweep", "sweep"), ("lower", "raise"), ("stop", "stop")]
        thumb = [("push", "push"), ("back", "stop")]
        return finger + thumb if self.strategy == "finger-first" else thumb + finger

    def plan(self) -> np.ndarray:
        if self.phase == "start":
            if not hasattr(self, "stage_index"):
                self.reset()
            self.goto("cycle")
            self.stage_steps = 0
        task: Reorient = self.env.task
        wrist = task.start_wrist
        error = task.yaw_error(self.data)
        if self.phase == "hold" and abs(error) > RESUME_ERROR:
            self.goto("cycle")
        if self.phase == "cycle" and abs(error) < DONE_ERROR:
            self.goto("hold")
        if self.phase == "hold":  # freeze the fingers where they are commanded: the block is at the goal
            return self.hand.action(wrist, self.target)
        cycle = self._cycle()
        phase, target = cycle[self.stage_index % len(cycle)]
        if self.stage_steps == 0:
            self.stroke_best = abs(error)
        self.stroke_best = min(self.stroke_best, abs(error))
        if phase in ("sweep", "push") and abs(error) > self.stroke_best + REBOUND:
            # The stroke has stopped helping (the block turns back or slips past): take the next stage now.
            self.pose_from = self.target
            self.stage_index += 1
            self.stage_steps = 0
            phase, target = cycle[self.stage_index % len(cycle)]
        ramp, steps = STAGE_STEPS[phase]
        level = min(1.0, (self.stage_steps + 1) / ramp)
        goal_pose = self._pose(target)
        if phase in ("sweep", "push"):  # a shorter stroke when little turning is left
            if self.stage_steps == 0:
                self.stroke_scale = float(np.clip(abs(error) / FULL_STROKE_ERROR, MIN_STROKE, 1.0))
            goal_pose = self.pose_from + self.stroke_scale * (goal_pose - self.pose_from)
        self.target = self.pose_from + level * (goal_pose - self.pose_from)
        self.stage_steps += 1
        if self.stage_steps >= steps:
            self.pose_from = self.target
            self.stage_index += 1
            self.stage_steps = 0
        return self.hand.action(wrist, self.target)


def register_for_this_process() -> None:
    """Make HandEnv("reorient", ...) work in this process only (the module does not export TASK)."""
    from handbench.registry import _registry

    _registry()[Reorient.name] = {Reorient.version: Reorient}


def measure_expert(hand: str, num_seeds: int) -> tuple[int, dict[str, tuple[int, int]]]:
    """Expert successes on the first ``num_seeds`` protocol eval seed numbers; also per strategy (wins, runs)."""
    from handbench.env import HandEnv
    from handbench.seeding import EVAL_SEED_BASE

    register_for_this_process()
    env = HandEnv(Reorient.name, hand)
    per_strategy: dict[str, tuple[int, int]] = {}
    for seed in range(EVAL_SEED_BASE, EVAL_SEED_BASE + num_seeds):
        observation, _ = env.reset(seed=seed)
        expert = env.task.make_expert(env, seed)
        expert.reset()
        success = False
        for _ in range(Reorient.max_episode_steps):
            observation, _, terminated, _, info = env.step(expert.act(observation))
            if terminated:
                success = bool(info["is_success"])
                break
        wins, runs = per_strategy.get(expert.strategy, (0, 0))
        per_strategy[expert.strategy] = (wins + int(success), runs + 1)
    return sum(wins for wins, _ in per_strategy.values()), per_strategy


if __name__ == "__main__":  # python -m handbench.tasks.reorient [num_seeds]: the figures in the task notes
    import sys

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    for hand_name in PALM_UP_JOINT:
        total, by_strategy = measure_expert(hand_name, count)
        print(f"{hand_name}: {total}/{count} expert successes; by strategy {by_strategy}", flush=True)

# Not exported as TASK (so not registered): the expert stays below the 95% bar, see the module docstring.
