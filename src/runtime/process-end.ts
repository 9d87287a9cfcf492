/**
 * Running synchronous clean-up however the process ends on its own: a normal exit, `process.exit`, an uncaught error
 * or an unhandled rejection. Node and Bun emit 'exit' in every one of these cases; Deno ends the process on an
 * uncaught error without emitting 'exit', but dispatches the web `error` and `unhandledrejection` events first. A
 * handler may run twice (Bun emits both), so it must be idempotent.
 */

/** Runs `handler` (synchronous, idempotent) when the process ends. */
export function onProcessEnd(handler: () => void): void {
  process.on("exit", handler);
  globalThis.addEventListener?.("error", handler);
  globalThis.addEventListener?.("unhandledrejection", handler);
}
