/** The dispatch table of apply: one handler per action type of the plan, each in its own module. */
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { copy } from "./copy.ts";
import { forget } from "./forget.ts";
import { init } from "./init.ts";
import { prune } from "./prune.ts";
import { recover } from "./recover.ts";
import type { ActionHandlers } from "./types.ts";
import { verify } from "./verify.ts";

export const handlers: ActionHandlers = {
  init,
  backup,
  copy,
  forget,
  prune,
  check,
  verify,
  recover,
  // pgBackRest's actions load their modules (and src/pitr/) only when a plan has one: an apply of restic projects
  // never reads them (start-up time and memory, docs/benchmarks.md).
  stanza_create: async (action, ctx) => (await import("./stanza-create.ts")).stanzaCreate(action, ctx),
  pitr_backup: async (action, ctx) => (await import("./pitr-backup.ts")).pitrBackup(action, ctx),
  pitr_expire: async (action, ctx) => (await import("./pitr-expire.ts")).pitrExpire(action, ctx),
  pitr_check: async (action, ctx) => (await import("./pitr-check.ts")).pitrCheck(action, ctx),
};
