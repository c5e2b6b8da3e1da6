import { Route, Routes } from 'react-router';
import { TaskDetail } from './task-detail';
import { TasksHome } from './tasks-home';

/** /tasks (board, table, create) and /tasks/:taskId (detail). */
export default function TasksSection() {
  return (
    <Routes>
      <Route index element={<TasksHome />} />
      <Route path=":taskId" element={<TaskDetail />} />
    </Routes>
  );
}
