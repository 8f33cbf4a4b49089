"""stack: pick up a cube and stack it on a second, larger cube, then let go (a long-horizon task)."""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np
from handbench.tasks.lift_cube import APPROACH_ABOVE, GRASP_HEIGHT, CubeParams, LiftCube, LiftCubeExpert

from handbench import rewards, rules
from handbench.hands import HandSpec, yaw_quat
from handbench.rewards import Term
from handbench.scene import add_free_box, free_joint_qpos, free_joint_qvel, set_box_half_size, subtree_bodies
from handbench.task import StepScore


@dataclass(frozen=True)
class StackParams(CubeParams):
    base_xy: np.ndarray  # (2,) m, the base cube's centre on the table
    base_yaw: float  # rad

BASE_HALF_SIZE = 0.03
BASE_MASS = 0.6
XY_TOLERANCE = 0.02  # cube centre within this of the base centre, horizontally
Z_TOLERANCE = 0.01  # cube bottom within this of the base top
HOLD_STEPS = 5
MIN_SEPARATION = 0.11  # between the two cubes' centres at reset (never stacked at reset)
CLEARANCE = 0.03  # carried cube's bottom above the base top while moving over it
RELEASE_HEIGHT = 0.006  # the cube's bottom above the base top when the fingers open
RELEASE_RATE = 0.1  # power-synergy level dropped per step while letting go
RELEASED_STEPS = 2  # steps without hand-cube contact that count as let go
MAX_RELEASE_LEVEL = 0.8  # ... once the grip has loosened at least this far
RELEASE_RISE = 0.012  # the hand rises this much while letting go
RETREAT_HEIGHT = 0.1
WRIST_YAW_LIMIT = 1.55  # both hands' wrist yaw range is +/-1.6 rad
STALL_STEPS = 5  # lowering has stalled when the cube got no lower for this many steps
# Hands whose release style is "slip-off" (HandSpec.release_style) loosen the grip only by LOOSEN of the
# way to open (taken from the joints' measured pose, so the squeeze goes at once), hold still, then rise
# straight up and open only once the fingertips are WITHDRAW_MARGIN above the cube.
LOOSEN = 0.15
LOOSEN_STEPS = 3
LOOSEN_WAIT = 2  # steps holding still after loosening, so the cube settles before the hand rises
WITHDRAW_MARGIN = 0.01
WITHDRAW_SPEED = 0.004  # m per step while the loosened fingers slide up along the cube
OPEN_RISE = 0.02  # the fingers open fully over this much further rise
DROPPED_BELOW = 0.12  # a carried cube this far below the commanded grasp site has fallen out
RESTING_SPEED = 0.05  # cube speed (free-joint velocity norm) below which a missed cube is picked up again
# Expert v3 (hb-v2), slip-off hands only: a failed attempt is noticed and retried sooner (StackExpertV3).
REGRASP_ABOVE = 0.05  # m: after a failed attempt the approach ends this high above the grasp (first: APPROACH_ABOVE)
LIFT_CHECK_STEPS = 6  # lift steps after which a cube still on the table and not gripped means the grasp missed
MISSED_CLEARANCE = 0.03  # m: a withdrawing hand this far above the top of a cube that is off the base goes back for it


