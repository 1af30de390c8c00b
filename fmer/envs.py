"""One factory for every environment the package trains on.

All envs come out with a flat float32 Box observation and the env's own Box action bounds
(agents rescale to the cube themselves, see fmer.nets.ActionBox).

- Gymnasium MuJoCo ids (any id whose entry point lives in gymnasium.envs.mujoco) and the
  continuous classic-control tasks in CLASSIC_CONTROL: gymnasium.make, observation cast to float32.
- kitchen-N: FrankaKitchen-v1 (gymnasium-robotics) with the task set KITCHEN_TASKS[name],
  280-step episodes, observation = the 59-d `observation` entry of the dict (the goals are
  constant per setting, so they carry no information). Reward = tasks completed that step,
  each paid once (the env's own behaviour). The episode terminates once all N tasks are done
  (the env's default): nothing is left to earn, so the value of that state is truly zero.
  info["tasks_completed"] (int, cumulative in the episode) and info["success"] (all N done).
- multigoal-2d: fmer.multigoal.MultiGoalEnv with a 30-step time limit; goals in
  `env.unwrapped.goals`.
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import TimeLimit, TransformObservation

from fmer.multigoal import EPISODE_STEPS, MultiGoalEnv

CLASSIC_CONTROL = ("Pendulum-v1", "MountainCarContinuous-v0")
KITCHEN_STEPS = 280
KITCHEN_TASKS = {
    "kitchen-1": ("microwave",),
    # the D4RL "kitchen-complete" set
    "kitchen-4": ("microwave", "kettle", "light switch", "slide cabinet"),
    "kitchen-7": (
        "microwave",
        "kettle",
        "light switch",
        "slide cabinet",
        "bottom burner",
        "top burner",
        "hinge cabinet",
    ),
}
MULTIGOAL = "multigoal-2d"

# The paper's benchmarks (docs/FMER.md §7): the experiment grid, the figures and the tables
MUJOCO_BENCHMARKS = ("Hopper-v5", "HalfCheetah-v5", "Walker2d-v5", "Humanoid-v5")
KITCHEN_BENCHMARKS = tuple(KITCHEN_TASKS)
BENCHMARKS = (*MUJOCO_BENCHMARKS, *KITCHEN_BENCHMARKS, MULTIGOAL)

# The names the tests cover: the benchmarks, and a cheap env for learning tests
ENV_NAMES = (*BENCHMARKS, "Ant-v5", "Pendulum-v1")
ENV_NAMES_HELP = (
    f"{', '.join(ENV_NAMES)}, MountainCarContinuous-v0, "
    "or any other Gymnasium MuJoCo id (e.g. Swimmer-v5)"
)


class UnknownEnvError(ValueError):
    pass


def _is_mujoco_id(name: str) -> bool:
    # v2/v3 ids are registered with a function that raises (they need mujoco-py): excluded here
    spec = gym.registry.get(name)
    return (
        spec is not None
        and isinstance(spec.entry_point, str)
        and spec.entry_point.startswith("gymnasium.envs.mujoco.")
    )


def is_known_env(name: str) -> bool:
    return (
        name in KITCHEN_TASKS or name == MULTIGOAL or name in CLASSIC_CONTROL or _is_mujoco_id(name)
    )


def _box32(box: spaces.Box) -> spaces.Box:
    return spaces.Box(box.low.astype(np.float32), box.high.astype(np.float32), dtype=np.float32)


def _float32_obs(env: gym.Env) -> gym.Env:
    if env.observation_space.dtype == np.float32:
        return env
    # DtypeObservation would do, but warns about casting the (infinite) bounds
    return TransformObservation(
        env, lambda obs: obs.astype(np.float32), _box32(env.observation_space)
    )


class KitchenTasks(gym.Wrapper, gym.utils.RecordConstructorArgs):
    """FrankaKitchen with the flat observation and per-episode task bookkeeping in info.

    The observation is a copy (``astype``): FrankaKitchen-v1 returns arrays that its later
    steps and resets overwrite. Its constructor arguments are recorded (Gymnasium's wrapper
    convention), so that ``env.spec.make()`` rebuilds the wrapped env."""

    def __init__(self, env: gym.Env, n_tasks: int):
        gym.utils.RecordConstructorArgs.__init__(self, n_tasks=n_tasks)
        gym.Wrapper.__init__(self, env)
        self.n_tasks = n_tasks
        self.observation_space = _box32(env.observation_space["observation"])
        # float32 like every other env here (the robot's own space is float64, same bounds)
        self.action_space = _box32(env.action_space)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        return self._obs(obs), self._info(info)

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._obs(obs), reward, terminated, truncated, self._info(info)

    @staticmethod
    def _obs(obs: dict) -> np.ndarray:
        return obs["observation"].astype(np.float32)

    def _info(self, info: dict) -> dict:
        # the env hands out its own episode list and mutates it on later steps and on reset
        done = list(info["episode_task_completions"])
        return {
            **info,
            "episode_task_completions": done,
            "tasks_completed": len(done),
            "success": len(done) == self.n_tasks,
        }


def _make_kitchen(name: str) -> gym.Env:
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)
    tasks = KITCHEN_TASKS[name]
    env = gym.make(
        "FrankaKitchen-v1",
        tasks_to_complete=list(tasks),
        terminate_on_tasks_completed=True,
        max_episode_steps=KITCHEN_STEPS,
        # the checker only warns that reset and step share the (constant) goal dict
        disable_env_checker=True,
    )
    return KitchenTasks(env, len(tasks))


def run_episode(env: gym.Env, policy, seed: int) -> tuple[float, dict]:
    """Reset ``env`` with ``seed`` and step ``policy(obs) -> env action`` until the episode
    ends: (undiscounted return, the last step's info)."""
    obs, info = env.reset(seed=seed)
    total, done = 0.0, False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        total += float(reward)
        done = terminated or truncated
    return total, info


def episode_steps(name: str) -> int:
    """The time limit of env `name`'s episodes, as `make_env` sets it, without building it."""
    if name in KITCHEN_TASKS:
        return KITCHEN_STEPS
    if name == MULTIGOAL:
        return EPISODE_STEPS
    if name in CLASSIC_CONTROL or _is_mujoco_id(name):
        return gym.spec(name).max_episode_steps
    raise UnknownEnvError(f"unknown environment {name!r}; valid: {ENV_NAMES_HELP}")


def make_env(name: str, seed: int | None = None) -> gym.Env:
    """Build env `name`. With a seed, the env is reset with it and its action space seeded,
    so the next `reset()` (seeded or not) is reproducible."""
    if name in KITCHEN_TASKS:
        env = _make_kitchen(name)
    elif name == MULTIGOAL:
        env = TimeLimit(MultiGoalEnv(), max_episode_steps=EPISODE_STEPS)
    elif name in CLASSIC_CONTROL or _is_mujoco_id(name):
        env = _float32_obs(gym.make(name))
    else:
        raise UnknownEnvError(f"unknown environment {name!r}; valid: {ENV_NAMES_HELP}")
    if seed is not None:
        env.reset(seed=seed)
        env.action_space.seed(seed)
    return env
