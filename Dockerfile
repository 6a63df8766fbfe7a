# spdyasgi serving examples.hello:app; replace the CMD (or the app) for your own service.

# Build stage: the wheel, with its optional C accelerator compiled (needs gcc and the
# zlib headers; the runtime image already has libz).
FROM python:3.11-slim AS build
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY spdyasgi ./spdyasgi
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
WORKDIR /app

COPY --from=build /wheels /wheels
RUN pip install "$(ls /wheels/spdyasgi-*.whl)[standard]" && rm -rf /wheels
COPY examples ./examples

USER app
# The served port: the CLI reads SPDYASGI_PORT (as --port) and the health check probes
# the same one, so `docker run -e SPDYASGI_PORT=9000` moves both. Don't pass --port.
ENV SPDYASGI_PORT=8000
EXPOSE 8000

# HTTP/1.1 on the same port as SPDY, so a plain urllib probe works.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import os,sys,urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:%s/' % os.environ.get('SPDYASGI_PORT', '8000'), timeout=4).status == 200 else 1)"]

# Bind all interfaces inside the container only; the CLI default stays 127.0.0.1.
CMD ["spdyasgi", "examples.hello:app", "--host", "0.0.0.0"]
