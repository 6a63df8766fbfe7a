"""The ASGI side of the server: scopes, lifespan and per-stream cycles."""
