"""Checkpoint -> predictions -> files, without Lightning: the tensor engine (windows, TTA, ensembles),
checkpoint loading and the tools built on them (map, submit, evaluate, select, preview)."""
