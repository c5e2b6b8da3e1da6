/**
 * Test helpers for code that uses `@devart/sandbox`: a fake Kubernetes API server that the real
 * client library talks to. Not part of the runtime entry point, so production never loads it.
 */
export * from './fake-kubernetes';
