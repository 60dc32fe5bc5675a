"""Studies over many runs: the ablation study, seed statistics, measured child runs, step timing."""
