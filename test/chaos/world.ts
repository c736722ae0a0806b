import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { releaseEnv, startReleaseLab, type Lab } from '@mcp-release/lab';

/**
 * The world one chaos case runs in: a fresh widget repository (one npm package, `acme-widget`,
 * the policy, one commit on main) and a fresh lab for it. Everything runs asynchronously: the lab
 * serves from this process, so a synchronous child would stall every lab of the campaign.
 */

export const PACKAGE = 'acme-widget';
export const VERSION = '1.0.1';
export const TAG = `v${VERSION}`;
export const REPOSITORY = 'acme/widget';

export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

const GIT_IDENTITY = {
  GIT_AUTHOR_NAME: 'chaos',
  GIT_AUTHOR_EMAIL: 'chaos@example.invalid',
  GIT_COMMITTER_NAME: 'chaos',
  GIT_COMMITTER_EMAIL: 'chaos@example.invalid',
  GIT_AUTHOR_DATE: '2026-02-03T04:05:06Z',
  GIT_COMMITTER_DATE: '2026-02-03T04:05:06Z',
};

/** Runs a program to its end and keeps its output; never a shell, never synchronous. */
export function run(command: string, args: string[], options: { cwd: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    const timer = options.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), options.timeoutMs) : undefined;
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => {
      if (timer) clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

async function git(cwd: string, ...args: string[]): Promise<string> {
  const r = await run('git', args, { cwd, env: { ...process.env, ...GIT_IDENTITY }, timeoutMs: 60_000 });
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed in ${cwd}: ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/** The widget's release policy: the lab's signer workflow and the registry's trusted publisher. */
export function widgetPolicy(): string {
  return `version: 1
release:
  tag: "v{version}"
  repository: ${REPOSITORY}
packages:
  - path: pkg
signer:
  repository: ${REPOSITORY}
  workflow: release.yml
  ref: refs/heads/main
trustedPublishers:
  - package: ${PACKAGE}
    repository: ${REPOSITORY}
    workflow: release.yml
    environment: release
`;
}

/** Writes `bytes` of random (incompressible) data, streamed. */
async function randomFile(file: string, bytes: number): Promise<void> {
  const chunk = 1 << 20;
  async function* chunks(): AsyncGenerator<Buffer> {
    for (let left = bytes; left > 0; left -= chunk) yield randomBytes(Math.min(chunk, left));
  }
  await pipeline(Readable.from(chunks()), createWriteStream(file));
}

export interface Widget {
  repo: string;
  commit: string;
}

/**
 * The widget repository in `dir`. With `bigBytes`, the package also ships that many random bytes,
 * so its tarball (a release asset and the npm upload) takes a while to transfer.
 */
export async function widgetRepo(dir: string, options: { bigBytes?: number } = {}): Promise<Widget> {
  const repo = path.join(dir, 'repo');
  await mkdir(path.join(repo, 'pkg'), { recursive: true });
  await mkdir(path.join(repo, 'policies'), { recursive: true });
  await git(repo, 'init', '-q', '-b', 'main');
  const files = ['index.js', ...(options.bigBytes ? ['blob.bin'] : [])];
  await writeFile(path.join(repo, '.gitignore'), 'out/\n');
  await writeFile(path.join(repo, 'pkg', 'package.json'), `${JSON.stringify({ name: PACKAGE, version: VERSION, license: 'MIT', files }, null, 2)}\n`);
  await writeFile(path.join(repo, 'pkg', 'index.js'), 'export const widget = 1;\n');
  if (options.bigBytes) await randomFile(path.join(repo, 'pkg', 'blob.bin'), options.bigBytes);
  await writeFile(path.join(repo, 'policies', 'release-policy.yaml'), widgetPolicy());
  await writeFile(path.join(repo, 'package.json'), `${JSON.stringify({ name: 'widget-workspace', private: true, workspaces: ['pkg'] }, null, 2)}\n`);
  const lock = await run('npm', ['install', '--package-lock-only', '--offline', '--ignore-scripts', '--no-audit', '--no-fund'], { cwd: repo, timeoutMs: 120_000 });
  if (lock.code !== 0) throw new Error(`npm could not write the widget's lockfile: ${lock.stderr.trim().split('\n').slice(-3).join(' ')}`);
  await git(repo, 'add', '-A');
  await git(repo, 'commit', '-qm', 'widget');
  return { repo, commit: await git(repo, 'rev-parse', 'HEAD') };
}

/**
 * A fresh widget repository for one case: a copy of `template` (made once per campaign by
 * widgetRepo, so that the lockfile is not resolved again for every case), or a new one when the
 * case needs its own contents. The copy is its own repository, with the same commit.
 */
export async function freshWidget(dir: string, template: Widget | undefined, options: { bigBytes?: number } = {}): Promise<Widget> {
  if (!template || options.bigBytes) return widgetRepo(dir, options);
  const repo = path.join(dir, 'repo');
  await cp(template.repo, repo, { recursive: true });
  const head = await git(repo, 'rev-parse', 'HEAD');
  if (head !== template.commit) throw new Error(`the copied widget repository is at ${head}, not ${template.commit}`);
  return { repo, commit: head };
}

/**
 * Client settings of the campaign's release processes. npm's own request timeout is bounded (its
 * default is five minutes per request), and git gives up on a transfer stalled for 10 s (its
 * default waits for the toolkit's 120 s command limit), as a workflow may set them: a timeout
 * case then costs seconds, and the toolkit's handling of the failed attempt is what is tested.
 */
export const CLIENT_LIMITS: Record<string, string> = {
  NPM_CONFIG_FETCH_TIMEOUT: '20000',
  GIT_HTTP_LOW_SPEED_LIMIT: '1000',
  GIT_HTTP_LOW_SPEED_TIME: '10',
};

/** A fresh lab for the widget: OIDC, Sigstore, the registry (the name claimed), GitHub and its git remote. */
export async function widgetLab(dir: string, widget: Widget): Promise<{ lab: Lab; env: NodeJS.ProcessEnv }> {
  const stateDir = path.join(dir, 'lab');
  await mkdir(stateDir, { recursive: true });
  const lab = await startReleaseLab({
    stateDir,
    repoRoot: widget.repo,
    commit: widget.commit,
    policy: {
      release: { repository: REPOSITORY },
      signer: { repository: REPOSITORY, workflow: 'release.yml', ref: 'refs/heads/main' },
      trustedPublishers: [{ package: PACKAGE, repository: REPOSITORY, workflow: 'release.yml', environment: 'release' }],
    },
  });
  const env: NodeJS.ProcessEnv = { ...process.env, ...releaseEnv(lab), ...CLIENT_LIMITS };
  delete env.NPM_CONFIG_REGISTRY;
  return { lab, env };
}

/** A temporary folder for one case; the caller removes it (see removeDir). */
export function caseDir(id: string): Promise<string> {
  return mkdtemp(path.join(tmpdir(), `mcp-release-chaos-${id.replace(/[^a-z0-9-]/gi, '-').slice(0, 40)}-`));
}

export async function removeDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
}
