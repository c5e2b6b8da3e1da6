export type {
  Broker,
  BrokerLogger,
  ConsumeOptions,
  Consumer,
  Delivery,
  DeliveryHandler,
  OutgoingMessage,
} from './broker';
export { consoleLogger } from './broker';
export {
  AccessRefusedError,
  BrokerClosedError,
  BrokerError,
  BrokerUnavailableError,
  ConsumeOnlyError,
  InvalidCapabilityError,
  InvalidMessageError,
  PublishRejectedError,
  QueueNotFoundError,
  TopologyConflictError,
} from './errors';
export { createInProcessBroker, type InProcessBrokerOptions } from './in-process';
export { DEFAULT_DELIVERY_LIMIT } from './message';
export { type BackoffOptions, backoffDelay } from './rabbitmq/backoff';
export { createRabbitBroker, type RabbitBrokerOptions } from './rabbitmq/broker';
export {
  type AgentCredentials,
  agentReadPattern,
  agentUsername,
  type ConnectionInfo,
  createManagementClient,
  ManagementApiError,
  type ManagementClient,
  type ManagementClientOptions,
  type ProvisionAgentInput,
  type ResourceInfo,
} from './rabbitmq/management';
export { taskQueueArguments } from './rabbitmq/topology';
export {
  assertCapability,
  capabilityOfTaskQueue,
  isCapability,
  type TopologyNames,
  taskQueueName,
  topologyNames,
} from './topology';
