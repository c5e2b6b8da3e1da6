import { spawn } from 'node:child_process';
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

/**
 * `shell`: runs payload.command (argv, no shell) with a wall-clock timeout and capped output. It
 * runs on the agent's host, NOT in a sandbox: enable it only for agents you would trust with a shell.
 */
export async function shell(task: TaskContext): Promise<TaskOutcome> {
  const { command, timeout_ms = 60_000 } = parseShellPayload(task.payload);
  const started = performance.now();
  return new Promise<TaskOutcome>((resolve, reject) => {
    const child = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    const out = { stdout: Buffer.alloc(0), stderr: Buffer.alloc(0), truncated: false };
    const collect = (key: 'stdout' | 'stderr') => (chunk: Buffer) => {
      const room = OUTPUT_CAP_BYTES - out[key].length;
      if (room <= 0) {
        out.truncated = true;
        return;
      }
      if (chunk.length > room) out.truncated = true;
      out[key] = Buffer.concat([out[key], chunk.subarray(0, room)]);
    };
    child.stdout.on('data', collect('stdout'));
    child.stderr.on('data', collect('stderr'));
    let timedOut = false;
    const kill = () => {
      // The whole process group, so children of the command do not outlive it.
      if (child.pid) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          child.kill('SIGKILL');
        }
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeout_ms);
    task.signal.addEventListener('abort', kill, { once: true });
    child.once('error', (error) => {
      clearTimeout(timer);
      reject(new NonRetryableError(`cannot run ${command[0]}: ${error.message}`));
    });
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      const result = {
        exit_code: code,
        signal,
        stdout: out.stdout.toString('utf8'),
        stderr: out.stderr.toString('utf8'),
        truncated: out.truncated,
        duration_ms: Math.round(performance.now() - started),
      };
      if (timedOut) resolve({ status: 'failed', error: `timed out after ${timeout_ms} ms`, details: result });
      else if (code !== 0)
        resolve({ status: 'failed', error: `exited with ${code ?? signal}`, details: result });
      else resolve({ result, cost: 0 });
    });
  });
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
