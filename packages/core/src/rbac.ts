/**
 * The one RBAC matrix of the platform (DESIGN §5). Every route names an action; the API's
 * `authorize(action)` middleware answers 401 without a principal and 403 when the principal's
 * role is not listed here.
 */
export const userRoles = ['viewer', 'supervisor', 'admin'] as const;
export type UserRole = (typeof userRoles)[number];
export type PrincipalKind = UserRole | 'agent';

const readers: readonly PrincipalKind[] = ['viewer', 'supervisor', 'admin'];
const supervisors: readonly PrincipalKind[] = ['supervisor', 'admin'];
const admins: readonly PrincipalKind[] = ['admin'];
const agents: readonly PrincipalKind[] = ['agent'];

export const rbacMatrix = {
  'agents.create': admins,
  'agents.list': readers,
  'agents.revoke': admins,
  'tasks.create': supervisors,
  'tasks.list': readers,
  'tasks.read': readers,
  'tasks.cancel': supervisors,
  'tasks.requeue': supervisors,
  'tasks.agent': agents,
  // An agent sees only the events about itself (the route narrows its filter to its own agent_id).
  'events.subscribe': [...readers, 'agent'],
  'workflows.create': supervisors,
  'workflows.read': readers,
  'workflows.trigger': supervisors,
  'workflows.cancel': supervisors,
  'marketplace.read': readers,
  'marketplace.publish': supervisors,
  'marketplace.yank': supervisors,
  'marketplace.install': supervisors,
  'agents.self': agents,
  'sandboxes.request': agents,
  'sandboxes.read': [...readers, 'agent'],
  'sandboxes.exec': agents,
  'sandboxes.terminate': [...supervisors, 'agent'],
  // Which outside services are connected and how their deliveries fare (no secrets, but the setup).
  'integrations.read': admins,
} as const satisfies Record<string, readonly PrincipalKind[]>;

export type Action = keyof typeof rbacMatrix;

export type AccessDecision = 'allow' | 'unauthenticated' | 'forbidden';

/**
 * Decides whether a principal may perform an action.
 * @example decideAccess('tasks.create', 'viewer') // 'forbidden'
 */
export function decideAccess(action: Action, principal: PrincipalKind | null): AccessDecision {
  if (principal === null) return 'unauthenticated';
  return (rbacMatrix[action] as readonly PrincipalKind[]).includes(principal) ? 'allow' : 'forbidden';
}

export function isUserRole(value: unknown): value is UserRole {
  return typeof value === 'string' && (userRoles as readonly string[]).includes(value);
}
