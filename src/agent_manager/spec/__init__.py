"""Agent specs: the YAML model (pydantic), the workspace, vLLM's flag table and argv, endpoints."""
