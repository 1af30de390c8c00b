"""fmer: reproducing "Flow Matching Policy Optimization with Mirror Descent and Entropy
Constraints" (FMER, arXiv 2603.17685). Data flows env -> agent -> logs -> aggregate -> figures.
"""

__version__ = "0.1.0"
