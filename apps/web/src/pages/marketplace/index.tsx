import './marketplace.css';
import { Route, Routes } from 'react-router';
import { ItemPage } from './item-page';
import { PublishPage } from './publish-form';
import { MarketplaceSearch } from './search-page';

/** /marketplace (search), /marketplace/publish (supervisors+), /marketplace/:itemId (one version). */
export default function MarketplaceSection() {
  return (
    <Routes>
      <Route index element={<MarketplaceSearch />} />
      <Route path="publish" element={<PublishPage />} />
      <Route path=":itemId" element={<ItemPage />} />
    </Routes>
  );
}
