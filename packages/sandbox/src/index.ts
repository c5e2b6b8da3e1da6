export * from './kubernetes';
export * from './local';
export * from './provider';
