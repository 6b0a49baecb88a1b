// The README's "Self-deadlock detection" snippet, as written there: it must compile under
// `strict` (a worker that calls its own pool needs `pool` and its return type annotated).
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Pool } from 'sluice';

const pool: Pool<string, unknown[]> = new Pool(
  async (dir: string): Promise<unknown[]> => {
    const children = await readdir(dir);
    return Promise.all(children.map((c) => pool.run(join(dir, c))));
  },
  { concurrency: 8, detectDeadlock: true },
);

export { pool };
