export * from './agent-work';
export * from './agents';
export * from './client';
export * from './failures';
export * from './migrate';
export * from './outbox';
export * from './tasks';
export * from './users';
