import { PageHeader } from '../../components/layout';

/**
 * Everything under /marketplace/* (W2 builds it): nested <Routes> here, e.g.
 * <Routes><Route index element={<List />} /><Route path=":id" element={<Detail />} /></Routes>.
 */
export default function MarketplaceSection() {
  return (
    <>
      <PageHeader title="Marketplace" />
      <p className="empty">This page is coming next.</p>
    </>
  );
}
