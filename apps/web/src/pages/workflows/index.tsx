import './workflows.css';
import { Route, Routes } from 'react-router';
import { RunDetail } from './run-detail';
import { WorkflowDetail } from './workflow-detail';
import { WorkflowList } from './workflow-list';

/** /workflows (list), /workflows/:workflowId (DAG, trigger, runs), /workflows/runs/:runId (timeline). */
export default function WorkflowsSection() {
  return (
    <Routes>
      <Route index element={<WorkflowList />} />
      <Route path="runs/:runId" element={<RunDetail />} />
      <Route path=":workflowId" element={<WorkflowDetail />} />
    </Routes>
  );
}