class Stack(LiftCube):
    name = "stack"
    order = 60
    version = 0
    skill = "grasp, transport, place and release (long horizon)"
    description = ("Pick up the red cube (random pose, size, mass) and stack it on the green base cube "
                   "(random pose), then let go: the stack must stand on its own.")
    success_rule = (f"red cube centre within {XY_TOLERANCE} m (horizontal) of the base centre, its bottom within "
                    f"{Z_TOLERANCE} m of the base top, not touching the hand, for {HOLD_STEPS} consecutive steps")
    reward_terms = (
        Term("reach", 1.0, "1 - tanh(10 * |grasp site - cube|)"),
        Term("lift", 1.0, "1 if the cube is off the table"),
        Term("place", 2.0, "1 - tanh(10 * |cube - spot on the base|)"),
        Term("release", 1.0, "1 when placed and not touching the hand"),
        Term("success", 5.0, "1 on success"),
    )
    max_episode_steps = 200
    state_size = 27  # lift-cube's 14, then the base cube's pose (7) and velocity (6)
    params_type = StackParams

    def build(self, spec: mujoco.MjSpec) -> None:
        super().build(spec)
        add_free_box(spec, "base", BASE_HALF_SIZE, rgba=[0.25, 0.7, 0.3, 1], mass=BASE_MASS)

    def bind(self, model, hand) -> None:
        super().bind(model, hand)
        self.base_geom = model.geom("base_geom").id
        self.base_qpos = free_joint_qpos(model, "base_joint")
        self.base_qvel = free_joint_qvel(model, "base_joint")
        self.hand_bodies = subtree_bodies(model, model.body(hand.spec.root_body).id)

    def sample(self, rng: np.random.Generator) -> StackParams:
        cube = super().sample(rng)
        while True:  # rejection sampling from the episode's own generator: still a pure function of the seed
            base_xy = rng.uniform([-0.10, -0.06], [0.10, 0.08])
            if np.linalg.norm(base_xy - cube.cube_xy) >= MIN_SEPARATION:
                break
        base_yaw = float(rng.uniform(-np.pi / 4, np.pi / 4))
        return StackParams(cube_xy=cube.cube_xy, cube_yaw=cube.cube_yaw, cube_half_size=cube.cube_half_size,
                           cube_mass=cube.cube_mass, base_xy=base_xy, base_yaw=base_yaw)

    def apply(self, data: mujoco.MjData, params: StackParams) -> None:
        super().apply(data, params)
        set_box_half_size(self.model, self.base_geom, BASE_HALF_SIZE)
        data.qpos[self.base_qpos] = [*params.base_xy, BASE_HALF_SIZE, *yaw_quat(params.base_yaw)]
        self.stack_steps = 0

    def base_position(self, data: mujoco.MjData) -> np.ndarray:
        return data.qpos[self.base_qpos][:3]

    def place_target(self, data: mujoco.MjData) -> np.ndarray:
        """Where the cube centre sits when stacked: on the base's top face, centred."""
        half = self.model.geom_size[self.cube_geom, 0]
        return self.base_position(data) + [0.0, 0.0, BASE_HALF_SIZE + half]

    def environment_state(self, data: mujoco.MjData) -> np.ndarray:
        return np.concatenate([super().environment_state(data), data.qpos[self.base_qpos],
                               data.qvel[self.base_qvel]])

    def hand_touches_cube(self, data: mujoco.MjData) -> bool:
        for contact in data.contact[: data.ncon]:
            pair = (int(contact.geom1), int(contact.geom2))
            if self.cube_geom in pair:
                other = pair[1] if pair[0] == self.cube_geom else pair[0]
                if int(self.model.geom_bodyid[other]) in self.hand_bodies:
                    return True
        return False

    def is_stacked(self, data: mujoco.MjData) -> bool:
        offset = self.cube_position(data) - self.place_target(data)
        return bool(np.linalg.norm(offset[:2]) <= XY_TOLERANCE and abs(offset[2]) <= Z_TOLERANCE)

    def stands(self, data: mujoco.MjData, stacked: bool, released: bool) -> bool:
        """Whether this step counts toward the hold window (v1 also asks that the hand carried the cube there)."""
        return stacked and released

    def score(self, data: mujoco.MjData) -> StepScore:
        cube = self.cube_position(data)
        stacked = self.is_stacked(data)
        released = not self.hand_touches_cube(data)
        self.stack_steps = self.stack_steps + 1 if self.stands(data, stacked, released) else 0
        success = self.stack_steps >= HOLD_STEPS
        return self.step_score({
            "reach": rewards.reach(np.linalg.norm(self.hand.grasp_site_pos(data) - cube)),
            "lift": rewards.flag(cube[2] > self.start_height + 0.01),
            "place": rewards.reach(np.linalg.norm(cube - self.place_target(data))),
            "release": rewards.flag(stacked and released),
            "success": rewards.flag(success),
        }, success)


