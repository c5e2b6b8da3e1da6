import { type Action, decideAccess, type UserRole } from '@devart/core';
import type { AgentRow } from '@devart/db';
import type { MiddlewareHandler } from 'hono';
import { API_KEY_PREFIX, hashApiKey } from '../auth/api-keys';
import { InvalidTokenError, type TokenVerifier, type VerifiedUser } from '../auth/jwt';
import { ProblemError } from '../problem';

export type Principal =
  | { kind: 'user'; role: UserRole | null; user: VerifiedUser }
  | { kind: 'agent'; agent: AgentRow };

/** What authentication found: a principal, nobody, or a credential that must be refused with this reason. */
export type AuthResult = { principal: Principal } | { principal: null; reason: string };

export interface AuthEnv {
  Variables: { auth: AuthResult };
}

export interface AuthenticateOptions {
  verifyToken: TokenVerifier;
  findAgentByKeyHash: (hash: string) => Promise<AgentRow | undefined>;
  /** Called once per verified user; used to record first-seen users. */
  onUser?: (user: VerifiedUser) => Promise<void>;
}

/**
 * Reads `Authorization: Bearer …` (a user JWT or an agent key `dva_…`) and records what it found;
 * `authorize(action)` decides what to answer. Public routes never look.
 */
export const authenticate = ({ verifyToken, findAgentByKeyHash, onUser }: AuthenticateOptions) =>
  async function authenticateRequest(c, next) {
    const header = c.req.header('authorization');
    if (!header) {
      c.set('auth', {
        principal: null,
        reason: 'no Authorization header; send "Authorization: Bearer <token>"',
      });
      return next();
    }
    const match = /^Bearer\s+(\S+)$/i.exec(header);
    if (!match) {
      c.set('auth', { principal: null, reason: 'the Authorization header must be "Bearer <token>"' });
      return next();
    }
    const credential = match[1]!;
    if (credential.startsWith(API_KEY_PREFIX)) {
      const agent = await findAgentByKeyHash(hashApiKey(credential));
      c.set(
        'auth',
        agent
          ? { principal: { kind: 'agent', agent } }
          : { principal: null, reason: 'unknown or revoked agent key' },
      );
      return next();
    }
    try {
      const user = await verifyToken(credential);
      await onUser?.(user);
      c.set('auth', { principal: { kind: 'user', role: user.role, user } });
    } catch (error) {
      if (!(error instanceof InvalidTokenError)) throw error;
      c.set('auth', { principal: null, reason: error.message });
    }
    return next();
  } satisfies MiddlewareHandler<AuthEnv>;

/** Applies the RBAC matrix: 401 without a valid credential, 403 when the role may not do this. */
export const authorize = (action: Action) =>
  async function authorizeRequest(c, next) {
    const auth = c.get('auth');
    if (!auth.principal) {
      throw new ProblemError('unauthenticated', `Authentication required: ${auth.reason}.`, {
        headers: { 'www-authenticate': 'Bearer' },
      });
    }
    const principal = auth.principal;
    const kind = principal.kind === 'agent' ? 'agent' : principal.role;
    if (kind === null) {
      throw new ProblemError(
        'forbidden',
        'The token carries no devart role: app_metadata.role must be viewer, supervisor or admin.',
      );
    }
    if (decideAccess(action, kind) !== 'allow') {
      throw new ProblemError('forbidden', `The ${kind} role may not do this (${action}).`);
    }
    return next();
  } satisfies MiddlewareHandler<AuthEnv>;

/** Who is calling; call only behind `authorize`, which answers 401 when nobody is. */
export function currentPrincipal(auth: AuthResult): Principal {
  if (!auth.principal) throw new Error('route needs a principal: guard it with authorize');
  return auth.principal;
}

/** The authenticated user; call only behind `authorize` of a user action. */
export function currentUser(auth: AuthResult): VerifiedUser {
  if (auth.principal?.kind !== 'user') throw new Error('route needs a user principal');
  return auth.principal.user;
}

/** The calling agent; call only behind `authorize` of an action the matrix gives to agents alone. */
export function currentAgent(auth: AuthResult): AgentRow {
  if (auth.principal?.kind !== 'agent') throw new Error('route needs an agent principal');
  return auth.principal.agent;
}
