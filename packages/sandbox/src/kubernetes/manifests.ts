/**
 * The objects one sandbox consists of (a NetworkPolicy, then a Pod), built as plain data, and
 * the spec checks that keep a bad field from ever reaching the API server.
 */
import { isIP } from 'node:net';
import type { V1NetworkPolicy, V1NetworkPolicyEgressRule, V1Pod } from '@kubernetes/client-node';
import { type SandboxSpec, SandboxSpecError } from '../provider';
import { isImageReference } from './config';

/** Label on every object the provider creates; list() and the default-deny policy select on it. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';
export const SANDBOX_ID_LABEL = 'devart.dev/sandbox-id';
export const TASK_ID_LABEL = 'devart.dev/task-id';
/** The sandbox container's name, used by exec. */
export const SANDBOX_CONTAINER = 'sandbox';
/** uid, gid and fsGroup of the sandbox (the distroless "nonroot" user). */
export const SANDBOX_UID = 65532;

const LABEL_VALUE = /^(?=.{0,63}$)(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** Names and defaults shared by the object builders. */
export interface SandboxObjectOptions {
  /** The Pod and NetworkPolicy name (`sbx-<16 hex>`). */
  sandboxId: string;
  namespace: string;
  /** Used when the spec names no image. */
  image: string;
  /** Size limit of the /workspace emptyDir, in MiB. Default 1024. */
  workspaceMi?: number;
}

/** The labels every object of one sandbox carries. */
export function sandboxLabels(spec: Pick<SandboxSpec, 'taskId'>, sandboxId: string): Record<string, string> {
  return { [MANAGED_BY_LABEL]: 'devart', [SANDBOX_ID_LABEL]: sandboxId, [TASK_ID_LABEL]: spec.taskId };
}

/**
 * The sandbox Pod: non-root, no privilege escalation, no capabilities, read-only root
 * filesystem, no service-account token, no service links, requests = limits (Guaranteed QoS),
 * and killed by the kubelet after `ttlSeconds` (activeDeadlineSeconds).
 */
export function sandboxPod(spec: SandboxSpec, options: SandboxObjectOptions): V1Pod {
  const resources = { cpu: `${spec.cpu}m`, memory: `${spec.memory}Mi` };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: options.sandboxId,
      namespace: options.namespace,
      labels: sandboxLabels(spec, options.sandboxId),
    },
    spec: {
      restartPolicy: 'Never',
      activeDeadlineSeconds: spec.ttlSeconds,
      // The container's only process is `sleep`; nothing needs time to shut down cleanly.
      terminationGracePeriodSeconds: 1,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        runAsUser: SANDBOX_UID,
        runAsGroup: SANDBOX_UID,
        fsGroup: SANDBOX_UID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [
        {
          name: SANDBOX_CONTAINER,
          image: spec.image ?? options.image,
          imagePullPolicy: 'IfNotPresent',
          // Keeps the pod alive for exec; the deadline above removes it even if sleep outlives it.
          command: ['sleep', String(spec.ttlSeconds)],
          workingDir: '/workspace',
          env: [
            // uid 65532 has no home directory, and the root filesystem is read-only.
            { name: 'HOME', value: '/workspace' },
            { name: 'TMPDIR', value: '/tmp' },
          ],
          resources: { requests: resources, limits: { ...resources } },
          securityContext: {
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            privileged: false,
            capabilities: { drop: ['ALL'] },
          },
          volumeMounts: [
            { name: 'workspace', mountPath: '/workspace' },
            { name: 'tmp', mountPath: '/tmp' },
          ],
        },
      ],
      volumes: [
        { name: 'workspace', emptyDir: { sizeLimit: `${options.workspaceMi ?? 1024}Mi` } },
        { name: 'tmp', emptyDir: { sizeLimit: '256Mi' } },
      ],
    },
  };
}

/**
 * The sandbox's NetworkPolicy: selects its Pod by sandbox id, allows no ingress, and egress
 * only to the allowlisted CIDRs (TCP; all ports when a rule names none). Policies are IP-based:
 * DNS is not allowed unless the cluster DNS service is itself on the allowlist (and it only
 * gets TCP here), so agents should use addresses or pre-resolved hosts.
 */
export function sandboxNetworkPolicy(spec: SandboxSpec, options: SandboxObjectOptions): V1NetworkPolicy {
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: options.sandboxId,
      namespace: options.namespace,
      labels: sandboxLabels(spec, options.sandboxId),
    },
    spec: {
      podSelector: { matchLabels: { [SANDBOX_ID_LABEL]: options.sandboxId } },
      policyTypes: ['Ingress', 'Egress'],
      ingress: [],
      egress: spec.egress === 'none' ? [] : spec.egress.allow.map(egressRule),
    },
  };
}

function egressRule(rule: { cidr: string; ports?: number[] }): V1NetworkPolicyEgressRule {
  return {
    to: [{ ipBlock: { cidr: rule.cidr } }],
    ...(rule.ports && rule.ports.length > 0
      ? { ports: rule.ports.map((port) => ({ protocol: 'TCP', port })) }
      : {}),
  };
}

/**
 * Checks a spec before anything reaches the cluster, so a bad field is a SandboxSpecError
 * naming it rather than a 422 from the API server.
 */
export function checkKubernetesSpec(spec: SandboxSpec, defaultImage: string): void {
  if (!LABEL_VALUE.test(spec.taskId) || spec.taskId === '') {
    throw new SandboxSpecError('taskId must be a label value (at most 63 of A-Z a-z 0-9 - _ .)', 'taskId');
  }
  for (const field of ['cpu', 'memory', 'ttlSeconds'] as const) {
    if (!Number.isSafeInteger(spec[field]) || spec[field] <= 0) {
      throw new SandboxSpecError(`${field} must be a positive whole number`, field);
    }
  }
  if (!isImageReference(spec.image ?? defaultImage)) {
    throw new SandboxSpecError(`image is not an image reference: "${spec.image}"`, 'image');
  }
  if (spec.egress !== 'none') {
    for (const rule of spec.egress.allow) checkEgressRule(rule);
  }
}

function checkEgressRule(rule: { cidr: string; ports?: number[] }): void {
  const [address = '', bits, ...rest] = rule.cidr.split('/');
  const family = isIP(address);
  const max = family === 6 ? 128 : 32;
  if (family === 0 || rest.length > 0 || !/^\d{1,3}$/.test(bits ?? '') || Number(bits) > max) {
    throw new SandboxSpecError(`egress cidr "${rule.cidr}" is not an address/prefix-length block`, 'egress');
  }
  for (const port of rule.ports ?? []) {
    if (!Number.isInteger(port) || port < 1 || port > 65_535) {
      throw new SandboxSpecError(`egress port ${port} is not from 1 to 65535`, 'egress');
    }
  }
}
