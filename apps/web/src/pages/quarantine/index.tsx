import { PageHeader } from '../../components/layout';

export default function QuarantinePage() {
  return <PageHeader title="Quarantine" />;
}
