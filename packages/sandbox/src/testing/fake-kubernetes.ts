/**
 * A fake Kubernetes API server for tests: no cluster runs where the tests run, yet the provider
 * must be exercised through the real client library (HTTP, JSON, WebSocket exec). The fake
 * implements only the endpoints the Kubernetes sandbox provider calls, and behaves like the
 * real API server where the provider could notice: schema validation (422), name collisions
 * (409), unknown names (404), RBAC outside the one namespace (403), pod phases, the exec
 * WebSocket channel protocol and the kubelet's status frame.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isIP } from 'node:net';
import { tmpdir } from 'node:os';
import type { Duplex } from 'node:stream';
import { KubeConfig } from '@kubernetes/client-node';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1';
import { Pod } from 'kubernetes-models/v1';
import { type WebSocket, WebSocketServer } from 'ws';
import { stringify as toYaml } from 'yaml';

/** One request the fake received, as the API server saw it. */
export interface RecordedRequest {
  method: string;
  path: string;
  /** Repeated parameters (exec's `command`) become arrays. */
  query: Record<string, string | string[]>;
  /** Parsed JSON body, when there was one. */
  body?: unknown;
  /** True for a WebSocket upgrade (exec). */
  upgrade: boolean;
  /** The HTTP status the fake answered (101 for an accepted upgrade). */
  status: number;
}

/** An RBAC attribute: what one request needs permission for. */
export interface Permission {
  /** '' for the core group. */
  apiGroup: string;
  /** `pods`, `pods/exec`, `networkpolicies`. */
  resource: string;
  verb: string;
}

/** A Role rule, as in rbac.authorization.k8s.io/v1 (no resourceNames). */
export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
}

/** What an exec handler produces; a thrown error becomes the kubelet's InternalError status. */
export interface ExecOutcome {
  stdout?: string | Buffer;
  stderr?: string | Buffer;
  exitCode: number;
}

/**
 * Runs one exec in place of the container runtime. `stdin` is complete (the fake waits for the
 * client's end of stdin) when the client asked for stdin; `signal` aborts when the client hangs up.
 */
export type ExecHandler = (
  pod: FakePod,
  argv: string[],
  stdin: Buffer,
  signal: AbortSignal,
) => ExecOutcome | Promise<ExecOutcome>;

/** A stored object: plain JSON, as the API server keeps it. */
// biome-ignore lint/suspicious/noExplicitAny: objects are arbitrary JSON validated against the schema.
export type FakePod = Record<string, any>;

export interface FakeKubernetesOptions {
  /** The one namespace the fake's service account may use; others answer 403. Default `devart`. */
  namespace?: string;
  /** Bearer token the fake requires. Default `fake-token`. */
  token?: string;
  /** A pod reports Pending to this many single-pod GETs, then Running. Default 1 (0 with runningAfterMs). */
  runningAfterGets?: number;
  /** A pod turns Running this long after creation (fake clock), when set. */
  runningAfterMs?: number;
  /** Runs exec commands; by default argv really runs as a child process on the host. */
  exec?: ExecHandler;
  /** Exec subprotocols the server accepts, best first. Default v5 then v4, like Kubernetes 1.30+. */
  protocols?: string[];
  /** When set, every request must be allowed by these rules (403 otherwise), like RBAC with a Role. */
  rules?: PolicyRule[];
}

export interface FakeKubernetes {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly namespace: string;
  readonly token: string;
  /** Every request, in arrival order. */
  readonly requests: RecordedRequest[];
  readonly pods: Map<string, FakePod>;
  readonly networkPolicies: Map<string, FakePod>;
  /** A kubeconfig (token auth, plain http) whose current context points at the fake. */
  kubeConfig(): KubeConfig;
  kubeConfigYaml(): string;
  /** The kubeconfig as KUBE_CONFIG_DATA expects it. */
  kubeConfigBase64(): string;
  /** Test hook: force a pod's phase (and reason), as the kubelet would report it. */
  setPodPhase(name: string, phase: string, reason?: string, message?: string): void;
  /** Test hook: report the container as waiting (ErrImagePull, CreateContainerConfigError, …). */
  setContainerWaiting(name: string, reason: string, message?: string): void;
  /** Moves the fake's clock forward (activeDeadlineSeconds, runningAfterMs). */
  advanceClock(ms: number): void;
  /** The RBAC attributes of every request so far, deduplicated. */
  permissionsUsed(): Permission[];
  close(): Promise<void>;
}

