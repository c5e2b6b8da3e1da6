import { ApiError, createEventsClient, type PlatformEvent, type PlatformEventType } from '@devart/sdk';
import { UsageError } from './args';
import type { CommandContext } from './context';

/** The flags every API command takes, in parseFlags' shape. */
export const apiFlags = {
  api: { type: 'string' },
  token: { type: 'string' },
} as const;

/** The help text of `apiFlags`, for each command's usage. */
export const apiFlagsHelp = `  --api <url>     the devart API (default: DEVART_API_URL, else http://127.0.0.1:\${PORT:-8787})
  --token <jwt>   a user token (default: DEVART_TOKEN); mint one with: devart token --role viewer`;

/** The API answered with a problem (4xx/5xx): its title and detail, as problem+json gave them. */
export class ApiProblemError extends Error {
  override name = 'ApiProblemError';
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string | undefined,
  ) {
    // Many details repeat the title ("Authentication required: the token…"): say it once.
    super(`${status} ${detail?.startsWith(title) ? detail : `${title}${detail ? `: ${detail}` : ''}`}`);
  }
}

/** The command cannot run as configured (no token, API unreachable): exit 1 with this message. */
export class ApiSetupError extends Error {
  override name = 'ApiSetupError';
}

export interface HttpApi {
  readonly url: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body: unknown): Promise<T>;
  /** GET /api/events as an async iterator that reconnects by itself (the SDK's events client). */
  events(options: {
    types?: readonly PlatformEventType[];
    workflow_run_id?: string;
    after?: string;
    signal: AbortSignal;
  }): AsyncGenerator<PlatformEvent, void, undefined>;
}

/**
 * The API a command talks to, from `--api`/`--token` or DEVART_API_URL/PORT and DEVART_TOKEN.
 * Every answer that is not 2xx becomes an ApiProblemError naming the problem's title and detail.
 * @example
 * const api = connectApi(values, ctx.env);
 * const page = await api.get<TaskPage>('/api/tasks?status=TODO');
 */
export function connectApi(
  flags: { api?: string; token?: string },
  env: CommandContext['env'],
  fetchImpl: typeof fetch = fetch,
): HttpApi {
  const url = (flags.api ?? (env.DEVART_API_URL || `http://127.0.0.1:${env.PORT || '8787'}`)).replace(
    /\/+$/,
    '',
  );
  if (!/^https?:\/\/[^/]/.test(url))
    throw new UsageError(`--api must be an http(s) URL such as http://127.0.0.1:8787 (got "${url}")`);
  const token = flags.token ?? (env.DEVART_TOKEN || undefined);
  if (!token) {
    throw new ApiSetupError(
      'no token: set DEVART_TOKEN or pass --token, e.g. export DEVART_TOKEN=$(npx devart token --role viewer) ' +
        '(supervisor to trigger runs; run it where it can read the server’s JWT_SECRET or data directory)',
    );
  }
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    let res: Response;
    try {
      res = await fetchImpl(`${url}${path}`, {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (error) {
      throw unreachable(url, error);
    }
    const text = await res.text();
    if (!res.ok) throw problemFrom(res.status, text);
    return (text ? JSON.parse(text) : undefined) as T;
  };
  const events = createEventsClient({ apiUrl: url, token, fetch: fetchImpl });
  return {
    url,
    get: (path) => call('GET', path),
    post: (path, body) => call('POST', path, body),
    async *events(options) {
      try {
        yield* events.events(options);
      } catch (error) {
        if (error instanceof ApiError)
          throw new ApiProblemError(
            error.status,
            error.problem?.title ?? 'Error',
            error.problem?.detail ?? error.message,
          );
        throw error;
      }
    },
  };
}

function problemFrom(status: number, text: string): ApiProblemError {
  try {
    const problem = JSON.parse(text) as { title?: string; detail?: string };
    return new ApiProblemError(status, problem.title ?? 'Error', problem.detail);
  } catch {
    return new ApiProblemError(status, 'Error', text.slice(0, 300) || undefined);
  }
}

function unreachable(url: string, error: unknown): ApiSetupError {
  const cause = (error as { cause?: { code?: string; message?: string } }).cause;
  return new ApiSetupError(
    `cannot reach the API at ${url} (${cause?.code ?? cause?.message ?? (error as Error).message}): ` +
      'is "devart start" running there? Point --api (or DEVART_API_URL) at it',
  );
}

/**
 * Runs an API command, turning what the API or the setup refused into one clear line on stderr
 * and exit 1; usage mistakes go on to runCli (exit 2).
 */
export async function runApiCommand(name: string, ctx: CommandContext, body: () => Promise<number>) {
  try {
    return await body();
  } catch (error) {
    if (error instanceof ApiProblemError || error instanceof ApiSetupError) {
      ctx.err(`devart ${name}: ${error.message}`);
      return 1;
    }
    throw error;
  }
}

/** Whole UUIDs, as the API's ids are. */
export const isUuid = (text: string) =>
  /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(text);

export interface WorkflowSummary {
  id: string;
  name: string;
  definition: { variables?: Record<string, { type: string }> } | unknown;
}

/** A workflow by id, or by name (the newest of that name); an unknown one is a 404-like ApiProblemError. */
export async function findWorkflow(api: HttpApi, nameOrId: string): Promise<WorkflowSummary> {
  if (isUuid(nameOrId)) return api.get<WorkflowSummary>(`/api/workflows/${nameOrId}`);
  const known: string[] = [];
  let cursor: string | null = null;
  do {
    const page: { items: WorkflowSummary[]; next_cursor: string | null } = await api.get(
      `/api/workflows?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
    );
    const found = page.items.find((w) => w.name === nameOrId);
    if (found) return found;
    known.push(...page.items.map((w) => w.name));
    cursor = page.next_cursor;
  } while (cursor);
  throw new ApiProblemError(
    404,
    'Not Found',
    `no workflow is named "${nameOrId}"${known.length > 0 ? ` (there are: ${known.slice(0, 10).join(', ')})` : ' (there are none)'}`,
  );
}

/** Ctrl-C / SIGTERM abort the returned signal, so a --watch loop ends and the command exits 0. */
export function stopOnSignal(ctx: CommandContext): AbortSignal {
  const stop = new AbortController();
  ctx.onSignal('SIGINT', () => stop.abort());
  ctx.onSignal('SIGTERM', () => stop.abort());
  return stop.signal;
}

/** `1.2s`, `850ms`, `3m05s`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) return '';
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const s = Math.round(ms / 1000);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** Left-aligned columns, two spaces apart; the last column is not padded. */
export function table(header: string[], rows: string[][]): string[] {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)];
}
