"""``python -m spdyasgi``: the same command as ``spdyasgi``."""

from spdyasgi.main import main

if __name__ == "__main__":
    main(prog_name="spdyasgi")
