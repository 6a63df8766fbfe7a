"""Example applications for spdyasgi (``spdyasgi examples.hello:app``)."""
