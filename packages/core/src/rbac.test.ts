import { describe, expect, it } from 'vitest';
import { decideAccess, isUserRole, rbacMatrix } from './rbac';

describe('rbac matrix', () => {
  it('asks for authentication before anything else', () => {
    for (const action of Object.keys(rbacMatrix) as (keyof typeof rbacMatrix)[]) {
      expect(decideAccess(action, null)).toBe('unauthenticated');
    }
  });

  it('orders the user roles: whatever a viewer may do, a supervisor and an admin may too', () => {
    for (const [action, allowed] of Object.entries(rbacMatrix) as [
      keyof typeof rbacMatrix,
      readonly string[],
    ][]) {
      if (allowed.includes('viewer')) expect(decideAccess(action, 'supervisor')).toBe('allow');
      if (allowed.includes('supervisor')) expect(decideAccess(action, 'admin')).toBe('allow');
    }
  });

  it('keeps agents to their own task operations', () => {
    expect(decideAccess('tasks.agent', 'agent')).toBe('allow');
    expect(decideAccess('tasks.create', 'agent')).toBe('forbidden');
    expect(decideAccess('agents.list', 'agent')).toBe('forbidden');
    expect(decideAccess('tasks.agent', 'admin')).toBe('forbidden');
  });

  it('lets only admins manage agents', () => {
    expect(decideAccess('agents.create', 'supervisor')).toBe('forbidden');
    expect(decideAccess('agents.revoke', 'admin')).toBe('allow');
  });

  it('recognises exactly the three user roles', () => {
    expect(['viewer', 'supervisor', 'admin', 'root', '', null].map(isUserRole)).toEqual([
      true,
      true,
      true,
      false,
      false,
      false,
    ]);
  });
});
