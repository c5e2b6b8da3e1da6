import { describe, expect, it } from 'vitest';
import { layoutDag } from './dag-layout';

/** The demo workflow devart start defines: checkout → lint ‖ test → report. */
const ciPipeline = [
  { key: 'checkout', title: 'Checkout', capability: 'echo', depends_on: [] },
  { key: 'lint', title: 'Lint', capability: 'echo', depends_on: ['checkout'] },
  { key: 'test', title: 'Test (in a sandbox)', capability: 'shell', depends_on: ['checkout'] },
  { key: 'report', title: 'Report', capability: 'echo', depends_on: ['lint', 'test'] },
];

const byId = (layout: ReturnType<typeof layoutDag>) => Object.fromEntries(layout.nodes.map((n) => [n.id, n]));

describe('layoutDag', () => {
  it('draws ci-pipeline left to right: checkout, then lint and test side by side, then report', () => {
    const layout = layoutDag(ciPipeline, { nodeWidth: 190, nodeHeight: 64 });
    const n = byId(layout);
    expect(n.checkout!.position.x).toBeLessThan(n.lint!.position.x);
    expect(n.lint!.position.x).toBe(n.test!.position.x);
    expect(n.lint!.position.y).not.toBe(n.test!.position.y);
    expect(n.report!.position.x).toBeGreaterThan(n.lint!.position.x);
    // Parallel steps do not overlap.
    expect(Math.abs(n.lint!.position.y - n.test!.position.y)).toBeGreaterThanOrEqual(64);
    expect(layout.edges.map((e) => [e.source, e.target])).toEqual([
      ['checkout', 'lint'],
      ['checkout', 'test'],
      ['lint', 'report'],
      ['test', 'report'],
    ]);
    expect(n.checkout).toMatchObject({ sourcePosition: 'right', targetPosition: 'left', type: 'step' });
  });

  it('places nodes by their top-left corner (dagre gives centres) inside the drawing it reports', () => {
    const layout = layoutDag(ciPipeline, { nodeWidth: 190, nodeHeight: 64 });
    for (const node of layout.nodes) {
      expect(node.position.x).toBeGreaterThanOrEqual(0);
      expect(node.position.y).toBeGreaterThanOrEqual(0);
      expect(node.position.x + 190).toBeLessThanOrEqual(layout.width);
      expect(node.position.y + 64).toBeLessThanOrEqual(layout.height);
    }
    // A lone step sits at the margin: its centre, less half its size.
    const [only] = layoutDag([{ key: 'a' }], { nodeWidth: 100, nodeHeight: 40 }).nodes;
    expect(only!.position).toEqual({ x: 8, y: 8 });
  });

  it('stacks top to bottom for phones', () => {
    const n = byId(layoutDag(ciPipeline, { direction: 'TB' }));
    expect(n.checkout!.position.y).toBeLessThan(n.lint!.position.y);
    expect(n.lint!.position.y).toBe(n.test!.position.y);
    expect(n.report!.position.y).toBeGreaterThan(n.test!.position.y);
    expect(n.checkout).toMatchObject({ sourcePosition: 'bottom', targetPosition: 'top' });
  });

  it('labels nodes and edges for screen readers, carries the step key, capability and run status', () => {
    const layout = layoutDag(ciPipeline, { statusByKey: { checkout: 'DONE', lint: 'IN_PROGRESS' } });
    const n = byId(layout);
    expect(n.report!.ariaLabel).toBe('Step report (Report), capability echo, after lint and test');
    expect(n.checkout!.ariaLabel).toBe('Step checkout (Checkout), capability echo, runs first, DONE');
    expect(n.test!.data).toMatchObject({ key: 'test', capability: 'shell', status: undefined });
    expect(n.lint!.data.status).toBe('IN_PROGRESS');
    expect(layout.edges.find((e) => e.target === 'report')?.ariaLabel).toBe('report runs after lint');
  });

  it('leaves out a dependency that names no step, and a step without a capability takes any', () => {
    const layout = layoutDag([{ key: 'a' }, { key: 'b', depends_on: ['a', 'ghost'] }]);
    expect(layout.edges.map((e) => e.id)).toEqual(['a->b']);
    expect(byId(layout).a!.ariaLabel).toBe('Step a, capability any, runs first');
  });
});
