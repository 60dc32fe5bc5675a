"""Weights & Biases: reference artifacts, the lineage callback of fit and predict stages, runs of the tool stages."""
