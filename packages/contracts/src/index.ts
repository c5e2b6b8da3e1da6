export * from './agents';
export * from './common';
export * from './events';
export * from './marketplace';
export * from './sandboxes';
export * from './task-message';
export * from './tasks';
export * from './workflows';
