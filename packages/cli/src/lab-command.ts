import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { exportLines, LabError, startLab, writeLabInfo } from '@mcp-release/lab';
import { loadPolicy, DEFAULT_POLICY_PATH } from '@mcp-release/steps';
import type { Logger } from '@mcp-release/pipeline';
import { CliError } from './errors.js';
import type { CliIo } from './main.js';

export const LAB_INFO = 'lab.json';

interface LabInfo {
  pid: number;
  stateDir: string;
  urls: Record<string, string>;
  /** The environment of a release run against the lab. */
  env: Record<string, string>;
  /** Only for the first publish of a new package name; never part of a release run's environment. */
  bootstrap: { npmAdminToken: string; npmrcLine: string };
}

async function readInfo(stateDir: string): Promise<LabInfo> {
  try {
    return JSON.parse(await readFile(path.join(stateDir, LAB_INFO), 'utf8')) as LabInfo;
  } catch {
    throw new LabError('LAB_NOT_RUNNING', `no lab is running with state folder ${stateDir}`, { hint: `start one: mcp-release lab start --state ${stateDir}` });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Only a process that is this command's own `lab start` may be stopped. */
async function isOurLab(pid: number): Promise<boolean> {
  const cmdline = await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => undefined);
  if (cmdline === undefined) return alive(pid); // no /proc: trust the pid file
  const args = cmdline.split('\0');
  return args.some((a) => a.endsWith('mcp-release.mjs') || a.endsWith('mcp-release')) && args.includes('lab') && args.includes('start');
}

export async function labCommand(action: string | undefined, values: Record<string, unknown>, io: CliIo, log: Logger): Promise<number> {
  const repoRoot = values.repoRoot as string;
  const stateDir = path.resolve(io.cwd, (values.state as string | undefined) ?? path.join(repoRoot, 'out', 'lab'));
  if (action === 'start') {
    const port = values.port === undefined ? 0 : Number(values.port);
    if (port !== 0) throw new CliError('USAGE', `--port ${values.port}: the lab's seven services take ports the system chooses`, { hint: 'use --port 0 (the default) and read the URLs from the output or from lab.json' });
    const existing = await readInfo(stateDir).catch(() => undefined);
    if (existing && alive(existing.pid) && (await isOurLab(existing.pid))) {
      throw new LabError('LAB_ALREADY_RUNNING', `a lab (pid ${existing.pid}) already runs with state folder ${stateDir}`, { hint: `stop it first: mcp-release lab stop --state ${stateDir}` });
    }
    const policy = await loadPolicy(path.resolve(repoRoot, (values.policy as string | undefined) ?? DEFAULT_POLICY_PATH));
    const lab = await startLab({ stateDir, trustedPublishers: policy.trustedPublishers ?? [] });
    const registryHost = lab.registry.url.replace(/^https?:/, '');
    const info: LabInfo = {
      pid: process.pid,
      stateDir,
      urls: { ...lab.urls },
      env: lab.env,
      bootstrap: { npmAdminToken: lab.registry.adminToken, npmrcLine: `${registryHost}:_authToken=${lab.registry.adminToken}` },
    };
    await writeLabInfo(path.join(stateDir, LAB_INFO), info);
    if (values.json) io.stdout(`${JSON.stringify(info)}\n`);
    else {
      io.stdout(`mcp-release lab is running (pid ${process.pid}); stop it with: mcp-release lab stop --state ${stateDir}\n\n`);
      for (const [k, v] of Object.entries(lab.urls)) io.stdout(`  ${k.padEnd(10)} ${v}\n`);
      io.stdout(`\n# the environment of a release run against this lab:\n${exportLines(lab.env)}\n`);
    }
    await new Promise<void>((resolve) => {
      const done = (): void => resolve();
      process.once('SIGINT', done);
      process.once('SIGTERM', done);
    });
    log.info('stopping the lab');
    await lab.stop();
    await rm(path.join(stateDir, LAB_INFO), { force: true });
    return 0;
  }
  if (action === 'stop') {
    const info = await readInfo(stateDir);
    if (!alive(info.pid)) {
      await rm(path.join(stateDir, LAB_INFO), { force: true });
      throw new LabError('LAB_NOT_RUNNING', `the lab recorded in ${stateDir} (pid ${info.pid}) is not running any more; removed its lab.json`, { hint: 'start a new one with mcp-release lab start' });
    }
    if (!(await isOurLab(info.pid))) {
      throw new LabError('LAB_PID_MISMATCH', `pid ${info.pid} in ${path.join(stateDir, LAB_INFO)} is not an mcp-release lab; not stopping it`, { hint: `remove the stale ${LAB_INFO} and stop your lab by hand` });
    }
    process.kill(info.pid, 'SIGTERM');
    for (let i = 0; i < 200 && alive(info.pid); i += 1) await new Promise((r) => setTimeout(r, 50));
    if (alive(info.pid)) throw new LabError('LAB_STOP_TIMEOUT', `the lab (pid ${info.pid}) did not stop within 10 s`, { hint: `kill ${info.pid}` });
    io.stdout(`stopped the lab (pid ${info.pid})\n`);
    return 0;
  }
  if (action === 'env') {
    const info = await readInfo(stateDir);
    io.stdout(values.json ? `${JSON.stringify(info.env, null, 2)}\n` : `${exportLines(info.env)}\n`);
    return 0;
  }
  throw new CliError('USAGE', `unknown lab action ${JSON.stringify(action)}`, { hint: 'mcp-release lab start | stop | env [--state DIR]' });
}
