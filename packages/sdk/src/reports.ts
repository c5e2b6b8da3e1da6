import type { BrokerLogger } from '@devart/queue';
import { createBatcher } from './batcher';
import { type ApiClient, backoffMs, retryAfterMs } from './client';
import { ApiError } from './errors';

/** A finished attempt's outcome, held by the SDK until the platform confirms it. */
export type Report =
  | {
      kind: 'complete';
      taskId: string;
      attempt: number;
      result: unknown;
      cost: number | string | undefined;
    }
  | {
      kind: 'failure';
      taskId: string;
      attempt: number;
      error: string;
      retryable: boolean;
      details?: Record<string, unknown>;
    };

/** How holding a report ended. */
export type ReportEnd =
  /** The platform recorded it (`kind` says what was recorded: a refused result becomes a failure). */
  | { outcome: 'confirmed'; kind: Report['kind'] }
  /** The attempt is no longer the agent's (409/404/403): its lease lapsed, it was cancelled, or it was already recorded. */
  | { outcome: 'lost'; status: number; detail?: string }
  /** The agent's key was refused (401): it was revoked. */
  | { outcome: 'revoked' }
  /** The platform refused even a bare failure report (400): nothing more the SDK can send. */
  | { outcome: 'refused'; status: number; detail?: string }
  /** Given up without an answer: the agent stopped past its report grace, or a heartbeat said the task was lost. */
  | { outcome: 'abandoned'; reason: string };

/** What the platform's answer to one try means for the report. */
export type ReportVerdict =
  | { action: 'confirmed' }
  | { action: 'lost' }
  | { action: 'revoked' }
  | { action: 'refused' }
  | { action: 'retry' };

/**
 * Reads a status answered for one report: 2xx confirmed; 401 the key is refused; 403/404/409/410
 * the attempt is not the agent's (any more); 408, 425, 429 and 5xx are temporary; any other 4xx
 * refuses the data, which a retry would not change.
 * @example
 * classifyReportStatus(503); // { action: 'retry' }
 */
export function classifyReportStatus(status: number): ReportVerdict {
  if (status >= 200 && status < 300) return { action: 'confirmed' };
  if (status === 401) return { action: 'revoked' };
  if (status === 403 || status === 404 || status === 409 || status === 410) return { action: 'lost' };
  if (status === 408 || status === 425 || status === 429 || status >= 500) return { action: 'retry' };
  return { action: 'refused' };
}

/**
 * One try's answer: a status (for the item, or `whole` for the whole batch request), or, without a
 * status, the error of a try that got no answer.
 */
interface Answer {
  status?: number;
  detail?: string;
  retryAfter?: string;
  whole?: boolean;
  error?: unknown;
}

export interface ReporterOptions {
  api: ApiClient;
  /** Completions through `/api/tasks/complete-batch` (natural batching); false: `/api/tasks/{id}/complete`. */
  batch: boolean;
  logger: BrokerLogger;
  /** Longest wait between two tries of a report (ms, default 5 000); half to all of it, jittered. */
  maxBackoffMs?: number;
  /** Longest Retry-After honoured (ms, default 60 000). */
  maxRetryAfterMs?: number;
  /** Called once when the platform refuses the agent's key (401). */
  onRevoked?: () => void;
  random?: () => number;
}

interface Pending {
  report: Report;
  stop: AbortController;
  ended: Promise<ReportEnd>;
}

const LONE_SURROGATE_OR_NUL =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is what it removes.
  /\u0000|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** The smallest failure report the platform should accept: a clean, bounded message and no details. */
function bareFailure(report: Extract<Report, { kind: 'failure' }>): Report {
  const error = report.error.replace(LONE_SURROGATE_OR_NUL, '\uFFFD').slice(0, 8192) || 'failed';
  return { ...report, error, details: undefined };
}

function detailOf(body: unknown): string | undefined {
  const problem = body as { detail?: unknown; title?: unknown } | undefined;
  const text = problem?.detail ?? problem?.title;
  return typeof text === 'string' ? text : undefined;
}

function describe(error: unknown): string {
  if (error instanceof ApiError) return `answered ${error.status}`;
  const err = error as { message?: string; cause?: { code?: string; message?: string } };
  return err?.cause?.code ?? err?.cause?.message ?? err?.message ?? String(error);
}

/** Resolves after `ms`, or at once when `signal` aborts. */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

