import { Writable } from 'node:stream';

/**
 * Keeps the first `limit` bytes of a command's stdout or stderr and notes whether anything was
 * dropped. Output past the cap is accepted and discarded, so a chatty process neither blocks on
 * a full pipe nor fills our memory. It is a Writable because the Kubernetes client streams exec
 * output into one; the local provider feeds it `data` events through {@link CappedOutput.append}.
 * @example
 * const out = new CappedOutput(4);
 * out.append(Buffer.from('hello'));
 * out.text(); // 'hell'; out.truncated === true
 */
export class CappedOutput extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  truncated = false;

  constructor(private readonly limit: number) {
    super();
  }

  append(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (chunk.length > room) this.truncated = true;
    if (room <= 0) return;
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, done: (error?: Error | null) => void): void {
    this.append(chunk);
    done();
  }

  /**
   * Adds a line past the cap, after the stream has ended: the Kubernetes client ends it on the
   * status frame, whose error text the caller must still see.
   */
  note(text: string): void {
    const separator = this.size > 0 ? '\n' : '';
    this.chunks.push(Buffer.from(`${separator}${text}\n`));
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8');
  }
}
