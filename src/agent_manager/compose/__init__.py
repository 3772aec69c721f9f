"""Rendering `compose/docker-compose-<agent>.yml` (pure) and writing it atomically."""
