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
  ) {
    super(message);
  }
}
