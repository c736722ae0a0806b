import { mkdir, symlink } from 'node:fs/promises';
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
    expect(r.stderr).toMatch(/missing native build tools: meson, ninja, nasm/);
    expect(r.stderr).toMatch(/fix: install them: sudo apt-get install meson ninja-build nasm/);
  });
});
