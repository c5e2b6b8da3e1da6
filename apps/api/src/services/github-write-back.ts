/**
 * Write-back to GitHub through the delivery outbox: a run a delivery started gets a check run
 * `devart: <workflow>` on its commit when it starts, completed with the conclusion, duration, cost
 * and a table of the steps when it ends, and — when its trigger says `comment: true` — a comment
 * on the pull request. GitHub being down never holds up task work: the rows wait in the outbox.
 *
 * Rows of the 'github' channel say only which run and what (`check_run` or `comment`); the sender
 * reads the run as it is now and brings GitHub up to date, so rows may arrive in any order and a
 * repeated row changes nothing: a start processed after the end creates the check run completed,
 * and the end's row then finds nothing left to do.
 */
import {
  type ClaimedDelivery,
  type Db,
  GITHUB_CHANNEL,
  type GithubDeliveryPayload,
  type GithubRunRow,
  getGithubRun,
  linkGithubRun,
  type RunStepView,
  recordGithubCheckRun,
  recordGithubComment,
} from '@devart/db';
import type { DeliveryChannel, SendResult } from './deliveries';
import { NotFoundError } from './domain-errors';
import {
  type CheckConclusion,
  type CheckRunFields,
  type GithubApp,
  type GithubAppSettings,
  sendResultOf,
} from './github-app';
import type { RunStartedHook } from './github-webhooks';
import type { IntegrationInfo } from './integrations';
import { runView } from './workflow-runs';

/** A run as runView reads it: what the check run and the comment are written from. */
export type RunSnapshot = Awaited<ReturnType<typeof runView>>;

/**
 * The hook the webhook calls, in the delivery's transaction, for each run it creates: links the run
 * to its repository and commit and queues its check run (github_runs, 0015_github.sql).
 */
export const linkRunToGithub: RunStartedHook = async (tx, run, context) => {
  if (!run.check_run && !run.comment) return;
  await linkGithubRun(tx, {
    workflow_run_id: run.run_id,
    repository: context.repository,
    head_sha: context.head_sha,
    pull_request_number: context.pull_request?.number ?? null,
    workflow_name: run.workflow_name,
    check_run: run.check_run,
    comment: run.comment && context.pull_request !== null,
  });
};

// GitHub's limits: a check run's name and title are short, its summary and text at most 65,535 characters.
const MAX_OUTPUT = 60_000;

const conclusions: Record<string, CheckConclusion> = {
  COMPLETED: 'success',
  FAILED: 'failure',
  CANCELLED: 'cancelled',
};

/**
 * A duration as people read it: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
 * @example formatDuration(245_000) // '4 min 05 s'
 */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const s = Math.round(ms / 1000);
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

// Markdown table cells: a pipe ends the cell and a newline the row.
const cell = (text: string) =>
  text
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/\s*\n\s*/g, ' ');
const inlineCode = (text: string) => `\`${text.replace(/`/g, "'").replace(/\s*\n\s*/g, ' ')}\``;
const excerpt = (text: string, max = 300) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** The link to the run in the web console, when PUBLIC_URL is set. */
export function runUrl(publicUrl: string | undefined, runId: string): string | undefined {
  return publicUrl ? `${publicUrl}/workflows/runs/${runId}` : undefined;
}

function failedStep(run: RunSnapshot): RunStepView | undefined {
  return run.steps.find((s) => s.status === 'QUARANTINED') ?? run.steps.find((s) => s.last_error !== null);
}

function headline(run: RunSnapshot): string {
  const cost = run.total_cost !== null ? ` · cost ${run.total_cost}` : '';
  switch (run.status) {
    case 'COMPLETED':
      return `Completed in ${formatDuration(run.duration_ms)}${cost}`;
    case 'FAILED': {
      const step = failedStep(run);
      return `Failed${step ? ` at step “${step.step_key}”` : ''} after ${formatDuration(run.duration_ms)}${cost}`;
    }
    case 'CANCELLED':
      return `Cancelled after ${formatDuration(run.duration_ms)}${cost}`;
    default:
      return `Running: ${run.steps.filter((s) => s.status === 'DONE').length} of ${run.steps.length} steps done`;
  }
}

