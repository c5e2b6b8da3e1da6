export * from './agents';
export * from './common';
export * from './tasks';
