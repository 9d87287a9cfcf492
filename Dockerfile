# backupctl container (first version; the container issue adds `watch`, /healthz and the HEALTHCHECK).
# Not built on the development machines (no Docker engine there): see docs/architecture.md.
ARG DENO_VERSION=2.9.6

# npm dependencies are installed at build time: nothing is fetched when the container starts.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund

FROM denoland/deno:debian-${DENO_VERSION}
RUN apt-get update \
 && apt-get install -y --no-install-recommends restic postgresql-client mariadb-client sqlite3 gnupg age ca-certificates openssh-client \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY deno.json package.json bunfig.toml ./
COPY bin ./bin
COPY src ./src
ENV DENO_DIR=/app/.deno \
    BACKUPCTL_CONFIG=/config/backup.config.ts \
    BACKUPCTL_STATE_DIR=/var/lib/backupctl
# Compile the sources once at build time; configs mounted at /config import "backupctl" through deno.json's map.
RUN deno cache --config deno.json src/main.ts \
 && useradd --system --uid 10001 --home-dir /var/lib/backupctl backupctl \
 && mkdir -p /var/lib/backupctl /config && chown backupctl /var/lib/backupctl && chmod 0700 /var/lib/backupctl
USER backupctl
VOLUME ["/var/lib/backupctl"]
ENTRYPOINT ["/app/bin/backupctl"]
CMD ["status"]
