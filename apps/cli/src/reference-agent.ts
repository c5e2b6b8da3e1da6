import { type BuiltInCapability, builtInCapabilities } from '@devart/core';
import { NonRetryableError, type TaskCallback, type TaskContext, type TaskOutcome } from '@devart/sdk';

export { type BuiltInCapability, builtInCapabilities };

const OUTPUT_CAP_BYTES = 64 * 1024;

/** `echo`: the payload comes back as the result. Tasks without a capability are echoed too. */
export async function echo(task: TaskContext): Promise<TaskOutcome> {
  return { result: task.payload, cost: 0 };
}

interface ShellPayload {
  command: string[];
  timeout_ms?: number;
}

function parseShellPayload(payload: Record<string, unknown>): ShellPayload {
  const { command, timeout_ms } = payload;
  if (!Array.isArray(command) || command.length === 0 || !command.every((a) => typeof a === 'string')) {
    throw new NonRetryableError(
      'shell tasks need payload.command: a non-empty array of strings (argv), e.g. ["ls", "-l"]',
    );
  }
  if (
    timeout_ms !== undefined &&
    (typeof timeout_ms !== 'number' || timeout_ms <= 0 || timeout_ms > 3_600_000)
  ) {
    throw new NonRetryableError('payload.timeout_ms must be a number of milliseconds up to 3600000');
  }
  return { command: command as string[], timeout_ms: timeout_ms as number | undefined };
}

/** Cuts `text` to at most OUTPUT_CAP_BYTES of UTF-8; says whether it cut. */
function capOutput(text: string): { text: string; cut: boolean } {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= OUTPUT_CAP_BYTES) return { text, cut: false };
  // A cut through a multi-byte character decodes to U+FFFD, which is dropped.
  return {
    text: bytes
      .subarray(0, OUTPUT_CAP_BYTES)
      .toString('utf8')
      .replace(/\uFFFD$/, ''),
    cut: true,
  };
}

/**
 * `shell`: runs payload.command (argv, no shell unless it runs one) in a sandbox the API
 * provisions for the task (bubblewrap on the API's host, or a Kubernetes Pod): no network, only
 * its own /workspace writable, a wall-clock timeout (payload.timeout_ms, default 60 s) and output
 * capped at 64 KiB per stream. There is no fallback to the agent's host: without a sandbox the
 * task fails with the server's reason. The SDK terminates the sandbox when the handler returns.
 */
export async function shell(task: TaskContext): Promise<TaskOutcome> {
  const { command, timeout_ms = 60_000 } = parseShellPayload(task.payload);
  // The sandbox outlives the command by a minute at most, should the agent die before terminating it.
  const box = await task.sandbox({ ttlSeconds: Math.ceil(timeout_ms / 1000) + 60 });
  const run = await box.exec(command, { timeoutMs: Math.ceil(timeout_ms) });
  const stdout = capOutput(run.stdout);
  const stderr = capOutput(run.stderr);
  const result = {
    exit_code: run.exitCode,
    stdout: stdout.text,
    stderr: stderr.text,
    truncated: run.truncated || stdout.cut || stderr.cut,
    duration_ms: run.durationMs,
  };
  if (run.timedOut) return { status: 'failed', error: `timed out after ${timeout_ms} ms`, details: result };
  if (run.exitCode !== 0) return { status: 'failed', error: `exited with ${run.exitCode}`, details: result };
  return { result, cost: 0 };
}

const handlers: Record<BuiltInCapability, TaskCallback> = { echo, shell };

/** Routes each task to the handler of its capability (none → echo). */
export function referenceCallback(): TaskCallback {
  return (task) => {
    const handler = handlers[(task.capability ?? 'echo') as BuiltInCapability];
    if (!handler)
      throw new NonRetryableError(`this agent has no handler for capability "${task.capability}"`);
    return handler(task);
  };
}
