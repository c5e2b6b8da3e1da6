import { type Config, ConfigError, loadConfig } from '@devart/api';

export interface CommandContext {
  env: Record<string, string | undefined>;
  out(line: string): void;
  err(line: string): void;
  onSignal(signal: 'SIGINT' | 'SIGTERM', handler: () => void): void;
}

/** The environment's configuration with the command's flags on top; a bad value is a ConfigError naming it. */
export function configFromEnv(
  env: CommandContext['env'],
  overrides: Record<string, string | undefined> = {},
): Config {
  const merged = { ...env };
  for (const [key, value] of Object.entries(overrides)) if (value !== undefined) merged[key] = value;
  return loadConfig(merged);
}

export { ConfigError };
