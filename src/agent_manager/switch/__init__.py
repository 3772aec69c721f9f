"""The only code that changes what runs: the switch core (core.py), its plan and strategy
protocol (strategy.py), the cold and hot strategies, the fit check, the engine's sleep/wake
client, follow-until-ready, the VRAM wait, stop, the workspace lock and pre-flight checks."""
