import gymnasium as gym
import gymnasium_robotics
import mujoco
import numpy as np
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import (
    OBS_ELEMENT_GOALS,
    OBS_ELEMENT_INDICES,
)

from fmer.envs import (
    CLASSIC_CONTROL,
    ENV_NAMES,
    ENV_NAMES_HELP,
    KITCHEN_STEPS,
    KITCHEN_TASKS,
    UnknownEnvError,
    episode_steps,
    is_known_env,
    make_env,
)
from fmer.multigoal import EPISODE_STEPS, MultiGoalEnv

OBS_DIMS = {
    "HalfCheetah-v5": 17,
    "Hopper-v5": 11,
    "Walker2d-v5": 17,
    "Ant-v5": 105,
    "Humanoid-v5": 348,
    "Pendulum-v1": 3,
    "kitchen-1": 59,
    "kitchen-4": 59,
    "kitchen-7": 59,
    "multigoal-2d": 2,
}


def test_every_documented_name_is_covered():
    assert set(OBS_DIMS) == set(ENV_NAMES)
    assert all(is_known_env(n) for n in ENV_NAMES)


@pytest.mark.parametrize("name", ENV_NAMES)
def test_spaces_reset_step_and_seeding(name):
    env = make_env(name, seed=0)
    obs_space, act_space = env.observation_space, env.action_space
    assert isinstance(obs_space, spaces.Box) and obs_space.dtype == np.float32
    assert obs_space.shape == (OBS_DIMS[name],)
    assert isinstance(act_space, spaces.Box) and act_space.dtype == np.float32
    assert len(act_space.shape) == 1
    # the time limit, as fmer.analysis.cost reads it without building the env
    assert env.get_wrapper_attr("_max_episode_steps") == episode_steps(name)

    obs, _ = env.reset(seed=7)
    assert obs.dtype == np.float32 and obs.shape == obs_space.shape
    obs2, reward, terminated, truncated, info = env.step(act_space.sample())
    assert obs2.dtype == np.float32 and obs2.shape == obs_space.shape
    assert np.isfinite(float(reward))
    assert isinstance(terminated, bool) and isinstance(truncated, bool)

    again, _ = make_env(name).reset(seed=7)
    other, _ = make_env(name).reset(seed=8)
    np.testing.assert_array_equal(obs, again)
    assert not np.array_equal(obs, other)


def test_seeded_factory_makes_unseeded_reset_and_sampling_reproducible():
    a, b = make_env("Hopper-v5", seed=3), make_env("Hopper-v5", seed=3)
    np.testing.assert_array_equal(a.reset()[0], b.reset()[0])
    np.testing.assert_array_equal(a.action_space.sample(), b.action_space.sample())


# Gymnasium's own checker (render modes left out: no display here). It rebuilds each env from
# env.spec, wrappers included, to check close(); FrankaKitchen's wrapper records its arguments.
@pytest.mark.parametrize("name", list(dict.fromkeys((*ENV_NAMES, *CLASSIC_CONTROL))))
def test_every_env_passes_gymnasiums_checker(name):
    env = make_env(name)
    check_env(env, skip_render_check=True)
    env.close()


def test_raw_kitchen_fails_the_checker_that_the_package_wrapper_passes():
    # FrankaKitchen-v1 hands out observations that its next step overwrites; the package's
    # kitchen envs pass (above) because the wrapper copies them
    gym.register_envs(gymnasium_robotics)
    raw = gym.make("FrankaKitchen-v1", tasks_to_complete=["microwave"], disable_env_checker=True)
    with pytest.raises(AssertionError, match="share an object"):
        check_env(raw, skip_render_check=True)
    raw.close()


def test_mujoco_ids_come_from_the_registry():
    assert is_known_env("Swimmer-v5")
    assert make_env("Swimmer-v5", seed=0).observation_space.dtype == np.float32
    assert is_known_env("MountainCarContinuous-v0")
    for bad in ("HalfCheetah-v3", "CartPole-v1", "FrankaKitchen-v1", "kitchen-2", ""):
        assert not is_known_env(bad)


def test_unknown_name_raises_listing_valid_names():
    with pytest.raises(UnknownEnvError) as err:
        make_env("HalfCheetah-v9")
    assert isinstance(err.value, ValueError)
    msg = str(err.value)
    assert "HalfCheetah-v9" in msg and ENV_NAMES_HELP in msg
    assert all(name in msg for name in ENV_NAMES)


