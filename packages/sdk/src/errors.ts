/** Throw it from a task callback for a failure that retrying cannot fix: the task is quarantined at once. */
export class NonRetryableError extends Error {
  override name = 'NonRetryableError';
}

/** The API answered with a problem the SDK could not handle. */
export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    readonly status: number,
    readonly problem: { type?: string; title?: string; detail?: string } | undefined,
    message: string,
    /** The answer's Retry-After header: the server says the condition is temporary. */
    readonly retryAfter?: string,
  ) {
    super(message);
  }
}

/**
 * The server cannot provide sandboxes (it runs no sandbox provider, bubblewrap is missing, the
 * cluster refused): the message carries the server's reason. Non-retryable, since another attempt
 * of the task meets the same server; catch it in a callback that can do without a sandbox.
 * @example
 * try {
 *   box = await task.sandbox();
 * } catch (error) {
 *   if (error instanceof SandboxUnavailableError) return { status: 'failed', error: error.message, retryable: true };
 *   throw error;
 * }
 */
export class SandboxUnavailableError extends NonRetryableError {
  override name = 'SandboxUnavailableError';
  constructor(
    /** The server's explanation, e.g. "bubblewrap (bwrap) is not installed: run `apt-get install bubblewrap`". */
    readonly detail: string,
  ) {
    // The server's detail may already say it (`Sandboxes are unavailable on this server: …`).
    super(
      /^sandboxes are unavailable/i.test(detail)
        ? detail
        : `sandboxes are unavailable on this server: ${detail}`,
    );
  }
}