const CORE = '/api/v1/namespaces/';
const NETWORKING = '/apis/networking.k8s.io/v1/namespaces/';
const ROUTE =
  /^\/(?:api\/v1|apis\/networking\.k8s\.io\/v1)\/namespaces\/([^/]+)\/(pods|networkpolicies)(?:\/([^/]+)(?:\/(exec))?)?$/;
const DNS_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const LABEL_NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/;
const SERVICE_ACCOUNT = 'system:serviceaccount:devart:devart-api';

/** What one parsed request addresses. */
interface Target {
  namespace: string;
  resource: 'pods' | 'networkpolicies';
  name?: string;
  exec: boolean;
}

/** A response the handler throws or returns: status code plus JSON body. */
class Answer {
  constructor(
    readonly code: number,
    readonly body: unknown,
  ) {}
}

/** The kind of object each resource holds, for Status messages and validation. */
const KINDS = {
  pods: { kind: 'Pod', apiVersion: 'v1', group: '', model: Pod },
  networkpolicies: {
    kind: 'NetworkPolicy',
    apiVersion: 'networking.k8s.io/v1',
    group: 'networking.k8s.io',
    model: NetworkPolicy,
  },
} as const;

/** A Kubernetes `Status` failure, the body of every error answer. */
function statusFailure(
  code: number,
  reason: string,
  message: string,
  details?: Record<string, unknown>,
): Answer {
  return new Answer(code, {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    ...(details ? { details } : {}),
    code,
  });
}

/**
 * The RBAC attributes a request needs, as the API server's authorizer derives them: POST →
 * create, GET on an item → get, GET on a collection → list (watch with `watch=true`),
 * DELETE → delete. An exec WebSocket is a GET, so it needs `get` on pods/exec; since
 * Kubernetes 1.35 (AuthorizePodWebsocketUpgradeCreatePermission) it also needs `create`.
 */
export function permissionsFor(request: Pick<RecordedRequest, 'method' | 'path' | 'query'>): Permission[] {
  const match = ROUTE.exec(request.path);
  if (!match) return [];
  const [, , resource, name, exec] = match;
  const apiGroup = resource === 'networkpolicies' ? 'networking.k8s.io' : '';
  if (exec) {
    return [
      { apiGroup, resource: 'pods/exec', verb: 'get' },
      { apiGroup, resource: 'pods/exec', verb: 'create' },
    ];
  }
  return [{ apiGroup, resource: resource!, verb: verbOf(request.method, name !== undefined, request.query) }];
}

function verbOf(method: string, item: boolean, query: Record<string, string | string[]>): string {
  if (method === 'POST') return 'create';
  if (method === 'DELETE') return item ? 'delete' : 'deletecollection';
  if (method === 'PUT') return 'update';
  if (method === 'PATCH') return 'patch';
  if (item) return 'get';
  return query.watch === 'true' || query.watch === '1' ? 'watch' : 'list';
}

function allowedBy(rules: PolicyRule[], permission: Permission): boolean {
  return rules.some(
    (rule) =>
      (rule.apiGroups ?? []).some((g) => g === '*' || g === permission.apiGroup) &&
      (rule.resources ?? []).some((r) => r === '*' || r === permission.resource) &&
      rule.verbs.some((v) => v === '*' || v === permission.verb),
  );
}

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
    setPodPhase: (name, phase, reason, message) => state.setPodPhase(name, phase, reason, message),
    setContainerWaiting: (name, reason, message) => state.setContainerWaiting(name, reason, message),
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

function uniquePermissions(permissions: Permission[]): Permission[] {
  const seen = new Map<string, Permission>();
  for (const p of permissions) seen.set(`${p.apiGroup}|${p.resource}|${p.verb}`, p);
  return [...seen.values()];
}

