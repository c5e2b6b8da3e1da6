/**
 * The fake API server's store and request handlers: authentication, RBAC, then create, get,
 * list and delete of Pods and NetworkPolicies, and the pods/exec WebSocket upgrade.
 */
import { randomUUID } from 'node:crypto';
import type { createServer, IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { INetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import type { IPod } from 'kubernetes-models/v1';
import { type WebSocket, WebSocketServer } from 'ws';
import {
  Answer,
  notFound,
  parseJson,
  parseSelector,
  queryOf,
  readBody,
  rejectUpgrade,
  statusFailure,
} from './answers';
import { ExecSession } from './exec-session';
import { apiTime, FakeKubelet } from './kubelet';
import { allowedBy, CORE, NETWORKING, permissionsFor, ROUTE, SERVICE_ACCOUNT } from './rbac';
import type {
  FakeKubernetesOptions,
  RecordedRequest,
  StoredMeta,
  StoredNetworkPolicy,
  StoredPod,
} from './types';
import { KINDS, validateObject } from './validation';

/** What one parsed request addresses. */
interface Target {
  namespace: string;
  resource: 'pods' | 'networkpolicies';
  name?: string;
  exec: boolean;
}

type StoredObject = StoredPod | StoredNetworkPolicy;

/** Everything the fake stores, and the request handlers that read and change it. */
export class FakeState {
  readonly namespace: string;
  readonly token: string;
  readonly requests: RecordedRequest[] = [];
  readonly stores = {
    pods: new Map<string, StoredPod>(),
    networkpolicies: new Map<string, StoredNetworkPolicy>(),
  };
  readonly kubelet: FakeKubelet;
  clockOffset = 0;
  private resourceVersion = 1000;
  private readonly execs = new Set<{ ws: WebSocket; abort: AbortController; pod: string }>();
  private readonly wss = new WebSocketServer({
    noServer: true,
    // The client offers v5…v1 best first; like the API server, take the first one we speak.
    handleProtocols: (offered) => [...offered].find((p) => this.protocols.includes(p)) ?? false,
  });
  private readonly protocols: string[];

  constructor(private readonly options: FakeKubernetesOptions) {
    this.namespace = options.namespace ?? 'devart';
    this.token = options.token ?? 'fake-token';
    this.protocols = options.protocols ?? ['v5.channel.k8s.io', 'v4.channel.k8s.io'];
    this.kubelet = new FakeKubelet(
      this.stores.pods,
      options,
      () => this.now(),
      () => String(++this.resourceVersion),
    );
  }

  now(): number {
    return Date.now() + this.clockOffset;
  }

  async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const record = this.record(req, false);
    const text = await readBody(req);
    let answer: Answer;
    try {
      if (text) record.body = parseJson(text);
      answer = this.route(req, record);
    } catch (error) {
      if (!(error instanceof Answer)) throw error;
      answer = error;
    }
    record.status = answer.code;
    res.writeHead(answer.code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(answer.body));
  }

  private record(req: IncomingMessage, upgrade: boolean): RecordedRequest {
    const url = new URL(req.url ?? '/', 'http://fake');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: queryOf(url),
      upgrade,
      status: 0,
    };
    this.requests.push(record);
    return record;
  }

  /** Authentication, then authorization, then the resource handler: the API server's order. */
  private route(req: IncomingMessage, record: RecordedRequest): Answer {
    this.authenticate(req);
    const target = this.resolve(record);
    if (target.exec) throw statusFailure(400, 'BadRequest', 'Upgrade request required');
    if (target.name === undefined) {
      if (record.method === 'GET') return this.list(target, record.query);
      if (record.method === 'POST') return this.create(target, record.body);
    } else {
      if (record.method === 'GET') return this.read(target, target.name);
      if (record.method === 'DELETE') return this.remove(target, target.name);
    }
    throw statusFailure(
      405,
      'MethodNotAllowed',
      `the server does not allow this method on the requested resource`,
    );
  }

  private authenticate(req: IncomingMessage): void {
    if (req.headers.authorization !== `Bearer ${this.token}`) {
      throw statusFailure(401, 'Unauthorized', 'Unauthorized');
    }
  }

  /** Parses the path and applies RBAC: the service account may act only in its own namespace. */
  private resolve(record: RecordedRequest): Target {
    const match = ROUTE.exec(record.path);
    if (!match || (!record.path.startsWith(CORE) && !record.path.startsWith(NETWORKING))) {
      throw statusFailure(404, 'NotFound', 'the server could not find the requested resource');
    }
    const [, namespace, resource, name, exec] = match;
    const expectedPrefix = resource === 'pods' ? CORE : NETWORKING;
    if (!record.path.startsWith(expectedPrefix)) {
      throw statusFailure(404, 'NotFound', 'the server could not find the requested resource');
    }
    for (const permission of permissionsFor(record)) {
      const allowed =
        namespace === this.namespace && (!this.options.rules || allowedBy(this.options.rules, permission));
      if (!allowed) {
        const group = permission.apiGroup;
        throw statusFailure(
          403,
          'Forbidden',
          `${permission.resource} is forbidden: User "${SERVICE_ACCOUNT}" cannot ${permission.verb} resource ` +
            `"${permission.resource}" in API group "${group}" in the namespace "${namespace}"`,
          { kind: permission.resource },
        );
      }
    }
    return {
      namespace: namespace!,
      resource: resource as Target['resource'],
      name: name === undefined ? undefined : decodeURIComponent(name),
      exec: exec !== undefined,
    };
  }

  /** The stored objects of one resource, Pods brought up to date first. */
  private objects(resource: Target['resource']): StoredObject[] {
    if (resource === 'pods') return [...this.stores.pods.values()].map((pod) => this.kubelet.refresh(pod));
    return [...this.stores.networkpolicies.values()];
  }

  private list(target: Target, query: Record<string, string | string[]>): Answer {
    if (query.watch === 'true' || query.watch === '1') {
      throw statusFailure(400, 'BadRequest', 'the fake API server does not implement watch');
    }
    const selector = parseSelector(typeof query.labelSelector === 'string' ? query.labelSelector : '');
    const items = this.objects(target.resource)
      .filter((object) => selector(object.metadata.labels ?? {}))
      .map(({ kind: _kind, apiVersion: _apiVersion, ...rest }) => rest);
    const { kind, apiVersion } = KINDS[target.resource];
    return new Answer(200, {
      kind: `${kind}List`,
      apiVersion,
      metadata: { resourceVersion: String(this.resourceVersion) },
      items,
    });
  }

  private create(target: Target, body: unknown): Answer {
    const { kind, apiVersion, group } = KINDS[target.resource];
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw statusFailure(400, 'BadRequest', `the body of the request was not a ${kind} object`);
    }
    // Only a shape to read the fields below; validateObject is what checks it.
    const object = structuredClone(body) as Partial<IPod | INetworkPolicy>;
    if ((object.kind ?? kind) !== kind || (object.apiVersion ?? apiVersion) !== apiVersion) {
      throw statusFailure(
        400,
        'BadRequest',
        `the API version in the data (${object.apiVersion}) does not match`,
      );
    }
    const metadata = object.metadata ?? {};
    if (metadata.namespace !== undefined && metadata.namespace !== target.namespace) {
      throw statusFailure(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    const name = String(metadata.name ?? '');
    // The URL decides kind and apiVersion, as the API server defaults them from it.
    const typed = { ...object, kind, apiVersion, metadata } as IPod | INetworkPolicy;
    validateObject(name, typed);
    if (this.stores[target.resource].has(name)) {
      throw statusFailure(409, 'AlreadyExists', `${target.resource} "${name}" already exists`, {
        name,
        group,
        kind: target.resource,
      });
    }
    const stamped = { ...typed, metadata: this.stampMeta(metadata, name, target.namespace) };
    if (stamped.kind === 'Pod') {
      const pod = { ...stamped, spec: stamped.spec!, status: this.kubelet.pendingStatus() };
      this.stores.pods.set(name, pod);
      return new Answer(201, pod);
    }
    this.stores.networkpolicies.set(name, stamped as StoredNetworkPolicy);
    return new Answer(201, stamped);
  }

  /** What the API server adds to every object it stores. */
  private stampMeta(metadata: NonNullable<IPod['metadata']>, name: string, namespace: string): StoredMeta {
    return {
      ...metadata,
      name,
      namespace,
      uid: randomUUID(),
      resourceVersion: String(++this.resourceVersion),
      generation: 1,
      creationTimestamp: apiTime(this.now()),
    };
  }

  private read(target: Target, name: string): Answer {
    if (target.resource === 'networkpolicies') {
      const policy = this.stores.networkpolicies.get(name);
      if (!policy) throw notFound(target.resource, name);
      return new Answer(200, policy);
    }
    const pod = this.stores.pods.get(name);
    if (!pod) throw notFound(target.resource, name);
    return new Answer(200, this.kubelet.read(pod));
  }

  /** Pods return the deleted object; other kinds a Success Status (the registry's ReturnDeletedObject). */
  private remove(target: Target, name: string): Answer {
    const store: Map<string, StoredObject> = this.stores[target.resource];
    const object = store.get(name);
    if (!object) throw notFound(target.resource, name);
    store.delete(name);
    if (object.kind === 'Pod') {
      object.metadata.deletionTimestamp = apiTime(this.now());
      object.metadata.deletionGracePeriodSeconds = 0;
      this.kubelet.forget(name);
      // Deleting a pod kills its processes, and with them any exec stream into it.
      for (const exec of this.execs) if (exec.pod === name) exec.abort.abort();
      return new Answer(200, object);
    }
    return new Answer(200, {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Success',
      details: { name, group: KINDS[target.resource].group, kind: target.resource, uid: object.metadata.uid },
    });
  }

  /** The exec subresource: checks like the API server, then the WebSocket channel protocol. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const record = this.record(req, true);
    let pod: StoredPod;
    let argv: string[];
    try {
      this.authenticate(req);
      const target = this.resolve(record);
      if (!target.exec || target.name === undefined) {
        throw statusFailure(400, 'BadRequest', 'only pods/exec takes a WebSocket');
      }
      ({ pod, argv } = this.execTarget(target.name, record.query));
    } catch (error) {
      if (!(error instanceof Answer)) throw error;
      record.status = error.code;
      rejectUpgrade(socket, error);
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      record.status = 101;
      this.runExec(ws, pod, argv, record.query);
    });
  }

  private execTarget(
    name: string,
    query: Record<string, string | string[]>,
  ): { pod: StoredPod; argv: string[] } {
    const stored = this.stores.pods.get(name);
    if (!stored) throw notFound('pods', name);
    const pod = this.kubelet.refresh(stored);
    const argv = ([] as string[]).concat(query.command ?? []);
    if (argv.length === 0) throw statusFailure(400, 'BadRequest', 'you must specify at least 1 command');
    const container = typeof query.container === 'string' ? query.container : pod.spec.containers[0]?.name;
    if (!pod.spec.containers.some((c) => c.name === container)) {
      throw statusFailure(400, 'BadRequest', `container ${container} is not valid for pod ${name}`);
    }
    if (pod.status.phase === 'Succeeded' || pod.status.phase === 'Failed') {
      throw statusFailure(
        400,
        'BadRequest',
        `cannot exec into a container in a completed pod; current phase is ${pod.status.phase}`,
      );
    }
    if (pod.status.phase !== 'Running') {
      throw statusFailure(
        400,
        'BadRequest',
        `unable to upgrade connection: container not found ("${container}")`,
      );
    }
    return { pod, argv };
  }

  private runExec(
    ws: WebSocket,
    pod: StoredPod,
    argv: string[],
    query: Record<string, string | string[]>,
  ): void {
    const abort = new AbortController();
    const entry = { ws, abort, pod: pod.metadata.name };
    this.execs.add(entry);
    const session = new ExecSession(ws, abort.signal, query.stdin === 'true');
    ws.on('close', () => {
      abort.abort();
      this.execs.delete(entry);
    });
    // Like the API server: one empty frame on the lowest writable channel says "connected".
    session.send(query.stdout === 'true' ? 1 : query.stderr === 'true' ? 2 : 3, Buffer.alloc(0));
    const run = this.options.exec
      ? session.runHandler(this.options.exec, pod, argv)
      : session.runOnHost(argv);
    run.then(
      (exitCode) => session.finish(argv, exitCode),
      (error: unknown) => session.fail(error),
    );
  }

  async close(server: ReturnType<typeof createServer>): Promise<void> {
    for (const { ws, abort } of this.execs) {
      abort.abort();
      ws.terminate();
    }
    this.wss.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}
