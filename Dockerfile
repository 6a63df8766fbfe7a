# spdyasgi serving examples.hello:app; replace the CMD (or the app) for your own service.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
WORKDIR /app

COPY pyproject.toml README.md ./
COPY spdyasgi ./spdyasgi
RUN pip install '.[standard]'
COPY examples ./examples

USER app
EXPOSE 8000

# HTTP/1.1 on the same port as SPDY, so a plain urllib probe works.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/', timeout=4).status == 200 else 1)"]

# Bind all interfaces inside the container only; the CLI default stays 127.0.0.1.
CMD ["spdyasgi", "examples.hello:app", "--host", "0.0.0.0", "--port", "8000"]
