import { PageHeader } from '../../components/layout';

/**
 * Everything under /stats/* (W2 builds it): nested <Routes> here, e.g.
 * <Routes><Route index element={<List />} /><Route path=":id" element={<Detail />} /></Routes>.
 */
export default function StatsSection() {
  return (
    <>
      <PageHeader title="Stats" />
      <p className="empty">This page is coming next.</p>
    </>
  );
}
