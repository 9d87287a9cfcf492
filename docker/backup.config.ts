// The container demo (compose.yaml mounts this file at /config/backup.config.ts): the demo PostgreSQL database "shop"
// backed up every minute into a restic repository on the compose service "sftp", by `backupctl watch`.
// Secrets are Docker secrets under /run/secrets, made by docker/make-secrets.sh; see docs/deploy.md.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig, file, postgres, restic } from "backupctl";

/**
 * The sftp server's host key, pinned: docker/make-secrets.sh generates the server's key pair and writes its
 * known_hosts line to docker/secrets/sftp_known_hosts, which compose mounts next to this file. With it ssh trusts that
 * key only (and refuses a server presenting another one).
 */
function sftpKnownHosts(): string {
  const path = fileURLToPath(new URL("./sftp_known_hosts", import.meta.url));
  try {
    return readFileSync(path, "utf8").trim();
  } catch {
    throw new Error(
      `${path} cannot be read: run docker/make-secrets.sh and mount docker/secrets/sftp_known_hosts there`,
    );
  }
}

// A function, so a missing known_hosts file is reported as the config's problem (validate, watch) with its fix.
export default () =>
  defineConfig({
    timezone: "UTC",
    // Snapshots record this host name; a container's own name changes with every container.
    host: "compose-demo",
    repositories: {
      sftp: restic({
        url: "sftp:backup@sftp:/home/backup/restic",
        password: file("/run/secrets/restic_password"),
        ssh: { key: file("/run/secrets/ssh_key"), knownHosts: sftpKnownHosts() },
      }),
    },
    // Notifications: uncomment one, put its URL in .env (compose reads it; never in this file) and add
    // `notify: ["monitor"]` to the project. `backupctl notify test monitor` sends an example message.
    // notifiers: {
    //   monitor: healthchecks({ pingUrl: env("HC_PING_URL") }),
    //   hook: webhook({ url: env("WEBHOOK_URL") }),
    // },
    projects: {
      shop: {
        // Every minute, so the demo shows backups soon; a real database wants hourly or daily.
        schedule: "* * * * *",
        sources: [
          postgres({
            host: "postgres",
            port: 5432,
            database: "shop",
            user: "backup",
            password: file("/run/secrets/postgres_password"),
          }),
        ],
        repositories: ["sftp"],
        // The last 12 (12 minutes of them), then one per hour for a day and one per day for a week.
        retention: { last: 12, hourly: 24, daily: 7 },
        // /healthz turns unhealthy when the last success is older than this (15 missed slots).
        maxAge: "15m",
        prune: { every: "1d" },
        check: { every: "1d" },
      },
    },
  });