/** The steps as a Markdown table: status, attempts, duration, cost, and the last error of those that failed. */
export function stepsTable(steps: readonly RunStepView[]): string {
  const rows = steps.map((s) =>
    [
      cell(s.title === s.step_key ? s.step_key : `${s.step_key} (${s.title})`),
      s.status,
      String(s.attempts),
      formatDuration(s.duration_ms),
      s.cost ?? '—',
      s.last_error ? cell(excerpt(s.last_error, 200)) : '',
    ].join(' | '),
  );
  return ['| Step | Status | Attempts | Duration | Cost | Last error |', '|---|---|---|---|---|---|', ...rows]
    .map((line) => (line.startsWith('|') ? line : `| ${line} |`))
    .join('\n');
}

function summaryOf(run: RunSnapshot, publicUrl: string | undefined): string {
  const lines = [`**${headline(run)}**`, ''];
  const step = run.status === 'FAILED' ? failedStep(run) : undefined;
  if (step) {
    lines.push(
      `Step **${cell(step.step_key)}** was quarantined after ${step.attempts} attempt${step.attempts === 1 ? '' : 's'}` +
        (step.last_error ? `: ${inlineCode(excerpt(step.last_error))}` : '.'),
      '',
    );
  }
  lines.push(
    `- Duration: ${formatDuration(run.duration_ms)}`,
    `- Cost: ${run.total_cost ?? '—'}`,
    `- Steps: ${run.steps.filter((s) => s.status === 'DONE').length} of ${run.steps.length} done`,
    `- Run: \`${run.id}\``,
  );
  const url = runUrl(publicUrl, run.id);
  if (url) lines.push('', `[Open the run in devart](${url})`);
  return lines.join('\n').slice(0, MAX_OUTPUT);
}

/**
 * The check run for a run as it is now: in progress while it runs; completed with success,
 * failure or cancelled, the duration, the cost and a table of the steps once it has ended.
 */
export function checkRunFields(link: GithubRunRow, run: RunSnapshot, publicUrl?: string): CheckRunFields {
  const ended = run.status !== 'RUNNING' && run.end_time !== null;
  const details_url = runUrl(publicUrl, run.id);
  return {
    name: `devart: ${link.workflow_name}`.slice(0, 200),
    head_sha: link.head_sha,
    external_id: run.id,
    ...(details_url ? { details_url } : {}),
    started_at: run.start_time.toISOString(),
    ...(ended
      ? {
          status: 'completed' as const,
          conclusion: conclusions[run.status] ?? 'failure',
          completed_at: run.end_time!.toISOString(),
        }
      : { status: 'in_progress' as const }),
    output: {
      title: headline(run).slice(0, 200),
      summary: summaryOf(run, publicUrl),
      text: stepsTable(run.steps).slice(0, MAX_OUTPUT),
    },
  };
}

/** The marker that finds a run's comment again (an HTML comment, invisible on GitHub). */
export const commentMarker = (runId: string) => `<!-- devart-run:${runId} -->`;

/** The pull request comment for an ended run: the headline, the failed step, the steps table, the link. */
export function commentBody(link: GithubRunRow, run: RunSnapshot, publicUrl?: string): string {
  const icon = run.status === 'COMPLETED' ? '✅' : run.status === 'CANCELLED' ? '⏹️' : '❌';
  const lines = [
    `${icon} **devart: ${cell(link.workflow_name)}** — ${headline(run)}`,
    '',
    summaryOf(run, publicUrl).split('\n').slice(2).join('\n'),
    '',
    '<details><summary>Steps</summary>',
    '',
    stepsTable(run.steps),
    '',
    '</details>',
    '',
    commentMarker(run.id),
  ];
  return lines.join('\n').slice(0, MAX_OUTPUT);
}

export interface GithubChannelOptions {
  db: Db;
  app: GithubApp;
  /** PUBLIC_URL: check runs and comments link to the run in the console. */
  publicUrl?: string;
  /** The least gap between two calls about one repository (default 1 s: GitHub asks for calls that write to be spaced). */
  minIntervalMs?: number;
}

/**
 * The 'github' channel of the delivery loop. Not driven by events: linkRunToGithub queues the
 * check run's creation, and a run's end queues its completion and comment (0015_github.sql).
 * Target = the repository, so one repository's calls go out one at a time and in order.
 */
