export * from './rbac';
export * from './task-state';
