/**
 * The GitHub App devart writes back through: Octokit with the App's installation token (minted
 * from a JWT signed with GITHUB_PRIVATE_KEY and cached until shortly before it expires), and the
 * few calls the write-back makes. Each call takes the delivery loop's abort signal; none retries by
 * itself — the delivery outbox does, and {@link sendResultOf} says how.
 */
import { createAppAuth } from '@octokit/auth-app';
import { Octokit } from '@octokit/rest';
import type { SendResult } from './deliveries';

/** GITHUB_APP_ID, GITHUB_PRIVATE_KEY, GITHUB_INSTALLATION_ID, GITHUB_API_URL. */
export interface GithubAppSettings {
  appId: string;
  /** PEM (PKCS#1 as GitHub hands it out, or PKCS#8). */
  privateKey: string;
  installationId: number;
  /** The REST API's base URL without a trailing slash: https://api.github.com, https://<host>/api/v3. */
  apiUrl: string;
}

export type CheckConclusion = 'success' | 'failure' | 'cancelled';

/** What a check run shows: its state and, once completed, the conclusion and the run's summary. */
export interface CheckRunFields {
  name: string;
  head_sha: string;
  /** The devart run id, so a check run can be found again after a crash. */
  external_id: string;
  details_url?: string;
  status: 'in_progress' | 'completed';
  started_at: string;
  completed_at?: string;
  conclusion?: CheckConclusion;
  output: { title: string; summary: string; text?: string };
}

export interface GithubApp {
  createCheckRun(repository: string, fields: CheckRunFields, signal: AbortSignal): Promise<number>;
  updateCheckRun(
    repository: string,
    checkRunId: number,
    fields: CheckRunFields,
    signal: AbortSignal,
  ): Promise<void>;
  /** The check run of `externalId` on a commit, if one was created (a create whose answer was lost). */
  findCheckRun(repository: string, fields: CheckRunFields, signal: AbortSignal): Promise<number | undefined>;
  createComment(repository: string, issueNumber: number, body: string, signal: AbortSignal): Promise<number>;
  /** A comment on the pull request holding `marker`, posted since `since` (a post whose answer was lost). */
  findComment(
    repository: string,
    issueNumber: number,
    marker: string,
    since: Date,
    signal: AbortSignal,
  ): Promise<number | undefined>;
}

function split(repository: string): { owner: string; repo: string } {
  const [owner, repo] = repository.split('/') as [string, string];
  return { owner, repo };
}

/**
 * The App's client for one process. Installation tokens are cached by @octokit/auth-app and
 * minted again when they near expiry, so most calls cost one request.
 * @example const app = createGithubApp({ appId: '123', privateKey, installationId: 45, apiUrl: 'https://api.github.com' });
 */
export function createGithubApp(settings: GithubAppSettings, { userAgent = 'devart' } = {}): GithubApp {
  const octokit = new Octokit({
    authStrategy: createAppAuth,
    auth: { appId: settings.appId, privateKey: settings.privateKey, installationId: settings.installationId },
    baseUrl: settings.apiUrl,
    userAgent,
    // Octokit logs 4xx answers as warnings by default; the delivery loop reports outcomes itself.
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} },
  });
  return {
    async createCheckRun(repository, fields, signal) {
      const { data } = await octokit.rest.checks.create({
        ...split(repository),
        ...fields,
        request: { signal },
      });
      return data.id;
    },
    async updateCheckRun(repository, checkRunId, fields, signal) {
      const { name: _name, head_sha: _sha, ...changes } = fields;
      await octokit.rest.checks.update({
        ...split(repository),
        check_run_id: checkRunId,
        ...changes,
        request: { signal },
      });
    },
    async findCheckRun(repository, fields, signal) {
      const { data } = await octokit.rest.checks.listForRef({
        ...split(repository),
        ref: fields.head_sha,
        check_name: fields.name,
        filter: 'all',
        per_page: 100,
        request: { signal },
      });
      return data.check_runs.find((run) => run.external_id === fields.external_id)?.id;
    },
    async createComment(repository, issueNumber, body, signal) {
      const { data } = await octokit.rest.issues.createComment({
        ...split(repository),
        issue_number: issueNumber,
        body,
        request: { signal },
      });
      return data.id;
    },
    async findComment(repository, issueNumber, marker, since, signal) {
      const { data } = await octokit.rest.issues.listComments({
        ...split(repository),
        issue_number: issueNumber,
        since: since.toISOString(),
        per_page: 100,
        request: { signal },
      });
      return data.find((comment) => comment.body?.includes(marker))?.id;
    },
  };
}

interface OctokitFailure {
  status?: number;
  message?: string;
  name?: string;
  response?: { headers?: Record<string, string | number | undefined>; data?: { message?: string } };
}

/**
 * What a failed GitHub call means for its delivery: 429 and a rate-limited 403 → retry after
 * Retry-After or the rate limit's reset (for the whole repository); 5xx, a network fault, a
 * timeout, 401 and other 403s (a key or permission an operator can fix) → retry with backoff;
 * 404 (the App is not installed on the repository, or cannot see it) and 422 (GitHub refuses the
 * request itself) → failed. Never the key or a token in the message.
 */
export function sendResultOf(error: unknown, now = Date.now()): SendResult {
  const e = (error ?? {}) as OctokitFailure;
  const status = typeof e.status === 'number' ? e.status : undefined;
  // Octokit reports a request that got no answer (refused, reset, aborted) as status 500 without a response.
  if (status === undefined || e.response === undefined) {
    const cause = (e as { cause?: { code?: string; name?: string } }).cause;
    const timedOut = [e.name, cause?.name].some((n) => n === 'TimeoutError' || n === 'AbortError');
    return {
      outcome: 'retry',
      error: `GitHub unreachable: ${timedOut ? 'timed out' : (cause?.code ?? e.message)}`,
    };
  }
  const headers = e.response?.headers ?? {};
  const detail = `GitHub: ${status} ${e.response?.data?.message ?? e.message ?? ''}`.trim();
  const retryAfter = Number(headers['retry-after']);
  const remaining = headers['x-ratelimit-remaining'];
  const reset = Number(headers['x-ratelimit-reset']);
  if (
    status === 429 ||
    (status === 403 && (headers['retry-after'] !== undefined || String(remaining) === '0'))
  ) {
    const retryAfterMs =
      Number.isFinite(retryAfter) && retryAfter > 0
        ? retryAfter * 1000
        : Number.isFinite(reset) && reset * 1000 > now
          ? reset * 1000 - now
          : 60_000;
    return { outcome: 'retry', error: detail, retryAfterMs };
  }
  if (status === 401)
    return {
      outcome: 'retry',
      error: `${detail} (check GITHUB_APP_ID, GITHUB_PRIVATE_KEY, GITHUB_INSTALLATION_ID)`,
    };
  if (status === 404 || status === 422)
    return {
      outcome: 'failed',
      error:
        status === 404
          ? `${detail} (is the GitHub App installed on the repository, with checks and pull requests write?)`
          : detail,
    };
  return { outcome: 'retry', error: detail };
}
