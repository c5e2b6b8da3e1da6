// Regenerates packages/contracts/schemas/*.json from the zod contracts: npm run contracts:schemas
import { writeFileSync } from 'node:fs';
import { taskMessageJsonSchema } from '../src/task-message';

const path = new URL('../schemas/devart.task.v1.json', import.meta.url);
writeFileSync(path, `${JSON.stringify(taskMessageJsonSchema(), null, 2)}\n`);
console.log(`wrote ${path.pathname}`);
