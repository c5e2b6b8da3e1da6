/**
 * A fake Kubernetes API server for tests: no cluster runs where the tests run, yet the provider
 * must be exercised through the real client library (HTTP, JSON, WebSocket exec). The fake
 * implements only the endpoints the Kubernetes sandbox provider calls, and behaves like the
 * real API server where the provider could notice: schema validation (422), name collisions
 * (409), unknown names (404), RBAC outside the one namespace (403), pod phases, the exec
 * WebSocket channel protocol and the kubelet's status frame.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { stringify as toYaml } from 'yaml';
import { statusFailure } from './answers';
import { FakeState } from './fake-state';
import { permissionsFor, uniquePermissions } from './rbac';
import type { FakeKubernetes, FakeKubernetesOptions } from './types';

/** Starts the fake on 127.0.0.1 with an ephemeral port. */
export async function startFakeKubernetes(options: FakeKubernetesOptions = {}): Promise<FakeKubernetes> {
  const state = new FakeState(options);
  const server = createServer((req, res) => {
    state.handleHttp(req, res).catch((error: unknown) => {
      res.writeHead(500, { 'content-type': 'application/json' });
      res.end(JSON.stringify(statusFailure(500, 'InternalError', String(error)).body));
    });
  });
  server.on('upgrade', (req, socket, head) => state.handleUpgrade(req, socket, head));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const kubeConfigYaml = () => fakeKubeConfigYaml(url, state.token, state.namespace);
  return {
    url,
    namespace: state.namespace,
    token: state.token,
    requests: state.requests,
    pods: state.stores.pods,
    networkPolicies: state.stores.networkpolicies,
    kubeConfigYaml,
    kubeConfig: () => {
      const kc = new KubeConfig();
      kc.loadFromString(kubeConfigYaml());
      return kc;
    },
    kubeConfigBase64: () => Buffer.from(kubeConfigYaml()).toString('base64'),
    setPodPhase: (name, phase, reason, message) => state.kubelet.setPodPhase(name, phase, reason, message),
    setContainerWaiting: (name, reason, message) => state.kubelet.setContainerWaiting(name, reason, message),
    advanceClock: (ms) => {
      state.clockOffset += ms;
    },
    permissionsUsed: () => uniquePermissions(state.requests.flatMap(permissionsFor)),
    close: () => state.close(server),
  };
}

/** A kubeconfig YAML for a plain-http API server with bearer-token auth. */
export function fakeKubeConfigYaml(server: string, token: string, namespace: string): string {
  return toYaml({
    apiVersion: 'v1',
    kind: 'Config',
    // client-node refuses a plain-http server unless TLS verification is off (there is no TLS).
    clusters: [{ name: 'fake', cluster: { server, 'insecure-skip-tls-verify': true } }],
    users: [{ name: 'fake', user: { token } }],
    contexts: [{ name: 'fake', context: { cluster: 'fake', user: 'fake', namespace } }],
    'current-context': 'fake',
  });
}
