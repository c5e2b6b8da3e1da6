import { PageHeader } from '../../components/layout';

export default function AgentsPage() {
  return <PageHeader title="Agents" />;
}
