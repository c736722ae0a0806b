import { execFileSync } from 'node:child_process';
import path from 'node:path';

/** The end-to-end tests run the bundled CLI, as users do; build it once before they start. */
export default function setup(): void {
  execFileSync(process.execPath, [path.join(import.meta.dirname, '..', 'scripts', 'build.mjs')], { stdio: 'inherit' });
}
