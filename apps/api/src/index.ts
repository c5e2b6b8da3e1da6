export { createApp } from './app';
export { createTokenVerifier, defaultSubject, signUserToken } from './auth/jwt';
export { type Config, ConfigError, loadConfig, managementUrlFor } from './config';
export { readOrCreateSecret, readSecret } from './data-dir';
export { openDatabase, startPlatform } from './server';
export { registerDemoAgents } from './services/demo-agents';
export { demoWorkflow, seedDemoWorkflow } from './services/demo-workflow';
export { sendTelegramTest } from './services/telegram';
