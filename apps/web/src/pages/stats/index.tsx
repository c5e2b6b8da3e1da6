import './stats.css';
import { Route, Routes } from 'react-router';
import { StatsIndex, StatsPage } from './stats-page';

/** /stats (pick a workflow; the only one opens at once) and /stats/:workflowId. */
export default function StatsSection() {
  return (
    <Routes>
      <Route index element={<StatsIndex />} />
      <Route path=":workflowId" element={<StatsPage />} />
    </Routes>
  );
}
