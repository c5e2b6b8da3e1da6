export * from './agents';
export * from './client';
export * from './migrate';
export * from './tasks';
export * from './users';
