/**
 * RBAC as the API server applies it to the provider's requests: the attributes each request
 * needs, and whether a Role's rules grant them.
 */
import type { RecordedRequest } from './types';

export const CORE = '/api/v1/namespaces/';
export const NETWORKING = '/apis/networking.k8s.io/v1/namespaces/';
export const ROUTE =
  /^\/(?:api\/v1|apis\/networking\.k8s\.io\/v1)\/namespaces\/([^/]+)\/(pods|networkpolicies)(?:\/([^/]+)(?:\/(exec))?)?$/;
export const SERVICE_ACCOUNT = 'system:serviceaccount:devart:devart-api';

/** An RBAC attribute: what one request needs permission for. */
export interface Permission {
  /** '' for the core group. */
  apiGroup: string;
  /** `pods`, `pods/exec`, `networkpolicies`. */
  resource: string;
  verb: string;
}

/** A Role rule, as in rbac.authorization.k8s.io/v1 (no resourceNames). */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

/**
 * The RBAC attributes a request needs, as the API server's authorizer derives them: POST →
 * create, GET on an item → get, GET on a collection → list (watch with `watch=true`),
 * DELETE → delete. An exec WebSocket is a GET, so it needs `get` on pods/exec; since
 * Kubernetes 1.35 (AuthorizePodWebsocketUpgradeCreatePermission) it also needs `create`.
 */
export function permissionsFor(request: Pick<RecordedRequest, 'method' | 'path' | 'query'>): Permission[] {
  const match = ROUTE.exec(request.path);
  if (!match) return [];
  const [, , resource, name, exec] = match;
  const apiGroup = resource === 'networkpolicies' ? 'networking.k8s.io' : '';
  if (exec) {
    return [
      { apiGroup, resource: 'pods/exec', verb: 'get' },
      { apiGroup, resource: 'pods/exec', verb: 'create' },
    ];
  }
  return [{ apiGroup, resource: resource!, verb: verbOf(request.method, name !== undefined, request.query) }];
}

function verbOf(method: string, item: boolean, query: Record<string, string | string[]>): string {
  if (method === 'POST') return 'create';
  if (method === 'DELETE') return item ? 'delete' : 'deletecollection';
  if (method === 'PUT') return 'update';
  if (method === 'PATCH') return 'patch';
  if (item) return 'get';
  return query.watch === 'true' || query.watch === '1' ? 'watch' : 'list';
}

export function allowedBy(rules: PolicyRule[], permission: Permission): boolean {
  return rules.some(
    (rule) =>
      (rule.apiGroups ?? []).some((g) => g === '*' || g === permission.apiGroup) &&
      (rule.resources ?? []).some((r) => r === '*' || r === permission.resource) &&
      rule.verbs.some((v) => v === '*' || v === permission.verb),
  );
}

/** Each permission once, in first-use order. */
export function uniquePermissions(permissions: Permission[]): Permission[] {
  const seen = new Map<string, Permission>();
  for (const p of permissions) seen.set(`${p.apiGroup}|${p.resource}|${p.verb}`, p);
  return [...seen.values()];
}
