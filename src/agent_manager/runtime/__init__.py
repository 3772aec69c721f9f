"""Running agents: the switch core (switch.py) with its per-agent states (state.py), VRAM wait,
follow-until-ready, diagnosis, phases, lock, ports; status, stop and logs."""
