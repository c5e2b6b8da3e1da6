import './stats.css';
import { Route, Routes } from 'react-router';
import { StatsPage } from './stats-page';

/** /stats (opens the newest workflow's) and /stats/:workflowId. */
export default function StatsSection() {
  return (
    <Routes>
      <Route index element={<StatsPage />} />
      <Route path=":workflowId" element={<StatsPage />} />
    </Routes>
  );
}
