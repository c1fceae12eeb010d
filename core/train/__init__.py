"""Training: the pipeline from a RunConfig to a run directory, the engine loop, checkpoints,
resource estimates and the fine-tune method table."""
