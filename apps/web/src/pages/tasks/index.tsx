import { PageHeader } from '../../components/layout';

export default function TasksPage() {
  return <PageHeader title="Tasks" />;
}
