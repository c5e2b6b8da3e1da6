export {
  type Agent,
  type AgentOptions,
  createAgent,
  type TaskCallback,
  type TaskContext,
  type TaskMessage,
  type TaskOutcome,
} from './agent';
export { type ApiClient, createApiClient } from './client';
export { ApiError, NonRetryableError } from './errors';
