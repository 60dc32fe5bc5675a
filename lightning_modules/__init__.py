"""Everything that learns or predicts."""
