// The demo configuration: an SQLite database and a folder of files into a local restic repository.
// `deno task demo` creates the data under demo/ and sets DEMO_RESTIC_PASSWORD (default "backupctl-demo").
import { defineConfig, env, files, restic, sqlite } from "backupctl";

export default defineConfig({
  timezone: "UTC",
  repositories: {
    // Relative paths start at this file's folder: the repository lives in the state folder.
    local: restic({ url: ".backupctl/restic-demo", password: env("DEMO_RESTIC_PASSWORD") }),
  },
  projects: {
    demo: {
      schedule: "0 3 * * *",
      sources: [
        sqlite({ path: "demo/app.db" }),
        files({ name: "uploads", paths: ["demo/uploads"], exclude: ["*.tmp"] }),
      ],
      repositories: ["local"],
      retention: { last: 3, daily: 7, weekly: 4, monthly: 6 },
    },
  },
});
