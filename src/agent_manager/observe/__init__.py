"""Read-only views of what runs: agent states from Docker, status, sleepers and their records,
the GPU snapshot, ports, the agent list and logs. Nothing here starts, stops or sleeps an agent."""
