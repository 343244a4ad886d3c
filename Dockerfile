FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    GATEWAY_DATA_DIR=/data \
    GATEWAY_HOST=0.0.0.0 \
    GATEWAY_PORT=8080 \
    TIKTOKEN_CACHE_DIR=/data/tiktoken

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
COPY config_store ./config_store
COPY billing ./billing
RUN pip install --no-cache-dir . \
    && useradd --system --uid 10001 --home-dir /data gateway \
    && mkdir -p /data && chown gateway /data

USER gateway
VOLUME ["/data"]
EXPOSE 8080
CMD ["gateway", "serve"]
