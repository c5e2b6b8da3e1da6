import type { Context } from 'hono';
import type { z } from 'zod';
import { bodyIssuesByItem } from '../middleware/json-body';
import { formatJsonPath } from '../middleware/json-text';
import { describeFieldErrors, type FieldError, fieldErrors, statusOf } from '../problem';
import type { BatchItemResult } from '../services/agent-work';

/**
 * One item's answer in a batch, as the single-task call would have given it: the status comes
 * from the same table (problem.ts) that answers single calls.
 */
export interface ItemAnswer {
  task_id: string;
  status: number;
  attempt?: number;
  lease_expires_at?: string | null;
  detail?: string;
}

/** One item's answer: 200 with its lease, or the status and detail its refusal has on a single call. */
export function answerItem(result: BatchItemResult): ItemAnswer {
  if ('refused' in result) {
    return { task_id: result.task_id, status: statusOf(result.refused.code), detail: result.refused.message };
  }
  return {
    task_id: result.task_id,
    status: 200,
    attempt: result.task.attempt,
    lease_expires_at: result.task.lease_expires_at?.toISOString() ?? null,
  };
}

/**
 * Validates each item of a batch on its own, so one item's bad data is answered 400 in its place
 * while `apply` still runs for the others (in one go); the answers keep the request's order.
 * Problems readJsonBody found inside an item (a NUL, nesting too deep) refuse it the same way.
 * @example const items = await eachItemOnItsOwn(c, body.items, StartTaskBatchItem, (ok) => startAgentTasks(db, …, ok));
 */
export async function eachItemOnItsOwn<T>(
  c: Context,
  items: readonly unknown[],
  schema: z.ZodType<T>,
  apply: (accepted: T[]) => Promise<BatchItemResult[]>,
): Promise<ItemAnswer[]> {
  const fromBody = bodyIssuesByItem(c);
  const answers: (ItemAnswer | undefined)[] = [];
  const accepted: { index: number; item: T }[] = [];
  items.forEach((raw, index) => {
    const parsed = schema.safeParse(raw);
    // Named from the body's root, as a whole-body 400 would name them: body.items[2].attempt.
    const item = `items[${index}]`;
    const errors: FieldError[] = [
      ...(fromBody.get(index) ?? []).map((issue) => ({
        location: 'body',
        field: formatJsonPath(issue.path),
        message: issue.message,
      })),
      ...(parsed.success
        ? []
        : fieldErrors('body', parsed.error.issues).map((e) => ({
            ...e,
            field: e.field === 'body' ? item : `${item}.${e.field}`,
          }))),
    ];
    if (parsed.success && errors.length === 0) {
      accepted.push({ index, item: parsed.data });
      return;
    }
    answers[index] = {
      task_id: givenTaskId(raw),
      status: statusOf('validation'),
      detail: describeFieldErrors(errors),
    };
  });
  const applied = await apply(accepted.map((a) => a.item));
  accepted.forEach(({ index }, i) => {
    answers[index] = answerItem(applied[i]!);
  });
  return answers as ItemAnswer[];
}

const givenTaskId = (raw: unknown) => {
  const id = raw && typeof raw === 'object' ? (raw as { task_id?: unknown }).task_id : undefined;
  return typeof id === 'string' ? id : '';
};
