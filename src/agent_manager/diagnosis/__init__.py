"""Pure reading of vLLM's and Compose's output: failure rules and their texts, startup phases,
and the memory figures sleep mode logs. No I/O."""