class StackV1(rules.HeldObjectTask, Stack):
    """hb-v2: the hand must have carried the cube (held it off the table) before the stack counts, and the
    cube must rest on the base (below ``rules.MAX_HELD_SPEED``) through the hold window."""

    version = 1
    expert_noise_limit = 0.0  # shadow: 88% at 0.005 with expert v2 and v3 (check-experts --split demo; README)
    success_rule = (f"red cube centre within {XY_TOLERANCE} m (horizontal) of the base centre, its bottom within "
                    f"{Z_TOLERANCE} m of the base top, not touching the hand and moving < {rules.MAX_HELD_SPEED} "
                    f"m/s, for {HOLD_STEPS} consecutive steps, after the hand has carried it (held by the thumb and "
                    "another finger, or palm and two fingers, off the table)")

    def apply(self, data: mujoco.MjData, params: StackParams) -> None:
        super().apply(data, params)
        self.carried = False

    def stands(self, data: mujoco.MjData, stacked: bool, released: bool) -> bool:
        cube = self.cube_position(data)
        if cube[2] > self.start_height + 0.01 and self.held(data, self.cube_geom, self.cube_qvel, cube):
            self.carried = True
        resting = rules.speed(data.qvel[self.cube_qvel]) < rules.MAX_HELD_SPEED
        return stacked and released and resting and self.carried


