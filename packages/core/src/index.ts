export * from './rbac';
export * from './reference-agent';
export * from './retry';
export * from './workflow';
