"""asyncio protocols: one object per connection (HTTP/1.1, SPDY, and the sniffer)."""
