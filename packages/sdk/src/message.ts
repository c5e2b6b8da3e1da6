import { TaskMessage } from '@devart/contracts';

/** What the SDK makes of a delivery: a task it works, or why it dead-letters the message instead. */
export type TaskMessageVerdict = { valid: true; message: TaskMessage } | { valid: false; reason: string };

/**
 * Checks a delivery's JSON body against the `devart.task.v1` contract, as the agent does before it
 * starts a task (an invalid message is dead-lettered, never retried). Unknown fields are kept.
 * The Python SDK checks the same JSON Schema; shared samples hold both to the same verdicts.
 * @example
 * checkTaskMessage({ type: 'devart.task.v2' }); // { valid: false, reason: 'type: Invalid input: expected "devart.task.v1"' }
 */
export function checkTaskMessage(body: unknown): TaskMessageVerdict {
  const parsed = TaskMessage.safeParse(body);
  if (parsed.success) return { valid: true, message: parsed.data };
  const issue = parsed.error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return { valid: false, reason: `${where}${issue?.message ?? 'not a devart.task.v1 message'}` };
}

/**
 * The same verdict for a message's raw body (the bytes on the wire): JSON first, then the
 * contract, as a delivery goes through them. A body that is not JSON is dead-lettered too.
 * @example
 * decodeTaskMessage('{"type":'); // { valid: false, reason: 'not JSON: …' }
 */
export function decodeTaskMessage(raw: string | Uint8Array): TaskMessageVerdict {
  let body: unknown;
  try {
    // As the RabbitMQ consumer reads a body (Buffer#toString): a byte-order mark is kept, and refused by JSON.parse.
    body = JSON.parse(
      typeof raw === 'string' ? raw : new TextDecoder('utf-8', { ignoreBOM: true }).decode(raw),
    );
  } catch (error) {
    return { valid: false, reason: `not JSON: ${(error as Error).message}` };
  }
  return checkTaskMessage(body);
}
