import { type ExecOptions, SandboxSpecError } from '../provider';

/** A portable environment variable name (POSIX shells and `env` accept exactly these). */
export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The checks every provider makes on an exec request before running anything, so a bad request
 * is a SandboxSpecError naming its field. NUL is refused everywhere: no argv or environment can
 * carry it (execve ends strings there), and bwrap reads its options NUL-separated, where a NUL
 * would smuggle in an option.
 */
export function checkExecRequest(command: string[], options: ExecOptions = {}): void {
  if (!Array.isArray(command) || command.length === 0)
    throw new SandboxSpecError('command must name a program', 'command');
  for (const arg of command)
    if (typeof arg !== 'string' || arg.includes('\0'))
      throw new SandboxSpecError('command arguments must be strings without NUL', 'command');
  for (const [name, value] of Object.entries(options.env ?? {})) {
    if (!ENV_NAME.test(name)) throw new SandboxSpecError(`invalid environment variable name: ${name}`, 'env');
    if (typeof value !== 'string' || value.includes('\0'))
      throw new SandboxSpecError(`environment variable ${name} must be a string without NUL`, 'env');
  }
  if (options.timeoutMs !== undefined && !(options.timeoutMs > 0))
    throw new SandboxSpecError('timeoutMs must be positive', 'timeoutMs');
}
