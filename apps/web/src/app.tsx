import { Link, Route, Routes } from 'react-router';
import { Layout, PageHeader } from './components/layout';
import { useAuth } from './lib/auth';
import AgentsPage from './pages/agents';
import MarketplaceSection from './pages/marketplace';
import OverviewPage from './pages/overview';
import QuarantinePage from './pages/quarantine';
import { SignInPage } from './pages/sign-in/sign-in-page';
import StatsSection from './pages/stats';
import TasksPage from './pages/tasks';
import WorkflowsSection from './pages/workflows';

function NotFound() {
  return (
    <>
      <PageHeader title="Page not found" />
      <p>
        Nothing lives at this address. Go to the <Link to="/">Overview</Link>.
      </p>
    </>
  );
}

/**
 * The routes. A section with pages of its own is mounted as `path/*` and declares its nested
 * <Routes> itself (pages/workflows/index.tsx …), so adding a page there touches no other file.
 */
export function App() {
  const { state } = useAuth();
  if (state.status === 'checking') {
    return (
      <div className="loading" role="status">
        <span className="spinner" aria-hidden="true" /> Signing in…
      </div>
    );
  }
  if (state.status === 'signed-out') return <SignInPage message={state.message} />;
  return (
    <Layout>
      <Routes>
        <Route index element={<OverviewPage />} />
        <Route path="tasks/*" element={<TasksPage />} />
        <Route path="quarantine" element={<QuarantinePage />} />
        <Route path="agents" element={<AgentsPage />} />
        <Route path="workflows/*" element={<WorkflowsSection />} />
        <Route path="stats/*" element={<StatsSection />} />
        <Route path="marketplace/*" element={<MarketplaceSection />} />
        <Route path="*" element={<NotFound />} />
      </Routes>
    </Layout>
  );
}
