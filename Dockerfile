# syntax=docker/dockerfile:1
# Build stage: the bot and its dependencies, installed into /install.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY bot ./bot
COPY storage ./storage
# Exactly the locked, hash-checked dependencies that were tested; then the bot itself.
RUN pip install --no-cache-dir --disable-pip-version-check --prefix=/install \
        --require-hashes -r requirements.lock \
    && pip install --no-cache-dir --disable-pip-version-check --prefix=/install --no-deps .

# Run stage: the installed packages only, a non-root user, the database on a volume,
# every setting from the environment (see docs/configuration.md).
FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent imagine \
    && mkdir /data \
    && chown imagine /data
COPY --from=build /install /usr/local
ENV DATABASE_PATH=/data/imagine-bot.sqlite3 \
    HTTP_HOST=0.0.0.0 \
    HTTP_PORT=8080 \
    MPLCONFIGDIR=/tmp/matplotlib \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
USER 10001
WORKDIR /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('HTTP_PORT', '8080') + '/healthz', timeout=4)"]
STOPSIGNAL SIGTERM
CMD ["python", "-m", "bot"]
