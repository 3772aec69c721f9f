"""agent-manager: several local LLM agents served by vLLM on one NVIDIA GPU, one at a time."""

__version__ = "0.1.0"
