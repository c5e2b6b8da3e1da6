/**
 * One exec stream of the fake: the pods/exec WebSocket channel protocol (stdin on channel 0,
 * stdout 1, stderr 2, the status frame on 3, v5's close frame on 255) in front of either a
 * test's handler or a real process on the host.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import type { WebSocket } from 'ws';
import { killProcessGroup } from '../shared/process';
import type { ExecHandler, StoredPod } from './types';

/** One exec stream: stdin from the client, stdout/stderr/status frames to it. */
export class ExecSession {
  private stdinChunks: Buffer[] = [];
  private stdinDone: Promise<void>;
  private endStdin: () => void = () => {};
  private child?: ChildProcess;

  constructor(
    private readonly ws: WebSocket,
    private readonly signal: AbortSignal,
    wantsStdin: boolean,
  ) {
    this.stdinDone = wantsStdin ? new Promise((resolve) => (this.endStdin = resolve)) : Promise.resolve();
    signal.addEventListener('abort', () => this.endStdin());
    ws.on('message', (data: Buffer, isBinary) => this.onFrame(isBinary ? data : Buffer.from(data)));
  }

  private onFrame(frame: Buffer): void {
    const channel = frame[0];
    if (channel === 0) {
      const chunk = frame.subarray(1);
      if (this.child?.stdin) this.child.stdin.write(chunk);
      else this.stdinChunks.push(chunk);
    } else if (channel === 255 && frame[1] === 0) {
      // v5.channel.k8s.io: the client closed its stdin.
      this.child?.stdin?.end();
      this.endStdin();
    }
    // Channel 4 (terminal resize) means nothing without a TTY.
  }

  send(channel: number, data: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(Buffer.concat([Buffer.from([channel]), data]));
  }

  async runHandler(handler: ExecHandler, pod: StoredPod, argv: string[]): Promise<number> {
    await this.stdinDone;
    if (this.signal.aborted) return 137;
    const outcome = await handler(pod, argv, Buffer.concat(this.stdinChunks), this.signal);
    this.sendChunked(1, outcome.stdout);
    this.sendChunked(2, outcome.stderr);
    return outcome.exitCode;
  }

  private sendChunked(channel: number, data: string | Buffer | undefined): void {
    const buffer = typeof data === 'string' ? Buffer.from(data) : (data ?? Buffer.alloc(0));
    for (let at = 0; at < buffer.length; at += 32 * 1024)
      this.send(channel, buffer.subarray(at, at + 32 * 1024));
  }

  /** Realism by default: the command really runs, in its own process group so a hang-up kills the tree. */
  runOnHost(argv: string[]): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: tmpdir(),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      this.child = child;
      child.stdin.on('error', () => {}); // EPIPE when the command does not read its stdin
      for (const chunk of this.stdinChunks) child.stdin.write(chunk);
      this.stdinChunks = [];
      // Without v5 there is no stdin close frame: stdin then ends only with the connection.
      child.stdout.on('data', (chunk: Buffer) => this.send(1, chunk));
      child.stderr.on('data', (chunk: Buffer) => this.send(2, chunk));
      const kill = () => killProcessGroup(child);
      this.signal.addEventListener('abort', kill);
      child.on('error', (error) => reject(error));
      child.on('close', (code, signal) => {
        this.signal.removeEventListener('abort', kill);
        resolve(code ?? 128 + signalNumber(signal));
      });
      this.stdinDone.then(() => child.stdin.end());
    });
  }

  /** The kubelet's status frame on channel 3, then the server closes the stream. */
  finish(argv: string[], exitCode: number): void {
    const status =
      exitCode === 0
        ? { metadata: {}, status: 'Success' }
        : {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: error executing command [${argv.join(' ')}], exit code ${exitCode}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
          };
    this.send(3, Buffer.from(JSON.stringify(status)));
    this.ws.close(1000);
  }

  /** A command that cannot start: the runtime's error comes back as an InternalError status. */
  fail(error: unknown): void {
    const detail =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? `exec: "${(error as { path?: string }).path}": executable file not found in $PATH`
        : (error as Error).message;
    const message = `error executing command in container: OCI runtime exec failed: exec failed: unable to start container process: ${detail}: unknown`;
    const status = {
      metadata: {},
      status: 'Failure',
      message: `Internal error occurred: ${message}`,
      reason: 'InternalError',
      details: { causes: [{ message }] },
      code: 500,
    };
    this.send(3, Buffer.from(JSON.stringify(status)));
    this.ws.close(1000);
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
  return signal ? (numbers[signal] ?? 1) : 1;
}
