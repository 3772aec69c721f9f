"""The edges: each module is the only importer of its SDK or CLI, and most sit behind a small
Protocol returned by one factory that tests replace (docker.get_docker, nvml.get_nvml)."""
