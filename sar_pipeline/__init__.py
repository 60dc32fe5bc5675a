"""The stage runner: a pipeline YAML becomes stages (fit, predict, tools), each its own process, locally
or under SLURM."""
