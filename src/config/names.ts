/**
 * What a name in the config may be — of a project, repository, source or notifier — checked by the schema and the
 * cross-key validation, and followed by `import` when it derives names from an old tool's files. Names appear in
 * file names, tags and restic arguments, so they stay to a safe alphabet.
 */

/** Letters, digits, '.', '_' or '-'; at most 64, starting with a letter or digit. */
export const namePattern = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
