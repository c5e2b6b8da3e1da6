import { createHash } from 'node:crypto';
import { isIP } from 'node:net';
import { isUserRole, type UserRole } from '@devart/core';
import { createRemoteJWKSet, type JWTPayload, errors as joseErrors, jwtVerify, SignJWT } from 'jose';

export interface VerifiedUser {
  sub: string;
  email: string | null;
  /** null when the token carries no devart role: authenticated, but allowed nothing. */
  role: UserRole | null;
  claims: JWTPayload;
}

export interface JwtOptions {
  /** HS256 shared secret (JWT_SECRET or the data directory's secret). */
  secret?: string;
  /** JWKS of an external issuer (Supabase, any OIDC provider). */
  jwksUrl?: string;
  issuer?: string;
  audience?: string;
}

export type TokenVerifier = (token: string) => Promise<VerifiedUser>;

/** Raised for every token that must be answered 401; the message says why. */
export class InvalidTokenError extends Error {
  override name = 'InvalidTokenError';
}

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Whether a URL's host is this machine: localhost, 127.0.0.0/8 or ::1, whose traffic never leaves it. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  if (host === 'localhost' || host.endsWith('.localhost')) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  return host === '::1' || /^::ffff:127\./.test(host);
}

/**
 * Why a JWKS URL may not be used, or undefined when it may: the keys that decide who is admin must
 * come over https, since anyone on the path of a plain http fetch could serve their own. A loopback
 * http URL (a sidecar, a test issuer) is allowed.
 * @example jwksUrlProblem('http://issuer.example/jwks') // 'must be https:// (http:// only for localhost…)'
 */
export function jwksUrlProblem(jwksUrl: string): string | undefined {
  let url: URL;
  try {
    url = new URL(jwksUrl);
  } catch {
    return 'must be an https:// URL';
  }
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:' && isLoopbackHost(url.hostname)) return undefined;
  return 'must be https:// (http:// only for localhost, 127.0.0.0/8 or ::1): the signing keys decide who is admin';
}

/**
 * Verifies user JWTs: HS256 with the shared secret, or asymmetric keys from a JWKS. `alg: none`
 * and every algorithm not listed are refused by jose itself; a JWKS URL must pass jwksUrlProblem.
 */
export function createTokenVerifier(options: JwtOptions): TokenVerifier {
  const jwksProblem = options.jwksUrl === undefined ? undefined : jwksUrlProblem(options.jwksUrl);
  if (jwksProblem) throw new Error(`The JWKS URL ${jwksProblem}`);
  const secret = options.secret ? new TextEncoder().encode(options.secret) : undefined;
  const jwks = options.jwksUrl ? createRemoteJWKSet(new URL(options.jwksUrl)) : undefined;
  if (!secret && !jwks) throw new Error('A JWT secret or a JWKS URL is required to verify tokens');
  const common = { issuer: options.issuer, audience: options.audience, requiredClaims: ['exp', 'sub'] };

  return async function verifyToken(token) {
    let payload: JWTPayload;
    try {
      const header = JSON.parse(Buffer.from(token.split('.')[0] ?? '', 'base64url').toString('utf8')) as {
        alg?: string;
      };
      if (header.alg === 'HS256' && secret) {
        payload = (await jwtVerify(token, secret, { ...common, algorithms: ['HS256'] })).payload;
      } else if (jwks && header.alg !== 'HS256') {
        payload = (await jwtVerify(token, jwks, { ...common, algorithms: ['RS256', 'ES256', 'EdDSA'] }))
          .payload;
      } else {
        throw new InvalidTokenError(`tokens signed with ${header.alg ?? 'no algorithm'} are not accepted`);
      }
    } catch (error) {
      if (error instanceof InvalidTokenError) throw error;
      if (error instanceof joseErrors.JWTExpired) throw new InvalidTokenError('the token has expired');
      if (error instanceof joseErrors.JOSEError)
        throw new InvalidTokenError(`the token is invalid (${error.code})`);
      throw new InvalidTokenError('the token is not a well-formed JWT');
    }
    if (typeof payload.sub !== 'string' || !uuidPattern.test(payload.sub)) {
      throw new InvalidTokenError('the token subject (sub) must be a UUID');
    }
    const role = (payload.app_metadata as { role?: unknown } | undefined)?.role;
    return {
      // Lowercased as every id entering the API is, so the caller's id compares equal to the rows' ids.
      sub: payload.sub.toLowerCase(),
      email: typeof payload.email === 'string' ? payload.email : null,
      role: isUserRole(role) ? role : null,
      claims: payload,
    };
  };
}

export interface TokenRequest {
  role: UserRole;
  sub?: string;
  email?: string;
  ttlSeconds: number;
}

/** The stable subject of the local user of a role, so tokens minted again act as the same user. */
export function defaultSubject(role: UserRole): string {
  const hex = createHash('sha256').update(`devart-local-user:${role}`).digest('hex');
  // Shape it as a version-4, RFC 4122-variant UUID.
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-4${hex.slice(13, 16)}-${((Number.parseInt(hex[16]!, 16) & 3) | 8).toString(16)}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

/** Signs a user token the way Supabase shapes them (role claim in app_metadata). */
export async function signUserToken(secret: string, request: TokenRequest): Promise<string> {
  const sub = request.sub ?? defaultSubject(request.role);
  return new SignJWT({
    role: 'authenticated',
    app_metadata: { role: request.role },
    ...(request.email ? { email: request.email } : {}),
  })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setAudience('authenticated')
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + request.ttlSeconds)
    .sign(new TextEncoder().encode(secret));
}
