"""Progress of a training run on stderr (fmer.train's loop reports to it)."""

from __future__ import annotations

import math
import sys

from tqdm import tqdm


class Progress:
    """Progress on stderr: a tqdm bar on a terminal; anywhere else (a workflow log, a SLURM
    output file) one plain line per train.csv row, because a bar redrawn with carriage returns
    becomes one ever-growing line in a file (~26 MB for a 1M-step run)."""

    def __init__(self, desc: str, total: int, initial: int):
        self.desc, self.total = desc, total
        self.bar = (tqdm(total=total, initial=initial, unit="step", mininterval=1.0, desc=desc,
                         file=sys.stderr) if sys.stderr.isatty() else None)

    def update(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def evaluated(self, eval_return: float) -> None:
        if self.bar is not None:
            self.bar.set_postfix(eval_return=f"{eval_return:.1f}", refresh=False)

    def line(self, step: int, env_steps_per_s: float, last_eval: float) -> None:
        if self.bar is None:
            evaluation = "none yet" if math.isnan(last_eval) else f"{last_eval:.1f}"
            print(f"{self.desc}: step {step}/{self.total}, {env_steps_per_s:.1f} env steps/s, "
                  f"last evaluation return {evaluation}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
