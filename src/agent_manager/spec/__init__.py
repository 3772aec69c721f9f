"""Agent specs: the YAML model (pydantic) and its loader, the workspace, vLLM's flag table and argv,
endpoints."""
