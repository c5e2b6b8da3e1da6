import { createHash, randomBytes } from 'node:crypto';

export const API_KEY_PREFIX = 'dva_';

/** A new agent API key: `dva_` and 32 random bytes, base64url. */
export function generateApiKey(): string {
  return API_KEY_PREFIX + randomBytes(32).toString('base64url');
}

/** Keys carry 256 bits of entropy, so a plain SHA-256 is enough: no salt or slow hash is needed. */
export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}
