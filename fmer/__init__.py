"""fmer: reproducing "Flow Matching Policy Optimization with Mirror Descent and Entropy
Constraints" (FMER, arXiv 2603.17685). Data flows env -> agent -> logs -> aggregate -> figures.

``fmer.load_policy(RUN_DIR)`` loads a run's final policy (fmer.policy).
"""

from importlib.metadata import PackageNotFoundError, version

try:  # the one place the version is written is pyproject.toml
    __version__ = version("fmer")
except PackageNotFoundError:  # a source tree on PYTHONPATH, never installed
    __version__ = "unknown"


def load_policy(run_dir, device="cpu"):
    """The final policy of a run: ``load_policy(RUN_DIR).act(obs)`` (see fmer.policy)."""
    from fmer.policy import load_policy

    return load_policy(run_dir, device)
