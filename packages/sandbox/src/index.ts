// The public surface, listed by name so helpers shared between the modules below stay internal.
export {
  isImageReference,
  KubernetesConfigError,
  type KubernetesEnvConfig,
  kubernetesConfigFromEnv,
} from './kubernetes/config';
export { type ExecArgvOptions, exitFromStatus, sandboxExecArgv } from './kubernetes/exec';
export {
  checkKubernetesSpec,
  MANAGED_BY_LABEL,
  SANDBOX_CONTAINER,
  SANDBOX_ID_LABEL,
  SANDBOX_UID,
  type SandboxObjectOptions,
  sandboxLabels,
  sandboxNetworkPolicy,
  sandboxPod,
  TASK_ID_LABEL,
} from './kubernetes/manifests';
export {
  createKubernetesProvider,
  type KubernetesProviderOptions,
  sandboxInfoFromPod,
} from './kubernetes/provider';
export {
  type BubblewrapFeatures,
  type BubblewrapStatus,
  bubblewrapWarnings,
  detectBubblewrap,
} from './local/detect';
export {
  createLocalProvider,
  type LocalLimits,
  type LocalProviderOptions,
  type LocalSandboxProvider,
  limitsWarning,
} from './local/provider';
export * from './provider';
