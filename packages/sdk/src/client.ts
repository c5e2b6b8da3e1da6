import { ApiError } from './errors';

export interface ApiClientOptions {
  apiUrl: string;
  apiKey: string;
  fetch?: typeof fetch;
  /** Attempts for a call that failed on the network or with a 5xx (default 5). */
  retries?: number;
}

export interface ApiResult<T> {
  status: number;
  body: T;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The agent-facing HTTP API. Network errors and 5xx answers are retried with backoff (the
 * calls are idempotent or fenced, so a retry is safe); 4xx answers are returned to the caller.
 */
export function createApiClient({ apiUrl, apiKey, fetch: doFetch = fetch, retries = 5 }: ApiClientOptions) {
  const base = apiUrl.replace(/\/$/, '');
  async function call<T>(method: string, path: string, body?: unknown): Promise<ApiResult<T>> {
    let lastError: unknown;
    for (let attempt = 0; attempt < retries; attempt++) {
      if (attempt > 0) await sleep(Math.min(2000, 100 * 2 ** attempt) * (0.5 + Math.random() / 2));
      let res: Response;
      try {
        res = await doFetch(`${base}${path}`, {
          method,
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: body === undefined ? undefined : JSON.stringify(body),
        });
      } catch (error) {
        lastError = error;
        continue;
      }
      const text = await res.text();
      const parsed = text ? (JSON.parse(text) as T) : (undefined as T);
      if (res.status >= 500) {
        lastError = new ApiError(res.status, parsed as never, `${method} ${path} answered ${res.status}`);
        continue;
      }
      return { status: res.status, body: parsed };
    }
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }
  return { call };
}

export type ApiClient = ReturnType<typeof createApiClient>;

/** Raises an ApiError for an unexpected 4xx, with the problem's detail. */
export function expectOk<T>(result: ApiResult<T>, what: string): T {
  if (result.status >= 200 && result.status < 300) return result.body;
  const problem = result.body as { detail?: string; title?: string } | undefined;
  throw new ApiError(
    result.status,
    problem,
    `${what} answered ${result.status}: ${problem?.detail ?? problem?.title ?? ''}`,
  );
}
