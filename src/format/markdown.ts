/**
 * Markdown for pull-request comments (the plan's and the config diff's): GitHub holds at most 65,536 characters in a
 * comment, so renderings stay under a limit with a margin.
 */

/** The largest markdown rendering, a margin under GitHub's 65,536 characters. */
export const markdownLimit = 60_000;
