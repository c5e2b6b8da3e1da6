import {
  type Db,
  forgetOldGithubDeliveries,
  githubDeliveryRuns,
  type Queryable,
  recordGithubDelivery,
  setGithubDeliveryRuns,
  workflowsTriggeredBy,
} from '@devart/db';
import { verify } from '@octokit/webhooks-methods';
import type { Logger } from 'pino';
import { ValidationError } from './domain-errors';
import { GITHUB_VARIABLE, type GithubContext, matchingTrigger, readDelivery } from './github-triggers';
import { startRun } from './workflow-runs';

/**
 * How long a delivery id is remembered. GitHub redelivers on request for a few days; a month
 * leaves a wide margin, and the idempotency key of each run it started guards beyond that.
 */
const REMEMBER_DELIVERIES_DAYS = 30;

/**
 * Whether `signature` (X-Hub-Signature-256, `sha256=<hex>`) is GitHub's HMAC of `body` under the
 * webhook secret, compared in constant time (@octokit/webhooks-methods). A missing or malformed
 * header is simply not valid.
 * @example if (!(await signatureValid(secret, text, c.req.header('x-hub-signature-256')))) throw …
 */
export async function signatureValid(
  secret: string,
  body: string,
  signature: string | undefined,
): Promise<boolean> {
  if (!signature || !/^sha256=[0-9a-f]{64}$/i.test(signature) || body.length === 0) return false;
  return verify(secret, body, signature.toLowerCase());
}

/** A run a delivery started, and the trigger that started it (which decides what is written back). */
export interface StartedRun {
  run_id: string;
  workflow_id: string;
  workflow_name: string;
  check_run: boolean;
  comment: boolean;
}

export type DeliveryOutcome =
  | { outcome: 'replayed'; run_ids: string[] }
  | { outcome: 'ignored'; reason: string }
  | {
      outcome: 'started';
      context: GithubContext;
      runs: StartedRun[];
      skipped: { workflow_id: string; reason: string }[];
    };

/** Called in the delivery's transaction for each run it created (not for a run an earlier delivery made). */
export type RunStartedHook = (tx: Queryable, run: StartedRun, context: GithubContext) => Promise<void>;

export interface ReceiveDeliveryInput {
  deliveryId: string;
  event: string;
  payload: unknown;
}

/**
 * What a verified delivery does, in one transaction: recorded by its X-GitHub-Delivery id (a
 * replay — even one arriving at another replica at the same moment — finds the row and starts
 * nothing), then every workflow with a matching trigger is started once, its run carrying the
 * delivery as the variable `github`. `onRunStarted` records more in the same transaction (the
 * GitHub App's check run). Nothing is logged here: the transaction may run again after a cut
 * connection; the caller logs the outcome.
 */
export async function receiveGithubDelivery(
  db: Db,
  input: ReceiveDeliveryInput,
  { onRunStarted }: { onRunStarted?: RunStartedHook } = {},
): Promise<DeliveryOutcome> {
  const reading = readDelivery(input.event, input.deliveryId, input.payload);
  return db.transaction(async (tx): Promise<DeliveryOutcome> => {
    const fresh = await recordGithubDelivery(tx, {
      deliveryId: input.deliveryId,
      event: input.event,
      action: reading.startable ? reading.context.action : reading.action,
      repository: reading.startable ? reading.context.repository : reading.repository,
    });
    if (!fresh) return { outcome: 'replayed', run_ids: await githubDeliveryRuns(tx, input.deliveryId) };
    await forgetOldGithubDeliveries(tx, { olderThanDays: REMEMBER_DELIVERIES_DAYS, limit: 100 });
    if (!reading.startable) return { outcome: 'ignored', reason: reading.reason };

    const { context } = reading;
    const runs: StartedRun[] = [];
    const skipped: { workflow_id: string; reason: string }[] = [];
    for (const workflow of await workflowsTriggeredBy(tx, context.event)) {
      const trigger = matchingTrigger(workflow.definition, context);
      if (!trigger) continue;
      try {
        const run = await startRun(tx, {
          workflowId: workflow.id,
          variables: {},
          context: { [GITHUB_VARIABLE]: context },
          idempotencyKey: `github:${input.deliveryId}`,
          createdBy: null,
        });
        const started: StartedRun = {
          run_id: run.run_id,
          workflow_id: workflow.id,
          workflow_name: workflow.name,
          check_run: trigger.check_run ?? true,
          comment: context.event === 'pull_request' && (trigger.comment ?? false),
        };
        runs.push(started);
        if (run.created) await onRunStarted?.(tx, started, context);
      } catch (error) {
        // Refused before anything was written (definitions stored before triggers were checked).
        if (!(error instanceof ValidationError)) throw error;
        skipped.push({ workflow_id: workflow.id, reason: error.message });
      }
    }
    await setGithubDeliveryRuns(
      tx,
      input.deliveryId,
      runs.map((r) => r.run_id),
    );
    return { outcome: 'started', context, runs, skipped };
  });
}

/** One log line (or a few) saying what a delivery did. */
export function logDeliveryOutcome(
  outcome: DeliveryOutcome,
  logger: Logger,
  fields: Record<string, unknown>,
): void {
  if (outcome.outcome === 'replayed') {
    logger.info({ ...fields, run_ids: outcome.run_ids }, 'GitHub delivery replayed: nothing started again');
  } else if (outcome.outcome === 'ignored') {
    logger.info({ ...fields, reason: outcome.reason }, 'GitHub delivery starts nothing');
  } else {
    for (const s of outcome.skipped)
      logger.warn(
        { ...fields, workflow_id: s.workflow_id, reason: s.reason },
        'GitHub trigger matched but the run was refused',
      );
    if (outcome.runs.length === 0)
      logger.info(
        {
          ...fields,
          action: outcome.context.action,
          repository: outcome.context.repository,
          ref: outcome.context.ref,
        },
        'GitHub delivery matched no workflow trigger',
      );
    else
      logger.info(
        { ...fields, run_ids: outcome.runs.map((r) => r.run_id), repository: outcome.context.repository },
        'GitHub delivery started workflow runs',
      );
  }
}
