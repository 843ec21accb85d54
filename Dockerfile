# syntax=docker/dockerfile:1.7
# One image for every Heron component; the command picks it:
#   gateway:  python -m heron_gateway       services: python -m heron_<auth|content|media|plugins>
#   migrate:  heron migrate                 seed:     heron seed --url … (any HTTP client)
# One image because the components are one uv workspace with one lockfile: one build, one
# dependency layer and one pull per node serve them all (see docs/operations.md).
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# The dependencies first, from the lockfile and the workspace's project files only: this layer
# is rebuilt when a dependency changes, not when the source does.
COPY pyproject.toml uv.lock ./
COPY proto/pyproject.toml proto/
COPY services/common/pyproject.toml services/common/
COPY services/auth/pyproject.toml services/auth/
COPY services/content/pyproject.toml services/content/
COPY services/media/pyproject.toml services/media/
COPY services/plugins/pyproject.toml services/plugins/
COPY gateway/pyproject.toml gateway/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-install-workspace
# Then Heron itself, installed (not linked) into the environment the runtime stage copies.
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --all-packages --no-editable

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG VERSION=0.1.0
ARG REVISION=unknown
LABEL org.opencontainers.image.title="Heron" \
      org.opencontainers.image.description="Heron, a headless CMS as Python microservices" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://example.com/heron/heron" \
      org.opencontainers.image.licenses="MIT"
RUN groupadd --system --gid 10001 heron \
    && useradd --system --uid 10001 --gid heron --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin heron \
    && mkdir -p /data \
    && chown 10001:10001 /data
COPY --from=build --chown=10001:10001 /app/.venv /app/.venv
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HERON_DATA_DIR=/data \
    HERON_LOG_JSON=true \
    HERON_GATEWAY_HOST=0.0.0.0 \
    HERON_AUTH_GRPC_HOST=0.0.0.0 \
    HERON_CONTENT_GRPC_HOST=0.0.0.0 \
    HERON_MEDIA_GRPC_HOST=0.0.0.0 \
    HERON_PLUGINS_GRPC_HOST=0.0.0.0
WORKDIR /app
USER 10001:10001
EXPOSE 8000 50051 50052 50053 50054
# Every process drains on SIGTERM (readiness off, in-flight calls finish), then exits.
STOPSIGNAL SIGTERM
# HERON_PROBE names what to check: the gateway's /health by default, a service with
# grpc://127.0.0.1:<port> (set per component by compose and the manifests).
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-m", "heron_common.probe"]
CMD ["python", "-m", "heron_gateway"]
