"""What several test modules share: the tiny dataset settings, CLI subprocesses, checkpoints."""
