/**
 * One command in a sandbox Pod through the pods/exec subresource (a WebSocket): the argv that
 * carries env and timeout into the container, capped output, the exit code from the kubelet's
 * status frame, and the wall-clock limit enforced here by closing the stream.
 */
import { Readable } from 'node:stream';
import type { Exec, V1Status } from '@kubernetes/client-node';
import {
  type ExecOptions,
  type ExecResult,
  SandboxNotFoundError,
  SandboxSpecError,
  SandboxUnavailableError,
} from '../provider';
import { CappedOutput } from '../shared/capped-output';
import { checkExecRequest } from '../shared/exec-request';
import { SANDBOX_CONTAINER } from './manifests';

/** The exec subprotocol that can close one stream (stdin) and keep the others open. */
const STREAM_CLOSE_PROTOCOL = 'v5.channel.k8s.io';

/** Where an exec goes and how its output is capped. */
export interface ExecTarget {
  exec: Exec;
  namespace: string;
  outputLimitBytes: number;
  /** See {@link ExecArgvOptions.killOnTimeout}. */
  killOnTimeout?: boolean;
}

/** Checks the request, then runs it in the Pod `id` (already known to be one of our names). */
export function execInPod(
  target: ExecTarget,
  id: string,
  command: string[],
  options: ExecOptions = {},
): Promise<ExecResult> {
  checkExecRequest(command, options);
  // `env` would take a first word with "=" for one more assignment.
  if (Object.keys(options.env ?? {}).length > 0 && command[0]!.includes('=')) {
    throw new SandboxSpecError('with env, the command may not start with a word containing "="', 'command');
  }
  const argv = sandboxExecArgv(command, { ...options, killOnTimeout: target.killOnTimeout });
  return new ExecRun(target, id, argv, options).result;
}

/** How exec wraps a command in the container. */
export interface ExecArgvOptions {
  env?: Record<string, string>;
  timeoutMs?: number;
  /** Prefix `timeout -s KILL <s>` so the command dies in the container, not only our stream. Default true. */
  killOnTimeout?: boolean;
}

/**
 * The argv exec sends. pods/exec has no environment parameter, so variables go through
 * `env -- K=V … cmd`. Closing the exec stream does not kill the process in the container (the
 * kubelet leaves it running), so with a timeout the command runs under
 * `timeout -s KILL <ceil(timeoutMs/1000)+1>`: one second later than the client gives up, so the
 * client's own deadline (exit code 124, timedOut) always decides the result, and the process
 * group is still killed inside the pod shortly after.
 */
export function sandboxExecArgv(command: string[], options: ExecArgvOptions = {}): string[] {
  const env = Object.entries(options.env ?? {});
  const withEnv = env.length > 0 ? ['env', '--', ...env.map(([k, v]) => `${k}=${v}`), ...command] : command;
  if (options.timeoutMs === undefined || options.killOnTimeout === false) return withEnv;
  const seconds = Math.ceil(options.timeoutMs / 1000) + 1;
  return ['timeout', '-s', 'KILL', String(seconds), ...withEnv];
}

/** The socket Exec returns (isomorphic-ws, i.e. `ws` on Node). */
type ExecSocket = Awaited<ReturnType<Exec['exec']>>;

/**
 * One exec over the pods/exec WebSocket: output into capped sinks, the exit code from the
 * status channel, the wall-clock limit enforced here by closing the stream.
 */
class ExecRun {
  readonly result: Promise<ExecResult>;
  private readonly stdout: CappedOutput;
  private readonly stderr: CappedOutput;
  private readonly stdin: Readable | null;
  private readonly started = performance.now();
  private socket?: ExecSocket;
  private timedOut = false;
  private timer?: NodeJS.Timeout;
  private settle!: (outcome: ExecResult | Error) => void;

