/**
 * The fake's stand-in for the kubelet: moves stored Pods through their phases (Pending →
 * Running → Failed with DeadlineExceeded) on reads, by the fake's clock, unless a test holds them.
 */
import type { FakeKubernetesOptions, PodPhase, StoredPod } from './types';

/** Timestamps as the API server writes them: whole seconds, UTC. */
export function apiTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

export class FakeKubelet {
  private readonly podGets = new Map<string, number>();
  /** Pods a test put in Pending: the fake's own Pending → Running step leaves them alone. */
  private readonly held = new Set<string>();

  constructor(
    private readonly pods: Map<string, StoredPod>,
    private readonly options: Pick<FakeKubernetesOptions, 'runningAfterGets' | 'runningAfterMs'>,
    private readonly now: () => number,
    /** The next resourceVersion; the API server bumps it on every change. */
    private readonly nextVersion: () => string,
  ) {}

  /** The status of a Pod just created. */
  pendingStatus(): StoredPod['status'] {
    return { phase: 'Pending', startTime: apiTime(this.now()), containerStatuses: [] };
  }

  /** A single-pod GET: counts toward runningAfterGets, then refreshes. */
  read(pod: StoredPod): StoredPod {
    const name = pod.metadata.name;
    this.podGets.set(name, (this.podGets.get(name) ?? 0) + 1);
    return this.refresh(pod);
  }

  forget(name: string): void {
    this.podGets.delete(name);
    this.held.delete(name);
  }

  /** Advances a pod's phase as the kubelet would have by now: Pending → Running → DeadlineExceeded. */
  refresh(pod: StoredPod): StoredPod {
    const status = pod.status;
    const started = Date.parse(status.startTime ?? '');
    const deadline = pod.spec.activeDeadlineSeconds;
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

  private shouldRun(pod: StoredPod, started: number): boolean {
    const { runningAfterGets, runningAfterMs } = this.options;
    const gets = this.podGets.get(pod.metadata.name) ?? 0;
    const afterGets = runningAfterGets ?? (runningAfterMs === undefined ? 1 : 0);
    const timeReached = runningAfterMs === undefined || this.now() - started >= runningAfterMs;
    return gets > afterGets && timeReached;
  }

  /** A test's phase stays put; the fake's own transitions go through updatePhase. */
  setPodPhase(name: string, phase: PodPhase, reason?: string, message?: string): void {
    if (phase === 'Pending') this.held.add(name);
    else this.held.delete(name);
    this.updatePhase(name, phase, reason, message);
  }

  setContainerWaiting(name: string, reason: string, message?: string): void {
    this.setPodPhase(name, 'Pending');
    const container = this.pods.get(name)!.status.containerStatuses![0]!;
    container.state = { waiting: { reason, ...(message ? { message } : {}) } };
  }

  private updatePhase(name: string, phase: PodPhase, reason?: string, message?: string): void {
    const pod = this.pods.get(name);
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
        {
          name: containerName,
          image: pod.spec.containers[0]?.image ?? '',
          imageID: '',
          restartCount: 0,
          ready: phase === 'Running',
          state,
        },
      ],
    };
    pod.metadata.resourceVersion = this.nextVersion();
  }
}
