/**
 * The Kubernetes provider's configuration from the environment, and the container image
 * reference grammar it is checked with.
 */
import { KubeConfig } from '@kubernetes/client-node';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
// The reference grammar of distribution/reference: [registry[:port]/]path[:tag][@digest].
const DOMAIN = String.raw`(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?`;
const PATH_COMPONENT = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`;
const IMAGE_REFERENCE = new RegExp(
  String.raw`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*(?::[\w][\w.-]{0,127})?(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?$`,
);

/** A bad or missing environment variable for the Kubernetes provider; `variable` names it. */
export class KubernetesConfigError extends Error {
  override name = 'KubernetesConfigError';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(message);
  }
}

/** What the provider needs to reach the cluster, read from the environment. */
export interface KubernetesEnvConfig {
  kubeConfig: KubeConfig;
  namespace: string;
  image: string;
}

/**
 * Reads the provider's configuration: `KUBE_CONFIG_DATA` (a base64 kubeconfig) or, inside a
 * cluster (`KUBERNETES_SERVICE_HOST` set), the pod's service account; `K8S_NAMESPACE` (default:
 * the kubeconfig context's namespace, in a cluster the pod's own); `AGENT_CONTAINER_IMAGE`.
 * @throws KubernetesConfigError naming the variable at fault.
 */
export function kubernetesConfigFromEnv(env: Record<string, string | undefined>): KubernetesEnvConfig {
  const kubeConfig = loadKubeConfig(env);
  const namespace =
    env.K8S_NAMESPACE?.trim() || kubeConfig.getContextObject(kubeConfig.currentContext)?.namespace;
  if (!namespace) {
    throw new KubernetesConfigError(
      'K8S_NAMESPACE',
      'K8S_NAMESPACE is required when SANDBOX_PROVIDER=kubernetes and the kubeconfig context names no namespace',
    );
  }
  if (!DNS_LABEL.test(namespace)) {
    throw new KubernetesConfigError(
      'K8S_NAMESPACE',
      `K8S_NAMESPACE must be a DNS-1123 label (lowercase a-z, 0-9, "-", at most 63 characters), got "${namespace}"`,
    );
  }
  const image = env.AGENT_CONTAINER_IMAGE?.trim();
  if (!image) {
    throw new KubernetesConfigError(
      'AGENT_CONTAINER_IMAGE',
      'AGENT_CONTAINER_IMAGE is required when SANDBOX_PROVIDER=kubernetes',
    );
  }
  if (!isImageReference(image)) {
    throw new KubernetesConfigError(
      'AGENT_CONTAINER_IMAGE',
      `AGENT_CONTAINER_IMAGE is not an image reference ([registry/]name[:tag][@digest]): "${image}"`,
    );
  }
  return { kubeConfig, namespace, image };
}

function loadKubeConfig(env: Record<string, string | undefined>): KubeConfig {
  const kubeConfig = new KubeConfig();
  const data = env.KUBE_CONFIG_DATA?.trim();
  if (data) {
    const fail = (why: string) =>
      new KubernetesConfigError(
        'KUBE_CONFIG_DATA',
        `KUBE_CONFIG_DATA is not valid base64 kubeconfig: ${why}`,
      );
    const compact = data.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(compact)) throw fail('not base64');
    try {
      kubeConfig.loadFromString(Buffer.from(compact, 'base64').toString('utf8'));
    } catch (error) {
      throw fail((error as Error).message.split('\n')[0] ?? 'unreadable');
    }
    if (!kubeConfig.getCurrentCluster()?.server) throw fail('no current-context with a cluster server');
    return kubeConfig;
  }
  if (env.KUBERNETES_SERVICE_HOST) {
    // Reads KUBERNETES_SERVICE_HOST/PORT from process.env and the mounted service-account token.
    kubeConfig.loadFromCluster();
    return kubeConfig;
  }
  throw new KubernetesConfigError(
    'KUBE_CONFIG_DATA',
    'KUBE_CONFIG_DATA is required when SANDBOX_PROVIDER=kubernetes outside a cluster (KUBERNETES_SERVICE_HOST is unset)',
  );
}

/** True for a plausible container image reference (`busybox`, `ghcr.io/org/img:1.2@sha256:…`). */
export function isImageReference(image: string): boolean {
  return image.length <= 512 && IMAGE_REFERENCE.test(image);
}
