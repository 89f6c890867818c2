# syntax=docker/dockerfile:1.7
# One image for every target of oneapi (docs/deployment.md).
#
#   docker build -t oneapi .
#   docker run -p 3000:3000 -v oneapi-data:/data oneapi   # target all: SQLite, embedded NATS
#   docker run oneapi run --target relay                    # one target (or -e TARGET=relay)
#   docker run oneapi migrate                               # schema to head, then exit
#
# Stages: web (the admin UI, built with Node 20), build (the pinned Python dependencies and the
# project in a virtual environment), runtime (that environment on a slim Python, non-root).

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# --- web: the admin UI ------------------------------------------------------------------------
# services/admin/web/ holds the UI's sources (issue 7); `npm run build` writes its assets to
# services/admin/web/dist, which the runtime stage puts beside the installed admin package.
FROM ${NODE_IMAGE} AS web
WORKDIR /src/services/admin/web
COPY services/admin/web/package.json services/admin/web/package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY services/admin/web/ ./
RUN npm run build

# --- build: dependencies from requirements/run.lock, then the project without dependencies ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never
RUN pip install uv==0.13.9 \
    && uv venv --python /usr/local/bin/python3.11 /opt/venv
WORKDIR /src
COPY requirements/run.lock requirements/run.lock
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python -r requirements/run.lock
COPY pyproject.toml README.md ./
COPY oneapi/ oneapi/
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install --python /opt/venv/bin/python --no-deps . \
    && /opt/venv/bin/oneapi --version

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="oneapi" \
      org.opencontainers.image.description="LLM API gateway: one image, targets admin, relay, billing, health" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 oneapi \
    && useradd --system --uid 10001 --gid oneapi --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin oneapi \
    && mkdir -p /data \
    && chown oneapi:oneapi /data
COPY --from=build /opt/venv /opt/venv
COPY --from=web /src/services/admin/web/dist /opt/venv/lib/python3.11/site-packages/services/admin/web/dist
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=3000
# /data: the SQLite file and the embedded NATS store (target all), the relay's usage spill files.
# It is also the working directory, so a .env file in the volume is read, as One API's image does.
VOLUME ["/data"]
WORKDIR /data
USER 10001:10001
EXPOSE 3000
# /readyz answers 200 once every module of the process runs (after the admin's migrations).
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/readyz' % os.environ.get('PORT', '3000'), timeout=4)"]
ENTRYPOINT ["oneapi"]
CMD ["run"]
