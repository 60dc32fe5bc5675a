"""The LightningModules and what they are made of: networks, losses, metrics, optimiser, the shared task,
the mean teacher, stage 1, stage 2, the prediction writer and the CLI class."""