class StackExpert(LiftCubeExpert):
    """Lift-cube's grasp, then carry above the base, lower, open the hand and back away upward; a cube that
    does not end up stacked is picked up again where it lies."""

    # v1: servos on the cube (not the hand) while carrying and lowering, lets go where lowering stalls,
    # the thumb opens first, and a missed placement is retried
    # v2: a hand with HandSpec.grasp_above_bottom grasps at that height above the cube's bottom, and one whose
    # release_style is "slip-off" lets go by loosening, then sliding its fingers up off the cube
    version = 2
    strategies = ("fingers-left", "fingers-right")
    # An offset power grasp (HandSpec.power_grasp_offset) can lift more surely but carry the cube tilted, and a
    # tilted cube lands on an edge and topples off the base when let go: grasp it centred here.
    use_power_grasp_offset = False

    def _cube_yaw(self) -> float:
        """The cube's current yaw folded into [-pi/4, pi/4] (a cube looks the same every quarter turn): after a
        failed placement the cube is grasped again where it lies."""
        axes = np.empty(9)
        mujoco.mju_quat2Mat(axes, self.data.qpos[self.task.cube_qpos][3:])
        x_axis = axes.reshape(3, 3)[:, 0]
        yaw = float(np.arctan2(x_axis[1], x_axis[0]))
        return (yaw + np.pi / 4) % (np.pi / 2) - np.pi / 4

    def _grasp_yaw(self) -> float:
        """Chosen while approaching, then kept: the held cube turns in the hand, the grasp must not."""
        if self.phase in ("start", "approach") or self.chosen_yaw is None:
            self.chosen_yaw = self._choose_grasp_yaw()
        return self.chosen_yaw

    def _choose_grasp_yaw(self) -> float:
        """A quarter-turn grasp yaw, inside the wrist range, that keeps the hand's long axis across the line
        to the base: open fingers reach far forward and the thumb far back, so neither lands on the base.
        Two such yaws usually exist (fingers to the left or right of the base); the strategy picks one."""
        task = self.task
        away = task.cube_position(self.data)[:2] - task.base_position(self.data)[:2]
        away = away / max(float(np.linalg.norm(away)), 1e-6)
        yaw = self._cube_yaw()
        candidates = [yaw + k * np.pi / 2 for k in range(-3, 4) if abs(yaw + k * np.pi / 2) <= WRIST_YAW_LIMIT]
        finger_dirs = {c: np.array([-np.sin(c), np.cos(c)]) for c in candidates}
        along = {c: abs(float(finger_dirs[c] @ away)) for c in candidates}
        ranked = sorted(candidates, key=lambda c: along[c])
        good = [c for c in ranked if along[c] < along[ranked[0]] + 0.1]
        # cross(away, fingers) > 0: fingers point to the left of the base-to-cube direction
        wanted = [c for c in good if (away[0] * finger_dirs[c][1] - away[1] * finger_dirs[c][0] > 0)
                  == (self.strategy == "fingers-left")]
        return wanted[0] if wanted else ranked[0]

    def on_reset(self) -> None:
        super().on_reset()
        self.chosen_yaw: float | None = None

    def _grasp_centre(self, cube: np.ndarray, rotation: np.ndarray) -> np.ndarray:
        height = self.hand.spec.grasp_above_bottom
        if height is None:
            return super()._grasp_centre(cube, rotation)
        bottom = cube[2] - self.task.model.geom_size[self.task.cube_geom, 0]
        return np.array([cube[0], cube[1], bottom + height - GRASP_HEIGHT])

    def _loosened(self, amount: float) -> np.ndarray:
        """The held finger pose moved ``amount`` of LOOSEN toward open: the squeeze goes, the fingers stay put."""
        return self.hold_pose + amount * LOOSEN * (self.hand.synergy("open", 0.0) - self.hold_pose)

    def plan(self) -> np.ndarray:
        if self.phase not in ("carry", "lower", "release", "retreat", "loosen", "withdraw"):
            action = super().plan()
            if self.phase == "lift" and self.phase_steps > 0:
                task = self.task
                clear = task.place_target(self.data)[2] + CLEARANCE
                if task.cube_position(self.data)[2] >= clear:
                    self.goto("carry")
            return action
        task = self.task
        fingers = self.hand.synergy("power")
        cube = task.cube_position(self.data)
        goal = task.place_target(self.data)
        rotation = yaw_quat(self._grasp_yaw())
        if self.phase == "carry":
            error = goal + [0, 0, CLEARANCE + RELEASE_HEIGHT] - cube
            self.motion.toward(self.motion.position + error, rotation)
            if cube[2] < self.motion.position[2] - DROPPED_BELOW:  # dropped: start over
                self.goto("approach")
            elif np.linalg.norm(error) < 0.004 and self.phase_steps > 2:
                self.lowest, self.lowest_step = cube[2], 0
                self.goto("lower")
        elif self.phase == "lower":
            error = goal + [0, 0, RELEASE_HEIGHT] - cube
            self.motion.toward(self.motion.position + error, rotation, max_step=0.006)
            if cube[2] < self.lowest - 0.001:
                self.lowest, self.lowest_step = cube[2], self.phase_steps
            # the fingertips may reach below the cube and rest on the base: let go where the cube stops
            stalled = self.phase_steps - self.lowest_step >= STALL_STEPS
            if (np.linalg.norm(error) < 0.003 and self.phase_steps > 4) or stalled:
                self.release_level, self.free_steps = 1.0, 0
                # the cube servo pushes the command below a cube that rests on the base: restart from the
                # hand's real position so it does not press on while letting go
                self.motion.position = self.hand.grasp_site_pos(self.data)
                self.release_from = self.motion.position.copy()
                if self.hand.spec.release_style == "slip-off":
                    self.hold_pose = self.data.qpos[self.hand.finger_qpos].copy()
                    self.goto("loosen")
                else:
                    self.goto("release")
        elif self.phase == "loosen":  # slip-off release only: relax the squeeze in place
            fingers = self._loosened(min(1.0, (self.phase_steps + 1) / LOOSEN_STEPS))
            self.motion.toward(self.release_from, rotation)
            if self.phase_steps + 1 >= LOOSEN_STEPS + LOOSEN_WAIT:
                self.goto("withdraw")
        elif self.phase == "withdraw":  # ... then slide the fingers up off the cube and open above it
            risen = self.motion.position[2] - self.release_from[2]
            clear = 2 * task.model.geom_size[task.cube_geom, 0] + WITHDRAW_MARGIN
            opening = float(np.clip((risen - clear) / OPEN_RISE, 0.0, 1.0))
            fingers = self._loosened(1.0) + opening * (self.hand.synergy("open", 0.0) - self._loosened(1.0))
            remaining = self.motion.toward(self.release_from + [0, 0, RETREAT_HEIGHT], rotation,
                                           max_step=WITHDRAW_SPEED)
            if remaining < 0.01:
                self.release_level = 0.0
                self.goto("retreat")
        elif self.phase == "release":
            # Open only until the fingers let go: opening fully sweeps them outward and can push the cube
            # off the base. How far that is differs per hand, so watch the contacts.
            self.free_steps = 0 if task.hand_touches_cube(self.data) else self.free_steps + 1
            if self.free_steps < RELEASED_STEPS and self.release_level > 0.0:
                self.release_level = max(0.0, self.release_level - RELEASE_RATE)
            elif self.release_level <= MAX_RELEASE_LEVEL:  # let go, or fully open with the palm still on it
                self.goto("retreat")
            fingers = self.hand.synergy("power", self.release_level)
            # rise slowly so a palm resting on the cube's top comes off it too
            self.motion.toward(self.release_from + [0, 0, RELEASE_RISE], rotation, max_step=0.002)
        elif self.phase == "retreat":
            fingers = self.hand.synergy("power", self.release_level)
            remaining = self.motion.toward(self.release_from + [0, 0, RETREAT_HEIGHT], rotation, max_step=0.008)
            resting = np.linalg.norm(self.data.qvel[task.cube_qvel]) < RESTING_SPEED
            if remaining < 0.01 and resting and not task.is_stacked(self.data):  # missed: pick it up again
                self.goto("approach")
        wrist = self.hand.wrist_ik(self.data, self.motion.position, self.motion.rotation)
        return self.hand.action(wrist, fingers)