/** Everything the fake stores, and the request handlers that read and change it. */
class FakeState {
  readonly namespace: string;
  readonly token: string;
  readonly requests: RecordedRequest[] = [];
  readonly stores = { pods: new Map<string, FakePod>(), networkpolicies: new Map<string, FakePod>() };
  clockOffset = 0;
  private resourceVersion = 1000;
  private readonly podGets = new Map<string, number>();
  private readonly execs = new Set<{ ws: WebSocket; abort: AbortController; pod: string }>();
  /** Pods a test put in Pending: the fake's own Pending → Running step leaves them alone. */
  private readonly held = new Set<string>();
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
  }

  now(): number {
    return Date.now() + this.clockOffset;
  }

  async handleHttp(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: queryOf(url),
      upgrade: false,
      status: 0,
    };
    this.requests.push(record);
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

  /** Authentication, then authorization, then the resource handler: the API server's order. */
  private route(req: IncomingMessage, record: RecordedRequest): Answer {
    this.authenticate(req);
    const target = this.resolve(record);
    if (target.exec) throw statusFailure(400, 'BadRequest', 'Upgrade request required');
    const store = this.stores[target.resource];
    if (target.name === undefined) {
      if (record.method === 'GET') return this.list(target, record.query);
      if (record.method === 'POST') return this.create(target, record.body);
    } else {
      if (record.method === 'GET') return this.read(target, target.name);
      if (record.method === 'DELETE') return this.remove(target, target.name, store);
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

  private list(target: Target, query: Record<string, string | string[]>): Answer {
    if (query.watch === 'true' || query.watch === '1') {
      throw statusFailure(400, 'BadRequest', 'the fake API server does not implement watch');
    }
    const selector = parseSelector(typeof query.labelSelector === 'string' ? query.labelSelector : '');
    const items = [...this.stores[target.resource].values()]
      .map((object) => (target.resource === 'pods' ? this.refreshPod(object) : object))
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
    const { kind, apiVersion, model } = KINDS[target.resource];
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      throw statusFailure(400, 'BadRequest', `the body of the request was not a ${kind} object`);
    }
    const object = structuredClone(body) as FakePod;
    if ((object.kind ?? kind) !== kind || (object.apiVersion ?? apiVersion) !== apiVersion) {
      throw statusFailure(
        400,
        'BadRequest',
        `the API version in the data (${object.apiVersion}) does not match`,
      );
    }
    object.metadata ??= {};
    if (object.metadata.namespace !== undefined && object.metadata.namespace !== target.namespace) {
      throw statusFailure(
        400,
        'BadRequest',
        'the namespace of the provided object does not match the namespace sent on the request',
      );
    }
    const name = String(object.metadata.name ?? '');
    validateObject(kind, name, object, model);
    const store = this.stores[target.resource];
    if (store.has(name)) {
      throw statusFailure(409, 'AlreadyExists', `${target.resource} "${name}" already exists`, {
        name,
        group: KINDS[target.resource].group,
        kind: target.resource,
      });
    }
    const stored = this.stamp(object, target.namespace, kind, apiVersion);
    if (target.resource === 'pods') stored.status = this.pendingStatus();
    store.set(name, stored);
    return new Answer(201, stored);
  }

  private stamp(object: FakePod, namespace: string, kind: string, apiVersion: string): FakePod {
    return {
      ...object,
      kind,
      apiVersion,
      metadata: {
        ...object.metadata,
        namespace,
        uid: randomUUID(),
        resourceVersion: String(++this.resourceVersion),
        generation: 1,
        creationTimestamp: new Date(this.now()).toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    };
  }

  private pendingStatus(): FakePod {
    return {
      phase: 'Pending',
      startTime: new Date(this.now()).toISOString().replace(/\.\d+Z$/, 'Z'),
      containerStatuses: [],
    };
  }

  private read(target: Target, name: string): Answer {
    const object = this.stores[target.resource].get(name);
    if (!object) throw notFound(target.resource, name);
    if (target.resource !== 'pods') return new Answer(200, object);
    this.podGets.set(name, (this.podGets.get(name) ?? 0) + 1);
    return new Answer(200, this.refreshPod(object));
  }

  /** Pods return the deleted object; other kinds a Success Status (the registry's ReturnDeletedObject). */
  private remove(target: Target, name: string, store: Map<string, FakePod>): Answer {
    const object = store.get(name);
    if (!object) throw notFound(target.resource, name);
    store.delete(name);
    this.podGets.delete(name);
    if (target.resource === 'pods') {
      object.metadata.deletionTimestamp = new Date(this.now()).toISOString().replace(/\.\d+Z$/, 'Z');
      object.metadata.deletionGracePeriodSeconds = 0;
      this.held.delete(name);
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

  /** Advances a pod's phase as the kubelet would have by now: Pending → Running → DeadlineExceeded. */
  private refreshPod(pod: FakePod): FakePod {
    const status = pod.status;
    const started = Date.parse(status.startTime);
    const deadline = pod.spec?.activeDeadlineSeconds;
    const active = status.phase === 'Pending' || status.phase === 'Running';
    if (active && typeof deadline === 'number' && this.now() - started >= deadline * 1000) {
      this.updatePhase(
        pod.metadata.name,
        'Failed',
        'DeadlineExceeded',
        `Pod was active on the node longer than the specified deadline`,
      );
    } else if (
      status.phase === 'Pending' &&
      !this.held.has(pod.metadata.name) &&
      this.shouldRun(pod, started)
    ) {
      this.updatePhase(pod.metadata.name, 'Running');
    }
    return pod;
  }

  private shouldRun(pod: FakePod, started: number): boolean {
    const { runningAfterGets, runningAfterMs } = this.options;
    const gets = this.podGets.get(pod.metadata.name) ?? 0;
    const afterGets = runningAfterGets ?? (runningAfterMs === undefined ? 1 : 0);
    const timeReached = runningAfterMs === undefined || this.now() - started >= runningAfterMs;
    return gets > afterGets && timeReached;
  }

  /** A test's phase stays put; the fake's own transitions go through updatePhase. */
  setPodPhase(name: string, phase: string, reason?: string, message?: string): void {
    if (phase === 'Pending') this.held.add(name);
    else this.held.delete(name);
    this.updatePhase(name, phase, reason, message);
  }

  private updatePhase(name: string, phase: string, reason?: string, message?: string): void {
    const pod = this.stores.pods.get(name);
    if (!pod) throw new Error(`no pod ${name}`);
    const containerName = pod.spec.containers[0]?.name ?? 'main';
    const state =
      phase === 'Running'
        ? { running: { startedAt: new Date(this.now()).toISOString() } }
        : phase === 'Pending'
          ? { waiting: { reason: 'ContainerCreating' } }
          : { terminated: { exitCode: phase === 'Succeeded' ? 0 : 137, reason: reason ?? 'Error' } };
    pod.status = {
      phase,
      startTime: pod.status.startTime,
      ...(reason ? { reason } : {}),
      ...(message ? { message } : {}),
      containerStatuses: [
        { name: containerName, image: pod.spec.containers[0]?.image, ready: phase === 'Running', state },
      ],
    };
    pod.metadata.resourceVersion = String(++this.resourceVersion);
  }

  setContainerWaiting(name: string, reason: string, message?: string): void {
    this.setPodPhase(name, 'Pending');
    const pod = this.stores.pods.get(name)!;
    pod.status.containerStatuses[0].state = { waiting: { reason, ...(message ? { message } : {}) } };
  }

  /** The exec subresource: checks like the API server, then the WebSocket channel protocol. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const record: RecordedRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: queryOf(url),
      upgrade: true,
      status: 0,
    };
    this.requests.push(record);
    let pod: FakePod;
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
  ): { pod: FakePod; argv: string[] } {
    const stored = this.stores.pods.get(name);
    if (!stored) throw notFound('pods', name);
    const pod = this.refreshPod(stored);
    const argv = ([] as string[]).concat(query.command ?? []);
    if (argv.length === 0) throw statusFailure(400, 'BadRequest', 'you must specify at least 1 command');
    const container = typeof query.container === 'string' ? query.container : pod.spec.containers[0].name;
    if (!pod.spec.containers.some((c: FakePod) => c.name === container)) {
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
    pod: FakePod,
    argv: string[],
    query: Record<string, string | string[]>,
  ): void {
    const abort = new AbortController();
    const entry = { ws, abort, pod: String(pod.metadata.name) };
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

/** One exec stream: stdin from the client, stdout/stderr/status frames to it. */
class ExecSession {
  private stdinChunks: Buffer[] = [];
  private stdinDone: Promise<void>;
  private endStdin: () => void = () => {};
  private child?: ChildProcess;

  constructor(
    private readonly ws: WebSocket,
    private readonly signal: AbortSignal,
    wantsStdin: boolean,
  ) {
    this.stdinDone = wantsStdin ? new Promise((resolve) => (this.endStdin = resolve)) : Promise.resolve();
    signal.addEventListener('abort', () => this.endStdin());
    ws.on('message', (data: Buffer, isBinary) => this.onFrame(isBinary ? data : Buffer.from(data)));
  }

  private onFrame(frame: Buffer): void {
    const channel = frame[0];
    if (channel === 0) {
      const chunk = frame.subarray(1);
      if (this.child?.stdin) this.child.stdin.write(chunk);
      else this.stdinChunks.push(chunk);
    } else if (channel === 255 && frame[1] === 0) {
      // v5.channel.k8s.io: the client closed its stdin.
      this.child?.stdin?.end();
      this.endStdin();
    }
    // Channel 4 (terminal resize) means nothing without a TTY.
  }

  send(channel: number, data: Buffer): void {
    if (this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(Buffer.concat([Buffer.from([channel]), data]));
  }

  async runHandler(handler: ExecHandler, pod: FakePod, argv: string[]): Promise<number> {
    await this.stdinDone;
    if (this.signal.aborted) return 137;
    const outcome = await handler(pod, argv, Buffer.concat(this.stdinChunks), this.signal);
    this.sendChunked(1, outcome.stdout);
    this.sendChunked(2, outcome.stderr);
    return outcome.exitCode;
  }

  private sendChunked(channel: number, data: string | Buffer | undefined): void {
    const buffer = typeof data === 'string' ? Buffer.from(data) : (data ?? Buffer.alloc(0));
    for (let at = 0; at < buffer.length; at += 32 * 1024)
      this.send(channel, buffer.subarray(at, at + 32 * 1024));
  }

  /** Realism by default: the command really runs, in its own process group so a hang-up kills the tree. */
  runOnHost(argv: string[]): Promise<number> {
    return new Promise((resolve, reject) => {
      const child = spawn(argv[0]!, argv.slice(1), {
        cwd: tmpdir(),
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        stdio: ['pipe', 'pipe', 'pipe'],
        detached: true,
      });
      this.child = child;
      child.stdin.on('error', () => {}); // EPIPE when the command does not read its stdin
      for (const chunk of this.stdinChunks) child.stdin.write(chunk);
      this.stdinChunks = [];
      // Without v5 there is no stdin close frame: stdin then ends only with the connection.
      child.stdout.on('data', (chunk: Buffer) => this.send(1, chunk));
      child.stderr.on('data', (chunk: Buffer) => this.send(2, chunk));
      const kill = () => {
        if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, 'SIGKILL');
      };
      this.signal.addEventListener('abort', kill);
      child.on('error', (error) => reject(error));
      child.on('close', (code, signal) => {
        this.signal.removeEventListener('abort', kill);
        resolve(code ?? 128 + signalNumber(signal));
      });
      this.stdinDone.then(() => child.stdin.end());
    });
  }

  /** The kubelet's status frame on channel 3, then the server closes the stream. */
  finish(argv: string[], exitCode: number): void {
    const status =
      exitCode === 0
        ? { metadata: {}, status: 'Success' }
        : {
            metadata: {},
            status: 'Failure',
            message: `command terminated with non-zero exit code: error executing command [${argv.join(' ')}], exit code ${exitCode}`,
            reason: 'NonZeroExitCode',
            details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
          };
    this.send(3, Buffer.from(JSON.stringify(status)));
    this.ws.close(1000);
  }

  /** A command that cannot start: the runtime's error comes back as an InternalError status. */
  fail(error: unknown): void {
    const detail =
      (error as NodeJS.ErrnoException).code === 'ENOENT'
        ? `exec: "${(error as { path?: string }).path}": executable file not found in $PATH`
        : (error as Error).message;
    const message = `error executing command in container: OCI runtime exec failed: exec failed: unable to start container process: ${detail}: unknown`;
    const status = {
      metadata: {},
      status: 'Failure',
      message: `Internal error occurred: ${message}`,
      reason: 'InternalError',
      details: { causes: [{ message }] },
      code: 500,
    };
    this.send(3, Buffer.from(JSON.stringify(status)));
    this.ws.close(1000);
  }
}

function signalNumber(signal: NodeJS.Signals | null): number {
  const numbers: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15, SIGPIPE: 13 };
  return signal ? (numbers[signal] ?? 1) : 1;
}

/** Runs the Kubernetes schema, then the checks the schema cannot express (names, labels, CIDRs). */
function validateObject(
  kind: string,
  name: string,
  object: FakePod,
  model: typeof Pod | typeof NetworkPolicy,
): void {
  const causes: { field: string; message: string }[] = [];
  try {
    new model(object).validate();
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
  if (kind === 'NetworkPolicy') causes.push(...cidrProblems(object));
  if (kind === 'Pod') causes.push(...quantityProblems(object));
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

function cidrProblems(policy: FakePod): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  (policy.spec?.egress ?? []).forEach((rule: FakePod, i: number) => {
    (rule.to ?? []).forEach((peer: FakePod, j: number) => {
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
function quantityProblems(pod: FakePod): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  const negative = (value: unknown) => typeof value === 'string' && value.trim().startsWith('-');
  (pod.spec?.containers ?? []).forEach((container: FakePod, i: number) => {
    for (const kind of ['requests', 'limits']) {
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
  (pod.spec?.volumes ?? []).forEach((volume: FakePod, i: number) => {
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

function notFound(resource: string, name: string): Answer {
  return statusFailure(404, 'NotFound', `${resource} "${name}" not found`, { name, kind: resource });
}

/** Equality-based label selectors (`a=b,c!=d,e,!f`); set-based ones are a 400, as if malformed. */
function parseSelector(selector: string): (labels: Record<string, string>) => boolean {
  const tests = selector
    .split(',')
    .map((part) => part.trim())
    .filter(Boolean)
    .map((part) => {
      const match = /^(!?)([^=!\s]+)\s*(?:(==|=|!=)\s*(\S*))?$/.exec(part);
      if (!match) throw statusFailure(400, 'BadRequest', `unable to parse requirement: "${part}"`);
      const [, not, key, op, value] = match;
      if (op === undefined) return (l: Record<string, string>) => key! in l !== (not === '!');
      if (not) throw statusFailure(400, 'BadRequest', `unable to parse requirement: "${part}"`);
      return op === '!='
        ? (l: Record<string, string>) => l[key!] !== value
        : (l: Record<string, string>) => l[key!] === value;
    });
  return (labels) => tests.every((test) => test(labels));
}

function queryOf(url: URL): Record<string, string | string[]> {
  const query: Record<string, string | string[]> = {};
  for (const key of new Set(url.searchParams.keys())) {
    const values = url.searchParams.getAll(key);
    query[key] = values.length === 1 ? values[0]! : values;
  }
  return query;
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    throw statusFailure(400, 'BadRequest', `the body is not JSON: ${(error as Error).message}`);
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** A refused upgrade is a plain HTTP response on the raw socket, as the API server sends it. */
function rejectUpgrade(socket: Duplex, answer: Answer): void {
  const body = JSON.stringify(answer.body);
  socket.end(
    `HTTP/1.1 ${answer.code} ${statusText(answer.code)}\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}

function statusText(code: number): string {
  return (
    (
      { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found' } as Record<
        number,
        string
      >
    )[code] ?? 'Error'
  );
}
