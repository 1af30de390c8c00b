"""The 2-D multi-goal point mass of soft Q-learning (Haarnoja et al. 2017, "MultiGoalEnv").

A point starts near the origin; four goals sit at (±5, 0) and (0, ±5). The optimal policy is
multimodal (every goal is equally good), which is what the multimodality figure shows.
Defaults are those of the soft Q-learning paper's toy experiment.
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces

GOALS = np.array([[5.0, 0.0], [-5.0, 0.0], [0.0, 5.0], [0.0, -5.0]])
EPISODE_STEPS = 30


class MultiGoalEnv(gym.Env):
    """Point mass, x' = clip(x + a + noise), a in [-1, 1]^2.

    reward = -action_cost * |a|^2 - distance_cost * min_g |x' - g|^2
             (+ goal_reward and termination once x' is within goal_radius of a goal).
    `info["goal"]` is the index into `goals` of the goal reached, or -1.
    No time limit here: `fmer.envs.make_env` adds one of EPISODE_STEPS steps.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        goal_reward: float = 10.0,
        action_cost: float = 30.0,
        distance_cost: float = 1.0,
        goal_radius: float = 1.0,
        init_sigma: float = 0.1,
        noise_sigma: float = 0.0,
        bound: float = 7.0,
    ):
        self.goals = GOALS.copy()
        self.goal_reward = goal_reward
        self.action_cost = action_cost
        self.distance_cost = distance_cost
        self.goal_radius = goal_radius
        self.init_sigma = init_sigma
        self.noise_sigma = noise_sigma
        self.bound = bound
        self.observation_space = spaces.Box(-bound, bound, shape=(2,), dtype=np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)
        self._pos = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        start = self.init_sigma * self.np_random.standard_normal(2)
        self._pos = np.clip(start, -self.bound, self.bound)
        return self._pos.astype(np.float32), {"goal": -1}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -1.0, 1.0)
        nxt = self._pos + a
        if self.noise_sigma > 0:
            nxt = nxt + self.noise_sigma * self.np_random.standard_normal(2)
        self._pos = np.clip(nxt, -self.bound, self.bound)
        sq_dist = np.sum((self.goals - self._pos) ** 2, axis=1)
        nearest = int(np.argmin(sq_dist))
        reward = -self.action_cost * float(a @ a) - self.distance_cost * float(sq_dist[nearest])
        reached = bool(np.sqrt(sq_dist[nearest]) < self.goal_radius)
        if reached:
            reward += self.goal_reward
        info = {"goal": nearest if reached else -1}
        return self._pos.astype(np.float32), reward, reached, False, info