export function githubChannel({
  db,
  app,
  publicUrl,
  minIntervalMs = 1000,
}: GithubChannelOptions): DeliveryChannel {
  const syncCheckRun = async (
    link: GithubRunRow,
    run: RunSnapshot,
    delivery: ClaimedDelivery,
    signal: AbortSignal,
  ) => {
    if (link.check_run_completed_at)
      return { outcome: 'skipped', reason: 'the check run is already completed' } as const;
    const fields = checkRunFields(link, run, publicUrl);
    const completed = fields.status === 'completed';
    let checkRunId = link.check_run_id ?? undefined;
    // A retry may follow a create whose answer was lost: look for it before creating another.
    if (checkRunId === undefined && delivery.attempts > 1)
      checkRunId = await app.findCheckRun(link.repository, fields, signal);
    if (checkRunId === undefined) {
      checkRunId = await app.createCheckRun(link.repository, fields, signal);
    } else if (completed || link.check_run_id === null) {
      await app.updateCheckRun(link.repository, checkRunId, fields, signal);
    } else {
      return { outcome: 'skipped', reason: 'the check run exists and the run has not ended' } as const;
    }
    await recordGithubCheckRun(db, link.workflow_run_id, { checkRunId, completed });
    return { outcome: 'sent', result: { check_run_id: checkRunId, status: fields.status } } as const;
  };

  const syncComment = async (
    link: GithubRunRow,
    run: RunSnapshot,
    delivery: ClaimedDelivery,
    signal: AbortSignal,
  ) => {
    if (link.comment_id !== null)
      return { outcome: 'skipped', reason: 'the comment is already posted' } as const;
    if (link.pull_request_number === null)
      return { outcome: 'skipped', reason: 'the run has no pull request' } as const;
    if (run.status === 'RUNNING') return { outcome: 'skipped', reason: 'the run has not ended' } as const;
    const marker = commentMarker(run.id);
    let commentId =
      delivery.attempts > 1
        ? await app.findComment(link.repository, link.pull_request_number, marker, run.start_time, signal)
        : undefined;
    commentId ??= await app.createComment(
      link.repository,
      link.pull_request_number,
      commentBody(link, run, publicUrl),
      signal,
    );
    await recordGithubComment(db, link.workflow_run_id, commentId);
    return { outcome: 'sent', result: { comment_id: commentId } } as const;
  };

  return {
    name: GITHUB_CHANNEL,
    eventTypes: [],
    target: '',
    minIntervalMs: () => minIntervalMs,
    async send(delivery, signal): Promise<SendResult> {
      const payload = delivery.payload as Partial<GithubDeliveryPayload>;
      const runId = payload.workflow_run_id;
      if (typeof runId !== 'string')
        return { outcome: 'failed', error: 'the delivery names no workflow run' };
      const link = await getGithubRun(db, runId);
      if (!link) return { outcome: 'skipped', reason: 'the run is not linked to GitHub (deleted?)' };
      let run: RunSnapshot;
      try {
        run = await runView(db, runId);
      } catch (error) {
        if (error instanceof NotFoundError) return { outcome: 'skipped', reason: 'the run no longer exists' };
        throw error;
      }
      try {
        if (payload.kind === 'check_run') return await syncCheckRun(link, run, delivery, signal);
        if (payload.kind === 'comment') return await syncComment(link, run, delivery, signal);
      } catch (error) {
        // Only GitHub's answers are mapped; a database fault is the loop's to retry.
        if (isGithubFailure(error)) return sendResultOf(error);
        throw error;
      }
      return { outcome: 'failed', error: `unknown kind of github delivery: ${String(payload.kind)}` };
    },
  };
}

/** A failure of a GitHub call (Octokit's RequestError, or an aborted request), not of the database. */
function isGithubFailure(error: unknown): boolean {
  const e = error as { name?: string; status?: unknown } | null;
  return typeof e?.status === 'number' || e?.name === 'AbortError' || e?.name === 'TimeoutError';
}

/** What GET /api/integrations shows of GitHub: which halves are set up, never the secret or the key. */
export function githubIntegration(github: {
  webhookSecret?: string;
  app?: GithubAppSettings;
}): IntegrationInfo {
  return {
    name: 'github',
    configured: github.webhookSecret !== undefined || github.app !== undefined,
    channels: [GITHUB_CHANNEL],
    settings: {
      webhook: github.webhookSecret ? 'enabled' : 'disabled',
      webhook_secret: github.webhookSecret ? 'set' : 'unset',
      app_id: github.app?.appId ?? null,
      installation_id: github.app?.installationId ?? null,
      private_key: github.app ? 'set' : 'unset',
      api_url: github.app?.apiUrl ?? null,
      write_back: github.app ? 'check runs and opted-in pull request comments' : 'off (no GitHub App)',
    },
  };
}
