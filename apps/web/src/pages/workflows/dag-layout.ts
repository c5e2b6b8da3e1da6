import { Graph, layout } from '@dagrejs/dagre';
import { type Edge, MarkerType, type Node, Position } from '@xyflow/react';

/** What the DAG needs of a step: a definition's step, or a marketplace manifest's. */
export interface DagStep {
  key: string;
  title?: string;
  capability?: string;
  depends_on?: readonly string[];
}

export interface StepNodeData extends Record<string, unknown> {
  key: string;
  title?: string;
  capability?: string;
  /** The step's task status in a run, when the DAG shows one. */
  status?: string;
  direction: DagDirection;
}

export type StepNode = Node<StepNodeData, 'step'>;

/** LR: dependencies left of their dependents (wide screens); TB: above them (phones). */
export type DagDirection = 'LR' | 'TB';

export interface DagLayoutOptions {
  direction?: DagDirection;
  nodeWidth?: number;
  nodeHeight?: number;
  statusByKey?: Readonly<Record<string, string>>;
}

export interface DagLayout {
  nodes: StepNode[];
  edges: Edge[];
  /** The drawing's size in layout units, before React Flow fits it to its box. */
  width: number;
  height: number;
}

/**
 * Lays out a workflow's steps with dagre and converts the result to React Flow nodes and edges:
 * one node per step (positioned by its top-left corner, as React Flow wants, from dagre's centre),
 * one edge per dependency, dependency → dependent. A dependency naming no step is left out.
 * @example layoutDag([{ key: 'a' }, { key: 'b', depends_on: ['a'] }]).edges[0] // { source: 'a', target: 'b', … }
 */
export function layoutDag(
  steps: readonly DagStep[],
  { direction = 'LR', nodeWidth = 190, nodeHeight = 64, statusByKey }: DagLayoutOptions = {},
): DagLayout {
  const graph = new Graph();
  graph.setGraph({
    rankdir: direction,
    nodesep: 28,
    ranksep: direction === 'LR' ? 64 : 48,
    marginx: 8,
    marginy: 8,
  });
  graph.setDefaultEdgeLabel(() => ({}));
  const keys = new Set(steps.map((s) => s.key));
  for (const step of steps) graph.setNode(step.key, { width: nodeWidth, height: nodeHeight });
  const dependencies = steps.flatMap((step) =>
    (step.depends_on ?? []).filter((dep) => keys.has(dep)).map((dep) => ({ dep, step })),
  );
  for (const { dep, step } of dependencies) graph.setEdge(dep, step.key);
  layout(graph);

  const horizontal = direction === 'LR';
  const nodes: StepNode[] = steps.map((step) => {
    const { x, y } = graph.node(step.key) as { x: number; y: number };
    const after = (step.depends_on ?? []).filter((dep) => keys.has(dep));
    const status = statusByKey?.[step.key];
    return {
      id: step.key,
      type: 'step',
      position: { x: x - nodeWidth / 2, y: y - nodeHeight / 2 },
      width: nodeWidth,
      height: nodeHeight,
      sourcePosition: horizontal ? Position.Right : Position.Bottom,
      targetPosition: horizontal ? Position.Left : Position.Top,
      data: { key: step.key, title: step.title, capability: step.capability, status, direction },
      ariaLabel:
        `Step ${step.key}${step.title ? ` (${step.title})` : ''}, capability ${step.capability ?? 'any'}` +
        `${after.length > 0 ? `, after ${after.join(' and ')}` : ', runs first'}${status ? `, ${status}` : ''}`,
    };
  });
  const edges: Edge[] = dependencies.map(({ dep, step }) => ({
    id: `${dep}->${step.key}`,
    source: dep,
    target: step.key,
    ariaLabel: `${step.key} runs after ${dep}`,
    markerEnd: { type: MarkerType.ArrowClosed, width: 18, height: 18 },
  }));
  const { width = 0, height = 0 } = graph.graph() as { width?: number; height?: number };
  return { nodes, edges, width, height };
}
