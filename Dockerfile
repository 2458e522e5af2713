# syntax=docker/dockerfile:1
# Build stage: install the bot and its dependencies into /install.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY storage ./storage
RUN pip install --no-cache-dir --prefix=/install .

# Run stage: the installed packages only, as a non-root user, the database on a volume.
FROM python:3.11-slim
RUN useradd --system --uid 10001 --no-create-home --home-dir /nonexistent imagine \
    && mkdir /data \
    && chown imagine /data
COPY --from=build /install /usr/local
ENV DATABASE_PATH=/data/imagine-bot.sqlite3 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
USER imagine
WORKDIR /data
EXPOSE 8080
CMD ["python", "-m", "bot"]