  constructor(
    private readonly target: ExecTarget,
    private readonly id: string,
    argv: string[],
    options: ExecOptions,
  ) {
    this.stdout = new CappedOutput(target.outputLimitBytes);
    this.stderr = new CappedOutput(target.outputLimitBytes);
    this.stdin = options.stdin === undefined ? null : stdinStream(options.stdin);
    this.result = new Promise((resolve, reject) => {
      let settled = false;
      this.settle = (outcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(this.timer);
        if (outcome instanceof Error) reject(outcome);
        else resolve(outcome);
      };
    });
    if (options.timeoutMs !== undefined) {
      this.timer = setTimeout(() => this.onTimeout(), options.timeoutMs);
    }
    this.start(argv);
  }

  private start(argv: string[]): void {
    this.target.exec
      .exec(
        this.target.namespace,
        this.id,
        SANDBOX_CONTAINER,
        argv,
        this.stdout,
        this.stderr,
        this.stdin,
        false,
        (s) => this.onStatus(s),
      )
      .then(
        (socket) => this.onOpen(socket),
        (error: unknown) => this.settle(execConnectError(error, this.id)),
      );
  }

  private onOpen(socket: ExecSocket): void {
    this.socket = socket;
    socket.on('close', () =>
      this.settle(
        new SandboxUnavailableError(`exec in ${this.id}: the stream closed before the exit status`),
      ),
    );
    if (this.timedOut) {
      socket.close();
      return;
    }
    if (!this.stdin) return;
    // Only v5.channel.k8s.io can say "stdin is done" without closing the whole stream (and the
    // output with it); on an older API server a command reading stdin would wait forever.
    if (socket.protocol === STREAM_CLOSE_PROTOCOL) {
      this.stdin.push(null);
    } else {
      socket.close();
      this.settle(
        new SandboxUnavailableError(
          `exec with stdin needs the v5.channel.k8s.io protocol (Kubernetes 1.30+); the API server chose "${socket.protocol}"`,
        ),
      );
    }
  }

  private onTimeout(): void {
    this.timedOut = true;
    this.socket?.close();
    this.settle(this.outcome(124));
  }

  private onStatus(status: V1Status): void {
    const { exitCode, error } = exitFromStatus(status);
    if (error) this.stderr.note(error);
    this.settle(this.outcome(exitCode));
  }

  private outcome(exitCode: number): ExecResult {
    return {
      exitCode,
      stdout: this.stdout.text(),
      stderr: this.stderr.text(),
      truncated: this.stdout.truncated || this.stderr.truncated,
      timedOut: this.timedOut,
      durationMs: Math.round(performance.now() - this.started),
    };
  }
}

/** stdin as one pushed chunk; its end is pushed once we know the protocol can carry it. */
function stdinStream(data: string): Readable {
  const stream = new Readable({ read() {} });
  if (data.length > 0) stream.push(Buffer.from(data));
  return stream;
}

/**
 * The kubelet's status frame: Success → 0; NonZeroExitCode → the ExitCode cause; anything else
 * (the runtime could not start the command) → 127 for "not found", else 126, like a shell.
 */
export function exitFromStatus(status: V1Status): { exitCode: number; error?: string } {
  if (status.status === 'Success') return { exitCode: 0 };
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  if (status.reason === 'NonZeroExitCode' && cause?.message && /^\d+$/.test(cause.message)) {
    return { exitCode: Number(cause.message) };
  }
  const message = status.message ?? 'exec failed';
  return { exitCode: /not found|no such file/i.test(message) ? 127 : 126, error: message };
}

/** A refused upgrade arrives as ws's "Unexpected server response: <code>". */
function execConnectError(error: unknown, id: string): Error {
  const message = (error as { message?: string } | undefined)?.message ?? String(error);
  const code = /Unexpected server response: (\d+)/.exec(message)?.[1];
  if (code === '404') return new SandboxNotFoundError(`sandbox ${id} does not exist`);
  // 400 is the API server's "cannot exec into a container in a completed pod" (or not started).
  if (code === '400') return new SandboxNotFoundError(`sandbox ${id} is not running`);
  return new SandboxUnavailableError(`exec in ${id}: ${message}`, { cause: error });
}
