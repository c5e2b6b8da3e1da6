/**
 * The API server's admission checks the fake repeats: the Kubernetes schema (kubernetes-models),
 * then what the schema cannot express (names, labels, CIDRs, quantities), answered as a 422.
 * Written apart from the provider's own checks on purpose, so the two can disagree in a test.
 */
import { isIP } from 'node:net';
import { type INetworkPolicy, NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { type IPod, Pod } from 'kubernetes-models/v1';
import { statusFailure } from './answers';

const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;

/** The kind of object each resource holds, for Status messages and validation. */
export const KINDS = {
  pods: { kind: 'Pod', apiVersion: 'v1', group: '' },
  networkpolicies: { kind: 'NetworkPolicy', apiVersion: 'networking.k8s.io/v1', group: 'networking.k8s.io' },
} as const;

/** Runs the Kubernetes schema, then the checks the schema cannot express (names, labels, CIDRs). */
export function validateObject(name: string, object: IPod | INetworkPolicy): void {
  const { kind } = object;
  const causes: { field: string; message: string }[] = [];
  try {
    (object.kind === 'Pod' ? new Pod(object) : new NetworkPolicy(object)).validate();
  } catch (error) {
    for (const message of (error as Error).message.split(', ')) {
      causes.push({
        field:
          message
            .split(' ')[0]
            ?.replace(/^data\/?/, '')
            .replaceAll('/', '.') ?? '',
        message,
      });
    }
  }
  if (!DNS_SUBDOMAIN.test(name)) {
    causes.push({
      field: 'metadata.name',
      message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain`,
    });
  }
  for (const [key, value] of Object.entries((object.metadata?.labels ?? {}) as Record<string, unknown>)) {
    if (!validLabelKey(key)) causes.push({ field: 'metadata.labels', message: `Invalid value: "${key}"` });
    if (typeof value !== 'string' || !LABEL_VALUE.test(value) || value.length > 63) {
      causes.push({ field: 'metadata.labels', message: `Invalid value: "${String(value)}"` });
    }
  }
  causes.push(...(object.kind === 'Pod' ? quantityProblems(object) : cidrProblems(object)));
  if (causes.length > 0) {
    const summary = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
    throw statusFailure(422, 'Invalid', `${kind} "${name}" is invalid: ${summary}`, {
      name,
      kind,
      causes: causes.map((c) => ({ reason: 'FieldValueInvalid', message: c.message, field: c.field })),
    });
  }
}

function validLabelKey(key: string): boolean {
  const slash = key.lastIndexOf('/');
  const name = slash === -1 ? key : key.slice(slash + 1);
  const prefix = slash === -1 ? undefined : key.slice(0, slash);
  return name.length <= 63 && LABEL_NAME.test(name) && (prefix === undefined || DNS_SUBDOMAIN.test(prefix));
}

function cidrProblems(policy: INetworkPolicy): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  (policy.spec?.egress ?? []).forEach((rule, i) => {
    (rule.to ?? []).forEach((peer, j) => {
      const cidr = peer.ipBlock?.cidr;
      if (cidr !== undefined && !validCidr(cidr)) {
        problems.push({
          field: `spec.egress[${i}].to[${j}].ipBlock.cidr`,
          message: `Invalid value: "${cidr}"`,
        });
      }
    });
  });
  return problems;
}

/** The API server refuses negative quantities in resources and emptyDir size limits. */
function quantityProblems(pod: IPod): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  const negative = (value: unknown) => typeof value === 'string' && value.trim().startsWith('-');
  (pod.spec?.containers ?? []).forEach((container, i) => {
    for (const kind of ['requests', 'limits'] as const) {
      for (const [name, value] of Object.entries(container.resources?.[kind] ?? {})) {
        if (negative(value)) {
          problems.push({
            field: `spec.containers[${i}].resources.${kind}[${name}]`,
            message: 'must be greater than or equal to 0',
          });
        }
      }
    }
  });
  (pod.spec?.volumes ?? []).forEach((volume, i) => {
    if (negative(volume.emptyDir?.sizeLimit)) {
      problems.push({
        field: `spec.volumes[${i}].emptyDir.sizeLimit`,
        message: 'SizeLimit field must be a valid resource quantity',
      });
    }
  });
  return problems;
}

function validCidr(cidr: string): boolean {
  const [address, bits, ...rest] = cidr.split('/');
  const family = isIP(address ?? '');
  if (rest.length > 0 || family === 0 || bits === undefined || !/^\d+$/.test(bits)) return false;
  return Number(bits) <= (family === 4 ? 32 : 128);
}
