/**
 * Test helpers for code that uses `@devart/sandbox`: a fake Kubernetes API server that the real
 * client library talks to. Not part of the runtime entry point, so production never loads it.
 */
export { fakeKubeConfigYaml, startFakeKubernetes } from './fake-kubernetes';
export { type Permission, type PolicyRule, permissionsFor } from './rbac';
export type {
  ExecHandler,
  ExecOutcome,
  FakeKubernetes,
  FakeKubernetesOptions,
  PodPhase,
  RecordedRequest,
  StoredMeta,
  StoredNetworkPolicy,
  StoredPod,
} from './types';
