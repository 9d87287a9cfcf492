# backupctl in a container: `backupctl watch` runs plan → apply forever and serves /healthz and /metrics on :9464.
# Build: docker build -t backupctl .   (or podman build --format docker -t backupctl .)   Run it with compose.yaml
# (see docs/deploy.md). test/container/podman_test.ts builds this file unmodified with podman and runs it.
ARG DENO_VERSION=2.9.6

# Deno's binary-only image: the runtime stage below is Debian bookworm whatever Debian Deno's own images move to, so
# the Debian programs backupctl runs are known (pg_dump 15, restic 0.14, MariaDB 10.11 client).
FROM denoland/deno:bin-${DENO_VERSION} AS deno

# npm dependencies are installed at build time, without the devDependencies (Bun, test servers): nothing is fetched
# when the container starts.
FROM node:22-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
# Without the optional npm package deno either: the runtime stage has Deno's own binary, which bin/backupctl finds on
# PATH (the package would add 95 MB for the same binary).
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund

# The runtime: Debian bookworm, Deno's binary and the programs backupctl starts.
FROM debian:bookworm-slim
COPY --from=deno /deno /usr/local/bin/deno

# The programs backupctl starts: restic; pg_dump/pg_dumpall (postgresql-client), mariadb-dump (mariadb-client),
# sqlite3; gpg and age for encrypted dumps; ssh for sftp: repositories; curl for the HEALTHCHECK.
# pg_dump refuses a server newer than itself: bookworm's postgresql-client is 15, so this image backs up PostgreSQL
# up to 15 (compose.yaml's demo server is postgres:15). For a newer server, add PostgreSQL's own apt repository
# (apt.postgresql.org) and install postgresql-client-NN in a derived image.
#
# MongoDB's database tools (mongodump) have no Debian package. To add them, pass the URL of MongoDB's .deb for this
# Debian release and architecture: docker build --build-arg MONGODB_TOOLS_DEB=https://…/mongodb-database-tools-….deb .
# Empty (the default): no mongodump in the image, and mongodb() sources fail naming the missing program.
ARG MONGODB_TOOLS_DEB=
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      restic postgresql-client mariadb-client sqlite3 gnupg age openssh-client ca-certificates curl \
 && if [ -n "$MONGODB_TOOLS_DEB" ]; then \
      curl -fsSL --retry 3 -o /tmp/mongodb-database-tools.deb "$MONGODB_TOOLS_DEB" \
      && apt-get install -y --no-install-recommends /tmp/mongodb-database-tools.deb \
      && rm /tmp/mongodb-database-tools.deb \
      && mongodump --version; \
    fi \
 && rm -rf /var/lib/apt/lists/* \
 && restic version && pg_dump --version && mariadb-dump --version && sqlite3 --version && age --version

WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY deno.json package.json bunfig.toml ./
COPY bin ./bin
COPY src ./src

# How a config at /config finds "backupctl": bin/backupctl runs
#   deno run --config /app/deno.json /app/src/main.ts …
# and the import map of that deno.json ("backupctl": "./src/mod.ts", resolved against /app) applies to every module
# Deno loads in that process, wherever it lives; src/runtime/import-config.ts imports the config by its absolute path,
# so /config/backup.config.ts's `import … from "backupctl"` becomes /app/src/mod.ts, and mod.ts's npm imports resolve
# from /app/node_modules (nodeModulesDir "manual"). Nothing needs to be installed next to the config.
# (Bun, which the image does not carry, gets the same result from import-config's onLoad rewrite.)
ENV DENO_DIR=/app/.deno \
    DENO_NO_UPDATE_CHECK=1 \
    BACKUPCTL_CONFIG=/config/backup.config.ts \
    BACKUPCTL_STATE_DIR=/var/lib/backupctl \
    BACKUPCTL_LISTEN=0.0.0.0:9464

# Compile the sources once at build time, into a DENO_DIR that stays root-owned (read-only for backupctl: only the
# config, which changes at run time, is compiled at start). The commands are named too: main.ts imports each one only
# when it runs, by a specifier Deno does not read ahead (src/runtime/later.ts). Then the unprivileged user (uid and gid 10001) whose home
# is the state folder (restic's cache and ssh's ~/.ssh go there too), mode 0700.
RUN deno cache --config deno.json src/main.ts src/cli/*.ts \
 && groupadd --system --gid 10001 backupctl \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/backupctl --shell /usr/sbin/nologin backupctl \
 && mkdir -p /var/lib/backupctl /config \
 && chown 10001:10001 /var/lib/backupctl && chmod 0700 /var/lib/backupctl

# OCI labels: VERSION and REVISION are passed by the build (docs/deploy.md):
#   --build-arg VERSION="$(jq -r .version package.json)" --build-arg REVISION="$(git rev-parse HEAD)"
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="backupctl" \
      org.opencontainers.image.description="Backup-as-code: plan and apply database and file backups into restic repositories" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"

USER 10001:10001
VOLUME ["/var/lib/backupctl"]
EXPOSE 9464

# /healthz answers 200 for ok and degraded, 503 for unhealthy (curl -f fails on it). The port follows BACKUPCTL_LISTEN.
HEALTHCHECK --interval=1m --timeout=10s --start-period=2m --retries=3 \
  CMD curl -fsS --max-time 5 -o /dev/null "http://127.0.0.1:${BACKUPCTL_LISTEN##*:}/healthz" || exit 1

# bin/backupctl execs deno, so deno receives the signals. On SIGTERM watch takes no new work, lets the running stage
# finish within --grace (60s) and exits 0 (143 when it had to be stopped): give `docker stop` more than that
# (compose.yaml: stop_grace_period 90s; docker stop --time 90). Run with an init (compose `init: true`,
# `docker run --init`) so processes orphaned by restic or ssh are reaped.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/bin/backupctl"]
CMD ["watch"]