/**
 * Holds every finished outcome until the platform answers for it. A try that meets a network error,
 * a 5xx, a 429 or a 503 is repeated — after Retry-After when the server sent one, else after a
 * jittered backoff of at most `maxBackoffMs` — for as long as the agent runs. It ends when the
 * platform confirms the report, says the attempt is no longer the agent's (409/404 for the task or
 * for its item of a batch), or refuses the agent's key (401). A completion whose data the platform
 * refuses (400) is reported as a non-retryable failure carrying the server's detail; a failure
 * report refused is sent once more bare (a clean message, no details), then given up.
 *
 * While the platform is unreachable it logs one warning, and one line when reports go through again.
 * @example
 * const reporter = createReporter({ api, batch: true, logger });
 * const end = await reporter.report({ kind: 'complete', taskId, attempt: 1, result: 42, cost: 0 });
 * if (end.outcome === 'lost') logger.warn({ taskId }, 'someone else has the task now');
 */
export function createReporter({
  api,
  batch,
  logger,
  maxBackoffMs = 5000,
  maxRetryAfterMs = 60_000,
  onRevoked,
  random = Math.random,
}: ReporterOptions) {
  const pending = new Map<string, Pending>();
  let outage: { since: number } | undefined;
  let revoked = false;
  let drained: (() => void)[] = [];

  // The reporter does the retrying, so each request is one try (`retries: 1`).
  const completions = createBatcher(
    async (items: Extract<Report, { kind: 'complete' }>[]): Promise<Answer[]> => {
      const res = await api.call<{ items?: { status: number; detail?: string }[] }>(
        'POST',
        '/api/tasks/complete-batch',
        {
          items: items.map((r) => ({
            task_id: r.taskId,
            attempt: r.attempt,
            result: r.result,
            cost: r.cost,
          })),
        },
        { retries: 1 },
      );
      if (res.status !== 200 || !Array.isArray(res.body.items)) {
        const detail = detailOf(res.body);
        return items.map(() => ({ status: res.status, detail, retryAfter: res.retryAfter, whole: true }));
      }
      return res.body.items.map((item) => ({ status: item.status, detail: item.detail }));
    },
  );

  async function send(report: Report, alone: boolean): Promise<Answer> {
    try {
      if (report.kind === 'complete' && batch && !alone) return await completions.submit(report);
      const path = `/api/tasks/${report.taskId}/${report.kind === 'complete' ? 'complete' : 'report-failure'}`;
      const body =
        report.kind === 'complete'
          ? { result: report.result, cost: report.cost, attempt: report.attempt }
          : {
              error: report.error,
              retryable: report.retryable,
              details: report.details,
              attempt: report.attempt,
            };
      const res = await api.call('POST', path, body, { retries: 1 });
      return { status: res.status, detail: detailOf(res.body), retryAfter: res.retryAfter };
    } catch (error) {
      return { error, retryAfter: error instanceof ApiError ? error.retryAfter : undefined };
    }
  }

  function unreachable(answer: Answer) {
    if (outage) return;
    outage = { since: Date.now() };
    const reason = answer.status === undefined ? describe(answer.error) : `answered ${answer.status}`;
    logger.warn(
      { held: pending.size, reason },
      `API unreachable (${reason}); holding ${pending.size} outcome(s) until it confirms them`,
    );
  }

  function reachable() {
    if (!outage) return;
    const seconds = ((Date.now() - outage.since) / 1000).toFixed(1);
    outage = undefined;
    logger.info(
      { held: pending.size, after_s: Number(seconds) },
      `API reachable again after ${seconds} s; reporting ${pending.size} held outcome(s)`,
    );
  }

  function settle(key: string) {
    pending.delete(key);
    if (pending.size > 0) return;
    const waiting = drained;
    drained = [];
    for (const wake of waiting) wake();
  }

  async function hold(first: Report, stop: AbortSignal): Promise<ReportEnd> {
    let report = first;
    let alone = false;
    let retriedBare = false;
    for (let tries = 0; ; tries++) {
      if (revoked) return { outcome: 'revoked' };
      if (stop.aborted)
        return { outcome: 'abandoned', reason: String((stop.reason as Error)?.message ?? stop.reason) };
      const answer = await send(report, alone);
      const verdict: ReportVerdict =
        answer.status === undefined ? { action: 'retry' } : classifyReportStatus(answer.status);
      if (verdict.action === 'retry') {
        unreachable(answer);
        // At least what the server asked for, never faster than the backoff (a Retry-After of 0 must not spin).
        const wait = Math.max(
          retryAfterMs(answer.retryAfter, maxRetryAfterMs, Date.now()) ?? 0,
          backoffMs(tries, { baseMs: 250, capMs: maxBackoffMs, random }),
        );
        await pause(wait, stop);
        continue;
      }
      reachable();
      const status = answer.status as number;
      if (answer.whole && (verdict.action === 'lost' || verdict.action === 'refused')) {
        // The batch request was refused as a whole (e.g. one item's data): ask for this item alone.
        alone = true;
        continue;
      }
      const log = { task_id: report.taskId, attempt: report.attempt, status, detail: answer.detail };
      switch (verdict.action) {
        case 'confirmed':
          return { outcome: 'confirmed', kind: report.kind };
        case 'lost':
          if (tries > 0 && report.kind === 'complete' && /\bDONE\b/.test(answer.detail ?? ''))
            // A try that got no answer may have been applied: the task being DONE is the likely reason.
            logger.info(
              log,
              'the task is DONE already (an earlier try that got no answer went through, most likely)',
            );
          else
            logger.warn(
              log,
              `report refused: the task is no longer this agent's (${answer.detail ?? status})`,
            );
          return { outcome: 'lost', status, detail: answer.detail };
        case 'revoked':
          if (!revoked) {
            revoked = true;
            logger.error(
              { held: pending.size },
              `the API refused this agent's key (revoked?); dropping ${pending.size} unreported outcome(s)`,
            );
            for (const other of pending.values()) other.stop.abort(new Error('the agent was revoked'));
            onRevoked?.();
          }
          return { outcome: 'revoked' };
        case 'refused':
          if (report.kind === 'complete') {
            logger.error(
              log,
              `the platform refused the task's result (${answer.detail ?? status}); reporting a failure instead`,
            );
            report = bareFailure({
              kind: 'failure',
              taskId: report.taskId,
              attempt: report.attempt,
              error: `the platform refused the result: ${answer.detail ?? `status ${status}`}`,
              retryable: false,
            });
            retriedBare = true;
            continue;
          }
          if (!retriedBare) {
            logger.error(
              log,
              `the platform refused the failure report (${answer.detail ?? status}); sending it bare`,
            );
            retriedBare = true;
            report = bareFailure(report);
            continue;
          }
          logger.error(log, 'the platform refused even a bare failure report; giving up on it');
          return { outcome: 'refused', status, detail: answer.detail };
      }
    }
  }

  return {
    /** Reports `report` until it is settled; resolves with how it ended (never rejects). */
    report(report: Report): Promise<ReportEnd> {
      // One outcome per attempt: a second report of the same attempt waits for the first.
      const key = `${report.taskId}:${report.attempt}`;
      const existing = pending.get(key);
      if (existing) return existing.ended;
      const stop = new AbortController();
      const entry: Pending = { report, stop, ended: Promise.resolve({ outcome: 'abandoned', reason: '' }) };
      pending.set(key, entry);
      entry.ended = hold(report, stop.signal)
        .catch((error): ReportEnd => ({ outcome: 'abandoned', reason: describe(error) }))
        .finally(() => settle(key));
      return entry.ended;
    },
    /** Stops reporting one attempt (a heartbeat said it is no longer the agent's). */
    drop(taskId: string, attempt: number, reason: string) {
      pending.get(`${taskId}:${attempt}`)?.stop.abort(new Error(reason));
    },
    /** Whether an outcome of this attempt is held. */
    holds(taskId: string, attempt: number) {
      return pending.has(`${taskId}:${attempt}`);
    },
    /** Outcomes held now. */
    get pending() {
      return pending.size;
    },
    /** Waits until nothing is held, at most `ms`; resolves with how many outcomes are still held. */
    async drain(ms: number): Promise<number> {
      if (pending.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => drained.push(resolve)),
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, ms);
          }),
        ]);
        clearTimeout(timer);
      }
      return pending.size;
    },
    /** Gives up every held outcome (shutdown past the grace). */
    abandonAll(reason: string) {
      for (const entry of pending.values()) entry.stop.abort(new Error(reason));
    },
  };
}

export type Reporter = ReturnType<typeof createReporter>;
