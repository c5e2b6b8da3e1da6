import { type ParseArgsConfig, parseArgs } from 'node:util';

/** A mistake in how the command was called: exit code 2 and a message naming the flag. */
export class UsageError extends Error {
  override name = 'UsageError';
}

type Options = NonNullable<ParseArgsConfig['options']>;

/** `parseArgs` in strict mode, with its errors turned into UsageErrors that name the flag. */
export function parseFlags<O extends Options>(args: string[], options: O, { positionals = false } = {}) {
  try {
    return parseArgs({
      args,
      options: { help: { type: 'boolean', short: 'h' }, ...options },
      strict: true,
      allowPositionals: positionals,
    });
  } catch (error) {
    const message = (error as Error).message.split('. To specify')[0]!;
    throw new UsageError(message.replace(/^Unknown option/, 'unknown option'));
  }
}

/** Parses durations such as 30s, 15m, 1h, 7d. */
export function parseDuration(flag: string, text: string, { maxSeconds }: { maxSeconds: number }): number {
  const match = /^(\d+)([smhd])$/.exec(text);
  if (!match) throw new UsageError(`${flag} must be a duration such as 30m, 1h or 7d (got "${text}")`);
  const seconds = Number(match[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[match[2] as 's' | 'm' | 'h' | 'd'];
  if (seconds <= 0 || seconds > maxSeconds) {
    throw new UsageError(`${flag} must be between 1s and ${maxSeconds / 86_400}d (got "${text}")`);
  }
  return seconds;
}
