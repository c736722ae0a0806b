#!/usr/bin/env node
// The fault-injection campaign over the whole release (test/chaos/main.ts), run by `npm run chaos`.
// It bundles the campaign with esbuild into a temporary file next to node_modules (so that its npm
// dependencies resolve as they do for the sources) and runs it with this node; arguments are passed
// through:
//   node scripts/chaos.mjs                       every case
//   node scripts/chaos.mjs --only 'fulcio|kill'  the cases whose id matches the regular expression
//   node scripts/chaos.mjs --list                the case table, nothing run
// MCP_RELEASE_CHAOS_ONLY does what --only does. See test/chaos/main.ts for the other options.
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const cache = path.join(root, 'node_modules', '.cache');
await mkdir(cache, { recursive: true });
const dir = await mkdtemp(path.join(cache, 'mcp-release-chaos-'));
const outfile = path.join(dir, 'chaos.mjs');

let status = 1;
try {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: [path.join(root, 'test', 'chaos', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    sourcemap: 'inline',
    banner: { js: "import { createRequire as __chaosRequire } from 'node:module'; const require = __chaosRequire(import.meta.url);" },
    logLevel: 'warning',
    plugins: [
      {
        // Workspace packages are bundled from their sources; npm packages load from node_modules.
        name: 'externals',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) => (a.path.startsWith('@mcp-release/') ? undefined : { path: a.path, external: true }));
        },
      },
    ],
  });
  status = await new Promise((resolve) => {
    const child = spawn(process.execPath, ['--enable-source-maps', outfile, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit', env: { ...process.env, MCP_RELEASE_CHAOS_ROOT: root } });
    // Ctrl-C reaches the campaign too (same process group); it cleans up and exits on its own.
    const ignore = () => undefined;
    process.on('SIGINT', ignore);
    process.on('SIGTERM', () => child.kill('SIGTERM'));
    child.on('close', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    child.on('error', (err) => {
      console.error(`chaos: could not start the campaign: ${err.message}`);
      resolve(1);
    });
  });
} catch (err) {
  console.error(`chaos: could not bundle test/chaos/main.ts: ${err.message}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
process.exit(status);
