import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/**
 * Keeps a value in the lab's state folder so that it survives restarts (keys, certificates):
 * bundles signed before a restart stay verifiable. Without a state folder, values live in memory.
 */
export async function persisted<T>(stateDir: string | undefined, name: string, create: () => Promise<T>): Promise<T> {
  if (!stateDir) return create();
  const file = path.join(stateDir, 'keys', `${name}.json`);
  try {
    return JSON.parse(await readFile(file, 'utf8')) as T;
  } catch {
    const value = await create();
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
    return value;
  }
}
