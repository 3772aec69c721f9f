"""The OpenAI-compatible endpoint for the whole team (`agent-manager serve`).

One base URL; the body's `model` names the agent. `policy.py` decides when to switch (pure,
asyncio only), `switcher.py` is the one door to the switch core, `upstream.py` proxies to the
running agent (through `network.py`'s HTTP/1.1 client), `app.py` holds the routes, `server.py` runs
uvicorn.
"""
