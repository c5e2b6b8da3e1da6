import { PageHeader } from '../../components/layout';

export default function OverviewPage() {
  return <PageHeader title="Overview" />;
}
