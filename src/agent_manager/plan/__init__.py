"""Will a model fit? Checkpoint shapes, memory arithmetic, verdicts and fixes."""
