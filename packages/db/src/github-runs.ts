import type { Queryable } from './client';
import { queueDeliveries } from './deliveries';

/** The delivery channel GitHub write-back goes through (check runs, pull request comments). */
export const GITHUB_CHANNEL = 'github';

/** What the 'github' channel's deliveries carry: which run, and what to bring up to date. */
export interface GithubDeliveryPayload {
  kind: 'check_run' | 'comment';
  workflow_run_id: string;
}

/** A run a GitHub delivery started, and what GitHub has been told about it. */
export interface GithubRunRow {
  workflow_run_id: string;
  /** owner/name */
  repository: string;
  head_sha: string;
  pull_request_number: number | null;
  workflow_name: string;
  check_run: boolean;
  comment: boolean;
  /** GitHub's id of the check run, once created. */
  check_run_id: number | null;
  check_run_completed_at: Date | null;
  comment_id: number | null;
}

const columns =
  'workflow_run_id, repository, head_sha, pull_request_number, workflow_name, check_run, comment, ' +
  'check_run_id, check_run_completed_at, comment_id';

/**
 * Links a run to GitHub in the transaction that starts it, and queues its check run's creation.
 * Its end (whatever ends it) queues the completion and the comment: devart_github_run_ended in
 * 0015_github.sql. Deliveries of one repository go out one at a time, oldest first.
 */
export async function linkGithubRun(
  tx: Queryable,
  input: Omit<GithubRunRow, 'check_run_id' | 'check_run_completed_at' | 'comment_id'>,
): Promise<void> {
  await tx.query(
    `INSERT INTO github_runs (workflow_run_id, repository, head_sha, pull_request_number, workflow_name, check_run, comment)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (workflow_run_id) DO NOTHING`,
    [
      input.workflow_run_id,
      input.repository,
      input.head_sha,
      input.pull_request_number,
      input.workflow_name,
      input.check_run,
      input.comment,
    ],
  );
  if (!input.check_run) return;
  const payload: GithubDeliveryPayload = { kind: 'check_run', workflow_run_id: input.workflow_run_id };
  await queueDeliveries(tx, [
    {
      channel: GITHUB_CHANNEL,
      dedupeKey: `check_run:${input.workflow_run_id}:start`,
      target: input.repository.toLowerCase(),
      payload: { ...payload },
    },
  ]);
}

export async function getGithubRun(db: Queryable, runId: string): Promise<GithubRunRow | undefined> {
  const { rows } = await db.query<GithubRunRow>(
    `SELECT ${columns} FROM github_runs WHERE workflow_run_id = $1`,
    [runId],
  );
  return rows[0];
}

/** Records the check run GitHub created or updated for a run, and whether it is now completed. */
export async function recordGithubCheckRun(
  db: Queryable,
  runId: string,
  { checkRunId, completed }: { checkRunId: number; completed: boolean },
): Promise<void> {
  await db.query(
    `UPDATE github_runs SET check_run_id = $2,
            check_run_completed_at = CASE WHEN $3 THEN coalesce(check_run_completed_at, now()) END
     WHERE workflow_run_id = $1`,
    [runId, checkRunId, completed],
  );
}

/** Records the pull request comment posted for a run. */
export async function recordGithubComment(db: Queryable, runId: string, commentId: number): Promise<void> {
  await db.query('UPDATE github_runs SET comment_id = $2 WHERE workflow_run_id = $1', [runId, commentId]);
}
