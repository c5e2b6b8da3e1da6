export * from './rbac';
export * from './retry';
export * from './task-state';
export * from './workflow';
