export { AccessRefusedError, BrokerError, type BrokerLogger } from '@devart/queue';
export {
  type Agent,
  type AgentOptions,
  createAgent,
  type TaskCallback,
  type TaskContext,
  type TaskMessage,
  type TaskOutcome,
} from './agent';
export { type ApiClient, type CallOptions, createApiClient } from './client';
export { ApiError, NonRetryableError, SandboxUnavailableError } from './errors';
export {
  createEventsClient,
  type EventsClient,
  type EventsClientOptions,
  type EventsOptions,
  type PlatformEvent,
  type PlatformEventType,
} from './events';
export { checkTaskMessage, decodeTaskMessage, type TaskMessageVerdict } from './message';
export type {
  SandboxEgress,
  SandboxExecOptions,
  SandboxExecResult,
  SandboxHandle,
  SandboxOptions,
} from './sandbox';
