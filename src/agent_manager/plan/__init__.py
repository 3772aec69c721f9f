"""Will a model fit? Checkpoint shapes, memory arithmetic, verdicts and fixes.

- `shape.py`: a model's shape from config.json (pure), including vLLM's derived context limit.
- `memory.py`: vLLM 0.33's memory arithmetic and the allowances (pure, plain numbers).
- `models.py`: inputs (checkpoint facts, GPU and host targets) and the `plan` output models.
- `sizing.py`, `verdict.py`, `fixes.py`: one agent's verdict and fixes, on a GPU or on host
  RAM for `engine: cpu` (pure).
- `checkpoint.py`: config.json and weight sizes from the HF cache, then the hub (I/O).
- `planner.py`: the edge: NVML, psutil and checkpoints in, plans out; `ensure_fits` for launch.
"""
