import '@xyflow/react/dist/style.css';
import { Controls, Handle, type NodeProps, Position, ReactFlow } from '@xyflow/react';
import { useMemo, useSyncExternalStore } from 'react';
import { StatusBadge } from '../../components/status-badge';
import { type DagStep, layoutDag, type StepNode } from './dag-layout';

const narrowQuery = '(max-width: 720px)';

/** Whether the screen is phone-narrow, following resizes (false where matchMedia is missing). */
export function useNarrowScreen(): boolean {
  return useSyncExternalStore(
    (onChange) => {
      if (typeof window.matchMedia !== 'function') return () => {};
      const media = window.matchMedia(narrowQuery);
      media.addEventListener('change', onChange);
      return () => media.removeEventListener('change', onChange);
    },
    () => typeof window.matchMedia === 'function' && window.matchMedia(narrowQuery).matches,
  );
}

/** A step: its key, capability and title; its run status when the DAG shows a run. */
function StepNodeView({ data, sourcePosition, targetPosition }: NodeProps<StepNode>) {
  return (
    <div className="dag-node" data-step-key={data.key} data-status={data.status}>
      <Handle type="target" position={targetPosition ?? Position.Left} isConnectable={false} />
      <div className="dag-node-head">
        <strong>{data.key}</strong>
        <span className="chip">{data.capability ?? 'any'}</span>
      </div>
      <div className="dag-node-foot">
        {data.title && <span className="muted dag-node-title">{data.title}</span>}
        {data.status && <StatusBadge status={data.status} />}
      </div>
      <Handle type="source" position={sourcePosition ?? Position.Right} isConnectable={false} />
    </div>
  );
}

const nodeTypes = { step: StepNodeView };

/**
 * A workflow's steps drawn as a DAG (React Flow, laid out by dagre): read-only, fitted to its box,
 * left to right on wide screens and top to bottom on phones. Every node and edge has an accessible
 * label; a page shows the same steps as a table too.
 */
export function WorkflowDag({
  steps,
  statusByKey,
  label = 'Workflow steps as a graph',
}: {
  steps: readonly DagStep[];
  statusByKey?: Readonly<Record<string, string>>;
  label?: string;
}) {
  const narrow = useNarrowScreen();
  const direction = narrow ? 'TB' : 'LR';
  const dag = useMemo(
    () => layoutDag(steps, { direction, statusByKey, nodeWidth: narrow ? 150 : 190 }),
    [steps, direction, statusByKey, narrow],
  );
  // Tall enough for the drawing at about its natural size, within what a page can spare.
  const height = Math.round(Math.min(narrow ? 560 : 420, Math.max(180, dag.height + 40)));
  return (
    <section className="dag" style={{ height }} aria-label={label} data-testid="workflow-dag">
      <ReactFlow
        key={direction}
        nodes={dag.nodes}
        edges={dag.edges}
        nodeTypes={nodeTypes}
        fitView
        // Room on the right for the zoom buttons, so they never cover a step.
        fitViewOptions={{
          padding: { top: '12px', bottom: '12px', left: '12px', right: '52px' },
          maxZoom: 1.1,
        }}
        minZoom={0.2}
        nodesDraggable={false}
        nodesConnectable={false}
        elementsSelectable={false}
        edgesFocusable={false}
        zoomOnScroll={false}
        zoomOnDoubleClick={false}
        panOnScroll={false}
        preventScrolling={false}
        colorMode="system"
      >
        <Controls showInteractive={false} position="bottom-right" />
      </ReactFlow>
    </section>
  );
}