def test_kitchen_task_sets_use_the_envs_task_names():
    assert KITCHEN_TASKS["kitchen-1"] == ("microwave",)
    assert set(KITCHEN_TASKS["kitchen-4"]) == {
        "microwave",
        "kettle",
        "light switch",
        "slide cabinet",
    }
    assert set(KITCHEN_TASKS["kitchen-7"]) == set(OBS_ELEMENT_GOALS)
    for name, tasks in KITCHEN_TASKS.items():
        env = make_env(name)
        assert set(env.unwrapped.goal) == set(tasks)
        assert env.spec.max_episode_steps == KITCHEN_STEPS == 280


def _open_microwave(env: gym.Env) -> None:
    raw = env.unwrapped
    raw.data.qpos[OBS_ELEMENT_INDICES["microwave"]] = OBS_ELEMENT_GOALS["microwave"]
    mujoco.mj_forward(raw.model, raw.data)


def test_kitchen_pays_each_task_once_and_counts_it():
    env = make_env("kitchen-4", seed=0)
    _, info = env.reset(seed=0)
    assert info["tasks_completed"] == 0 and info["success"] is False
    still = np.zeros(env.action_space.shape, dtype=np.float32)

    _, reward, terminated, _, info = env.step(still)
    assert reward == 0.0 and info["tasks_completed"] == 0

    _open_microwave(env)
    _, reward, terminated, _, first = env.step(still)
    assert reward == 1.0 and first["tasks_completed"] == 1
    assert first["success"] is False and not terminated

    _, reward, terminated, _, info = env.step(still)
    assert reward == 0.0 and info["tasks_completed"] == 1 and not terminated

    # info is a snapshot: neither later steps nor a reset change what was handed out
    env.reset(seed=1)
    assert first["tasks_completed"] == 1 and first["episode_task_completions"] == ["microwave"]


def test_kitchen_1_terminates_with_success_when_its_task_is_done():
    env = make_env("kitchen-1", seed=0)
    _open_microwave(env)
    _, reward, terminated, truncated, info = env.step(np.zeros(9, dtype=np.float32))
    assert reward == 1.0 and terminated and not truncated
    assert info["tasks_completed"] == 1 and info["success"] is True
    _, info = env.reset(seed=0)
    assert info["tasks_completed"] == 0 and info["success"] is False


def test_multigoal_has_four_goals_and_a_fixed_horizon():
    env = make_env("multigoal-2d", seed=0)
    goals = env.unwrapped.goals
    assert sorted(map(tuple, goals)) == [(-5, 0), (0, -5), (0, 5), (5, 0)]
    assert env.observation_space.shape == env.action_space.shape == (2,)
    np.testing.assert_array_equal(env.action_space.low, -1.0)
    np.testing.assert_array_equal(env.action_space.high, 1.0)

    env.reset(seed=0)
    steps, truncated, terminated = 0, False, False
    while not (truncated or terminated):
        # stay near the origin, equidistant from all goals: never reaches one
        _, reward, terminated, truncated, info = env.step(np.zeros(2, dtype=np.float32))
        steps += 1
        assert reward < 0 and info["goal"] == -1
    assert truncated and not terminated and steps == EPISODE_STEPS


@pytest.mark.parametrize("goal", range(4))
def test_multigoal_reaching_a_goal_terminates_with_the_bonus(goal):
    env = make_env("multigoal-2d", seed=goal)
    raw: MultiGoalEnv = env.unwrapped
    pos, _ = env.reset(seed=goal)
    target = raw.goals[goal]
    for _ in range(EPISODE_STEPS):
        action = np.clip(target - pos, -1.0, 1.0).astype(np.float32)
        pos, reward, terminated, truncated, info = env.step(action)
        if terminated:
            break
    assert terminated and not truncated and info["goal"] == goal
    # the reward is the bonus minus the action and squared-distance costs
    cost = raw.action_cost * float(np.sum(action.astype(np.float64) ** 2)) + raw.distance_cost * (
        float(np.sum((pos.astype(np.float64) - target) ** 2))
    )
    assert reward == pytest.approx(raw.goal_reward - cost, abs=1e-4)
    assert np.linalg.norm(pos - target) < raw.goal_radius


def test_multigoal_noise_and_bounds():
    calm, noisy = MultiGoalEnv(), MultiGoalEnv(noise_sigma=0.5)
    start, _ = calm.reset(seed=0)
    np.testing.assert_array_equal(start, noisy.reset(seed=0)[0])
    np.testing.assert_array_equal(calm.step(np.zeros(2))[0], start)
    assert np.linalg.norm(noisy.step(np.zeros(2))[0] - start) > 0.05

    calm.reset(seed=0)
    for _ in range(10):
        # clipped to (1, 1): the diagonal passes no goal and ends in the corner
        pos, _, terminated, _, _ = calm.step(np.array([3.0, 3.0]))
        assert not terminated
    np.testing.assert_allclose(pos, [calm.bound, calm.bound])
