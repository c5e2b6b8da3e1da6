import { PageHeader } from '../../components/layout';

/**
 * Everything under /workflows/* (W2 builds it): nested <Routes> here, e.g.
 * <Routes><Route index element={<List />} /><Route path=":id" element={<Detail />} /></Routes>.
 */
export default function WorkflowsSection() {
  return (
    <>
      <PageHeader title="Workflows" />
      <p className="empty">This page is coming next.</p>
    </>
  );
}
