import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../helpers/cli.js';
import { REPO_ROOT, tempDir } from '../helpers/tmp.js';

describe('bootstrap', () => {
  it('is quiet and succeeds when everything is installed', async () => {
    const r = await run(process.execPath, ['scripts/bootstrap.mjs']);
    expect(r.code, r.stderr).toBe(0);
  });

  it('says exactly what to install when native tools are missing and it may not install them', async () => {
    // A PATH with node, npm and sh but no meson, ninja or nasm.
    const bin = path.join(await tempDir(), 'bin');
    await mkdir(bin);
    for (const tool of ['sh', 'npm']) await symlink(path.join('/usr/bin', tool), path.join(bin, tool)).catch(() => undefined);
    await symlink(process.execPath, path.join(bin, 'node'));
    const r = await run(process.execPath, [path.join(REPO_ROOT, 'scripts/bootstrap.mjs')], { env: { PATH: bin, MCP_RELEASE_NO_APT: '1', HOME: process.env.HOME } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/missing build tools: meson, ninja, nasm, pkg-config, cc, readelf, openssl, gh/);
    expect(r.stderr).toMatch(/fix: install them: sudo apt-get install meson ninja-build nasm pkg-config gcc binutils openssl gh/);
  });

  it('notices packages that differ from the lockfile, runs npm ci, and says what to do when that fails', async () => {
    const repo = await tempDir();
    await mkdir(path.join(repo, 'scripts'));
    await copyFile(path.join(REPO_ROOT, 'scripts/bootstrap.mjs'), path.join(repo, 'scripts/bootstrap.mjs'));
    await writeFile(path.join(repo, 'package.json'), JSON.stringify({ name: 'x', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' } }));
    await writeFile(
      path.join(repo, 'package-lock.json'),
      JSON.stringify({ name: 'x', version: '1.0.0', lockfileVersion: 3, requires: true, packages: { '': { name: 'x', version: '1.0.0', dependencies: { 'left-pad': '1.3.0' } }, 'node_modules/left-pad': { version: '1.3.0' } } }),
    );
    await mkdir(path.join(repo, 'node_modules/left-pad'), { recursive: true });
    await writeFile(path.join(repo, 'node_modules/left-pad/package.json'), JSON.stringify({ name: 'left-pad', version: '1.2.0' }));
    // An unreachable registry makes npm ci fail at once, offline.
    const r = await run(process.execPath, [path.join(repo, 'scripts/bootstrap.mjs'), '--no-native'], { cwd: repo, env: { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_fetch_retries: '0', npm_config_cache: path.join(repo, 'cache') } });
    expect(r.stderr).toMatch(/1 package\(s\) differ from package-lock.json \(node_modules\/left-pad…\); running npm ci/);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bootstrap: npm ci failed\n {2}fix: check that the npm registry is reachable/);
  });
});
