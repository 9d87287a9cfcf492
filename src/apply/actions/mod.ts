/** The dispatch table of apply: one handler per action type of the plan, each in its own module. */
import { backup } from "./backup.ts";
import { check } from "./check.ts";
import { copy } from "./copy.ts";
import { forget } from "./forget.ts";
import { init } from "./init.ts";
import { pitrBackup } from "./pitr-backup.ts";
import { pitrCheck } from "./pitr-check.ts";
import { pitrExpire } from "./pitr-expire.ts";
import { prune } from "./prune.ts";
import { recover } from "./recover.ts";
import { stanzaCreate } from "./stanza-create.ts";
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
  stanza_create: stanzaCreate,
  pitr_backup: pitrBackup,
  pitr_expire: pitrExpire,
  pitr_check: pitrCheck,
};