class StackExpertV3(StackExpert):
    """hb-v2's stack expert: v2, except that a slip-off hand retries a failed attempt sooner.

    The Shadow hand's tilted power grasp drops a heavy cube on the way more often than hb16's, and the cube then
    lies near the base, where a grasp often knocks the base and misses again: the episode (200 steps) ran out
    in the middle of its retries (issue 12: 94 of the 100 holdout seeds). For slip-off hands
    (``HandSpec.release_style``) v3 saves steps on every retry: a grasp that left the cube on the table and
    ungripped is given up after ``LIFT_CHECK_STEPS`` lift steps (not once the hand is 8 cm above it), a
    withdrawing hand goes back for a cube that fell off the base as soon as its fingers are ``MISSED_CLEARANCE``
    above it (not after rising the whole ``RETREAT_HEIGHT``), and a retry comes down from ``REGRASP_ABOVE``.
    The first attempt, and everything hb16 does, is v2's.
    """

    version = 3

    @classmethod
    def version_for(cls, hand: HandSpec) -> int:
        """3 for slip-off hands; other hands (hb16) act exactly as with v2, so their results and demos stay v2's."""
        return cls.version if hand.release_style == "slip-off" else StackExpert.version

    def on_reset(self) -> None:
        super().on_reset()
        self.attempts = 0  # failed attempts so far

    def goto(self, phase: str) -> None:
        if phase == "approach" and self.phase not in ("start", "approach"):
            self.attempts += 1
        super().goto(phase)

    def _approach_above(self) -> float:
        return REGRASP_ABOVE if self.attempts and self._slip_off() else APPROACH_ABOVE

    def _slip_off(self) -> bool:
        return self.hand.spec.release_style == "slip-off"

    def _failed(self) -> bool:
        """Whether the current attempt has visibly failed (slip-off hands only; v2 notices it later)."""
        if not self._slip_off():
            return False
        task = self.task
        cube = task.cube_position(self.data)
        if self.phase == "lift":
            gripped = rules.is_grip(task.contacts.parts_touching(self.data, (task.cube_geom,)))
            return self.phase_steps >= LIFT_CHECK_STEPS and not gripped and cube[2] < task.start_height + 0.01
        if self.phase in ("withdraw", "retreat"):
            risen = self.motion.position[2] - self.release_from[2]
            resting = np.linalg.norm(self.data.qvel[task.cube_qvel]) < RESTING_SPEED
            return (risen > 2 * task.model.geom_size[task.cube_geom, 0] + MISSED_CLEARANCE and resting
                    and not task.is_stacked(self.data) and not task.hand_touches_cube(self.data))
        return False

    def plan(self) -> np.ndarray:
        if self._failed():
            self.goto("approach")
        return super().plan()


Stack.expert = StackExpert  # declared once the expert class exists
StackV1.expert = StackExpertV3
TASKS = (Stack, StackV1)  # v0: hb-v1 (expert v2); v1: hb-v2 (expert v3)
