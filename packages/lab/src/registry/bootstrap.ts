import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { LabError } from '../errors.js';

/** The version a bootstrap publishes: a placeholder that is never `latest` once a real release exists. */
export const BOOTSTRAP_VERSION = '0.0.0-bootstrap.0';

function run(args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

/**
 * The maintainer's one-time step before trusted publishing can work: the first publish of a new
 * package name, done with a classic token (here the lab admin's) because a registry binds a
 * trusted publisher only to a package that exists. Publishes a placeholder under the `bootstrap`
 * dist-tag. Does nothing when the name exists. Runs the real npm CLI, asynchronously (the
 * registry may be in this process).
 */
export async function bootstrapPackage(registry: { url: string; adminToken: string }, name: string): Promise<'bootstrapped' | 'exists'> {
  const probe = await fetch(new URL(name.replace('/', '%2f'), registry.url), { headers: { accept: 'application/json' } });
  await probe.body?.cancel();
  if (probe.status === 200) return 'exists';
  const dir = await mkdtemp(path.join(tmpdir(), 'mcp-release-bootstrap-'));
  try {
    const u = new URL(registry.url);
    await writeFile(path.join(dir, '.npmrc'), `//${u.host}${u.pathname}:_authToken=${registry.adminToken}\n`);
    await writeFile(path.join(dir, 'package.json'), `${JSON.stringify({ name, version: BOOTSTRAP_VERSION, description: 'placeholder published once to claim the name', license: 'MIT' }, null, 2)}\n`);
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir,
      TMPDIR: tmpdir(),
      npm_config_userconfig: path.join(dir, '.npmrc'),
      npm_config_globalconfig: path.join(dir, 'no-globalconfig'),
      npm_config_cache: path.join(dir, 'cache'),
      npm_config_registry: registry.url,
      npm_config_update_notifier: 'false',
      npm_config_provenance: 'false',
    };
    const r = await run(['publish', '--access', 'public', '--tag', 'bootstrap'], dir, env);
    if (r.code !== 0) {
      throw new LabError('LAB_BOOTSTRAP_FAILED', `the first publish of ${name} to the lab registry failed`, {
        details: r.stderr.split('\n').filter(Boolean).slice(-4),
        hint: 'check that the lab registry is running (mcp-release lab start) and that the name is a valid npm name',
      });
    }
    return 'bootstrapped';
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
