import { spawn } from 'node:child_process';
import path from 'node:path';
import { REPO_ROOT } from './tmp.js';

export const CLI = path.join(REPO_ROOT, 'packages/cli/dist/mcp-release.mjs');

export interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a program asynchronously (never spawnSync: in-process servers must keep serving). */
export function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? REPO_ROOT, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

export function cli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return run(process.execPath, [CLI, ...args], options);
}
