"""Running agents: launch and the switch core, VRAM wait, readiness, diagnosis, phases, lock,
ports."""
