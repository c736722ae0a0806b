#!/usr/bin/env node
// Bundles the CLI (packages/cli/dist) and the GitHub actions (actions/*/dist, committed).
//   node scripts/build.mjs            the CLI
//   node scripts/build.mjs --actions  the actions, into the repository (commit the result)
//   node scripts/build.mjs --check    rebuild the actions in a temporary folder and fail when the committed dist/ differs
import { copyFile, mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
import * as esbuild from 'esbuild';

const argv = process.argv.slice(2);
const args = new Set(argv);
// --root DIR: work on another copy of the repository (the check-dist test uses it).
const root = argv.includes('--root') ? path.resolve(argv[argv.indexOf('--root') + 1]) : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

// Bundled ESM still meets CommonJS dependencies that call require() on Node built-ins.
const requireShim = "import { createRequire as __mcpReleaseRequire } from 'node:module'; const require = __mcpReleaseRequire(import.meta.url);";
// The action bundles also meet CommonJS code that finds its data files next to itself (__dirname):
// the CycloneDX library reads its JSON schemas from `<its dir>/../res/schema`, so the bundles
// define __dirname and the schemas the SBOM step validates with are shipped in actions/res/.
const actionsBanner = `${requireShim} import { fileURLToPath as __mcpReleaseFile } from 'node:url'; import { dirname as __mcpReleaseDir } from 'node:path'; const __filename = __mcpReleaseFile(import.meta.url); const __dirname = __mcpReleaseDir(__filename);`;
const CYCLONEDX_RES = ['schema/bom-1.6.SNAPSHOT.schema.json', 'schema/spdx.SNAPSHOT.schema.json', 'schema/jsf-0.82.SNAPSHOT.schema.json', 'schema/cryptography-defs.SNAPSHOT.schema.json'];

/** Bundles a published package's bin: workspace code inside, npm dependencies left as dependencies. */
async function buildPackage(dir, entry, outfile) {
  const pkg = JSON.parse(await readFile(path.join(root, dir, 'package.json'), 'utf8'));
  const declared = new Set(Object.keys(pkg.dependencies ?? {}));
  const external = new Set();
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [path.join(dir, entry)],
    outfile: path.join(dir, outfile),
    write: false,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    banner: { js: `#!/usr/bin/env node\n${requireShim}` },
    logLevel: 'warning',
    plugins: [
      {
        // Workspace packages are bundled in; npm dependencies stay dependencies of the published package.
        name: 'externals',
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) => {
            if (a.path.startsWith('@mcp-release/') || a.path.startsWith('node:')) return undefined;
            const name = a.path.startsWith('@') ? a.path.split('/').slice(0, 2).join('/') : a.path.split('/')[0];
            external.add(name);
            return { path: a.path, external: true };
          });
        },
      },
    ],
  });
  // Written atomically: tests and npm pack's prepack may rebuild it while another process starts it.
  for (const f of result.outputFiles) {
    await mkdir(path.dirname(f.path), { recursive: true });
    const tmp = `${f.path}.${process.pid}.tmp`;
    await writeFile(tmp, f.contents, { mode: 0o755 });
    await rename(tmp, f.path);
  }
  // The CLI's `init` reads the workflow templates next to itself.
  if (dir === 'packages/cli') {
    const to = path.join(root, dir, 'dist', 'workflows');
    await mkdir(to, { recursive: true });
    for (const f of await readdir(path.join(root, 'workflows'))) if (f.endsWith('.yml') || f === 'README.md') await copyFile(path.join(root, 'workflows', f), path.join(to, f));
  }
  const missing = [...external].filter((n) => !declared.has(n) && !isBuiltin(n));
  if (missing.length) {
    console.error(`${dir}/package.json does not declare ${missing.join(', ')}, which the bundle imports; add them to its dependencies`);
    process.exit(1);
  }
  return result;
}

function isBuiltin(name) {
  return ['fs', 'path', 'os', 'crypto', 'child_process', 'util', 'stream', 'zlib', 'url', 'events', 'module', 'http', 'https', 'net', 'tls', 'buffer', 'assert', 'readline', 'worker_threads', 'string_decoder', 'timers', 'process'].includes(name.split('/')[0]);
}

async function actionEntries() {
  const entries = [];
  for (const name of (await readdir(path.join(root, 'actions'))).sort()) {
    if (name === '_shared') continue;
    const src = path.join('actions', name, 'src', 'index.ts');
    if (await stat(path.join(root, src)).catch(() => undefined)) entries.push({ in: src, out: path.join('actions', name, 'dist', 'index') });
  }
  return entries;
}

async function buildActions(outdir) {
  await esbuild.build({
    absWorkingDir: root,
    entryPoints: await actionEntries(),
    outdir,
    outbase: root,
    bundle: true,
    splitting: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outExtension: { '.js': '.mjs' },
    chunkNames: 'actions/_chunks/[name]-[hash]',
    banner: { js: actionsBanner },
    // Optional XML plugins of the CycloneDX library, loaded inside a try; the toolkit writes JSON only.
    external: ['xmlbuilder2', 'libxmljs2'],
    legalComments: 'none',
    logLevel: 'warning',
  });
  const lib = path.dirname(createRequire(path.join(root, 'packages/steps/package.json')).resolve('@cyclonedx/cyclonedx-library/package.json'));
  for (const f of [...CYCLONEDX_RES, '../LICENSE', '../NOTICE']) {
    const dest = path.join(outdir, 'actions', 'res', f.startsWith('../') ? `cyclonedx-${path.basename(f)}` : f);
    await mkdir(path.dirname(dest), { recursive: true });
    await writeFile(dest, await readFile(path.join(lib, 'res', f)));
  }
  await writeFile(path.join(outdir, 'actions', 'res', 'README.md'), RES_README);
}

const RES_README = "# Data files of bundled libraries\n\nThe action bundles in `actions/*/dist` and `actions/_chunks` find these files next to themselves.\n\n| file | from | licence |\n| --- | --- | --- |\n| `schema/bom-1.6.SNAPSHOT.schema.json`, `schema/spdx.SNAPSHOT.schema.json`, `schema/jsf-0.82.SNAPSHOT.schema.json`, `schema/cryptography-defs.SNAPSHOT.schema.json` | `@cyclonedx/cyclonedx-library` `res/schema/` (the CycloneDX 1.6 JSON schema and the schemas it references), used to validate `sbom.cdx.json` | Apache-2.0, see `cyclonedx-LICENSE` and `cyclonedx-NOTICE` |\n\nGenerated by `npm run bundle`; do not edit.\n";

async function listDist(base) {
  const files = [];
  const actionsDir = path.join(base, 'actions');
  for (const name of await readdir(actionsDir).catch(() => [])) {
    if (name === 'res') {
      for (const f of await readdir(path.join(actionsDir, 'res'), { recursive: true })) {
        const full = path.join(actionsDir, 'res', f);
        if ((await stat(full)).isFile()) files.push(path.relative(base, full));
      }
      continue;
    }
    const dir = name === '_chunks' ? path.join(actionsDir, name) : path.join(actionsDir, name, 'dist');
    for (const f of await readdir(dir).catch(() => [])) files.push(path.relative(base, path.join(dir, f)));
  }
  return files.sort();
}

async function checkActions() {
  const tmp = await mkdtemp(path.join(tmpdir(), 'mcp-release-check-dist-'));
  try {
    await buildActions(tmp);
    const fresh = await listDist(tmp);
    const committed = await listDist(root);
    const problems = [];
    for (const f of new Set([...fresh, ...committed])) {
      if (!fresh.includes(f)) problems.push(`${f} is committed but no longer built`);
      else if (!committed.includes(f)) problems.push(`${f} is missing`);
      else if (!(await readFile(path.join(tmp, f))).equals(await readFile(path.join(root, f)))) problems.push(`${f} differs from a fresh build`);
    }
    if (problems.length) {
      console.error(`The committed actions dist/ is stale:\n  ${problems.join('\n  ')}\nRun \`npm run bundle\` and commit the result.`);
      process.exit(1);
    }
    console.log(`actions dist/ is up to date (${fresh.length} files)`);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

if (args.has('--check')) await checkActions();
else if (args.has('--actions')) {
  for (const f of await listDist(root)) await rm(path.join(root, f), { force: true });
  await buildActions(root);
  console.log('actions bundled into actions/*/dist; commit them');
} else {
  const all = !args.has('--cli') && !args.has('--vmaf-mcp');
  if (all || args.has('--cli')) await buildPackage('packages/cli', 'src/bin.ts', 'dist/mcp-release.mjs');
  if (all || args.has('--vmaf-mcp')) await buildPackage('packages/vmaf-mcp', 'src/bin.ts', 'dist/vmaf-mcp.mjs');
}
