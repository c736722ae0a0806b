import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import type { Chaos, Lab } from '@mcp-release/lab';
import { readManifest } from '@mcp-release/manifest';
import type { ChaosCase, FaultSpec, Outcome } from './cases.js';
import { classify, lastError, type PrintedError } from './outcome.js';
import { finishedProblems, leftoverProblems, publicParts, readPublicState } from './state.js';
import { caseDir, freshWidget, removeDir, REPOSITORY, TAG, widgetLab, type Widget } from './world.js';

export interface CaseLimits {
  /** The release run (and, separately, the resume) is killed after this long and counts as hung. */
  runMs: number;
  resumeMs: number;
}

export interface CaseResult {
  id: string;
  target: string;
  fault: string;
  expected: Outcome;
  observed: string;
  seconds: number;
  pass: boolean;
  /** How many requests each fault answered. */
  hits: number[];
  /** The coded error of the failed run, if any. */
  error?: PrintedError;
  /** What was public right after the failed or killed run. */
  publicAfterFailure?: string[];
  resumed?: boolean;
  verified?: boolean;
  /** Why the case failed, besides a differing outcome. */
  problems: string[];
  /** Seconds spent making the repository and the lab, in the release run, in resume, in the final checks. */
  phases: { setup: number; release: number; resume?: number; checks?: number };
  /** The end of the release's (or resume's) output when the case failed. */
  tail?: string;
}

/** A CLI process in its own process group, so that what it leaves running can be stopped with it. */
interface Running {
  child: ChildProcess;
  stderr: () => string;
  ended: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startCli(cli: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, onStderr?: (text: string) => void): Running {
  const child = spawn(process.execPath, [cli, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let stderr = '';
  child.stdout?.resume();
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    onStderr?.(stderr);
  });
  const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('error', () => resolve({ code: null, signal: null }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  return { child, stderr: () => stderr, ended };
}

/** Whether anything of the process group led by `pid` still runs. */
function groupAlive(pid: number | undefined): boolean {
  if (!pid) return false;
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(pid: number | undefined): void {
  if (!pid) return;
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Waits for what a killed release left running (npm, git) to end on its own, then stops the rest. */
async function settleGroup(pid: number | undefined, ms: number): Promise<void> {
  const until = Date.now() + ms;
  while (groupAlive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  killGroup(pid);
}

function chaosOf(lab: Lab, service: FaultSpec['service']): Chaos {
  const s = lab.services[service];
  if (!s) throw new Error(`the lab has no service ${service}`);
  return s.chaos;
}

/** How many requests the fault has answered so far (a case has at most one rule per service and route). */
function hitsOf(lab: Lab, spec: FaultSpec, armed: boolean): number {
  if (!armed) return 0;
  const left = chaosOf(lab, spec.service)
    .pending()
    .find((p) => p.route === spec.rule.route && p.method === spec.rule.method && p.fault.kind === spec.rule.fault.kind)?.count;
  return spec.rule.count - (left ?? 0);
}

function stepDone(stderr: string, step: string): boolean {
  return new RegExp(`^✔ \\[\\d+/\\d+\\] ${step.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} `, 'm').test(stderr);
}

function tail(text: string, lines = 25): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/** The release run of a case: faults armed, the kill point watched, the time limit kept. */
async function releaseRun(c: ChaosCase, lab: Lab, cli: string, widget: Widget, out: string, env: NodeJS.ProcessEnv, limits: CaseLimits, signal: AbortSignal): Promise<{ code: number | null; stderr: string; hung: boolean; killed: boolean; pid: number | undefined; armed: boolean[] }> {
  const armed = c.faults.map((f) => !f.armAfter);
  c.faults.forEach((f, i) => {
    if (armed[i]) chaosOf(lab, f.service).add(f.rule);
  });
  let killed = false;
  const kill = (): void => {
    if (killed || !running.child.pid) return;
    killed = true;
    try {
      running.child.kill('SIGKILL');
    } catch {
      // already gone
    }
  };
  const onStderr = (text: string): void => {
    c.faults.forEach((f, i) => {
      if (!armed[i] && f.armAfter && stepDone(text, f.armAfter)) {
        armed[i] = true;
        chaosOf(lab, f.service).add(f.rule);
      }
    });
    if (c.kill?.kind === 'after-step' && stepDone(text, c.kill.step)) kill();
  };
  const running: Running = startCli(cli, ['release', '--out', out, '--repo', widget.repo, '--no-native'], widget.repo, env, onStderr);
  const pid = running.child.pid;
  let hung = false;
  const limit = setTimeout(() => {
    hung = true;
    killGroup(pid);
  }, limits.runMs);
  const abort = (): void => killGroup(pid);
  signal.addEventListener('abort', abort);
  let poll: NodeJS.Timeout | undefined;
  const during = c.kill?.kind === 'during-fault' ? c.kill : undefined;
  const first = c.faults[0];
  if (during && first) {
    poll = setInterval(() => {
      if (hitsOf(lab, first, armed[0] as boolean) >= during.hits) {
        clearInterval(poll);
        setTimeout(kill, during.waitMs);
      }
    }, 25);
  }
  const { code } = await running.ended;
  clearTimeout(limit);
  if (poll) clearInterval(poll);
  signal.removeEventListener('abort', abort);
  return { code, stderr: running.stderr(), hung, killed: killed && !hung, pid, armed };
}

async function cliRun(cli: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, ms: number, signal: AbortSignal): Promise<{ code: number | null; stderr: string; hung: boolean }> {
  const running = startCli(cli, args, cwd, env);
  const pid = running.child.pid;
  let hung = false;
  const limit = setTimeout(() => {
    hung = true;
    killGroup(pid);
  }, ms);
  const abort = (): void => killGroup(pid);
  signal.addEventListener('abort', abort);
  const { code } = await running.ended;
  clearTimeout(limit);
  signal.removeEventListener('abort', abort);
  killGroup(pid);
  return { code, stderr: running.stderr(), hung };
}

/** The checks of a finished release: the public state against the manifest, and a consumer's verify. */
async function finishedChecks(lab: Lab, cli: string, widget: Widget, out: string, env: NodeJS.ProcessEnv, signal: AbortSignal): Promise<{ problems: string[]; verified: boolean; tail?: string }> {
  let manifest;
  try {
    manifest = await readManifest(path.join(out, 'manifest.json'));
  } catch (err) {
    return { problems: [`the manifest cannot be read: ${(err as Error).message}`], verified: false };
  }
  const problems = finishedProblems(await readPublicState(lab), manifest, widget.commit);
  const verify = await cliRun(cli, ['verify', '--tag', TAG, '--repository', REPOSITORY, '--registry', lab.registry.url, '--policy', path.join(widget.repo, 'policies', 'release-policy.yaml')], widget.repo, env, 90_000, signal);
  const verified = verify.code === 0 && !verify.hung;
  if (!verified) problems.push(`mcp-release verify --tag ${TAG} failed${verify.hung ? ' (timed out)' : ''}: ${lastError(verify.stderr)?.code ?? `exit ${verify.code}`}`);
  return { problems, verified, ...(verified ? {} : { tail: tail(verify.stderr) }) };
}

/** Runs one case in its own repository (a copy of `template`) and lab, and removes both. */
export async function runCase(c: ChaosCase, cli: string, template: Widget | undefined, limits: CaseLimits, signal: AbortSignal): Promise<CaseResult> {
  const started = performance.now();
  const dir = await caseDir(c.id);
  let lab: Lab | undefined;
  let pid: number | undefined;
  const result: CaseResult = { id: c.id, target: c.target, fault: c.fault, expected: c.expected, observed: 'not run', seconds: 0, pass: false, hits: c.faults.map(() => 0), problems: [], phases: { setup: 0, release: 0 } };
  const since = (t: number): number => Math.round((performance.now() - t) / 100) / 10;
  try {
    const widget = await freshWidget(dir, template, c.bigBytes ? { bigBytes: c.bigBytes } : {});
    const started2 = await widgetLab(dir, widget);
    lab = started2.lab;
    const { env } = started2;
    const out = path.join(dir, 'out');
    result.phases.setup = since(started);
    let t = performance.now();
    const first = await releaseRun(c, lab, cli, widget, out, env, limits, signal);
    pid = first.pid;
    result.phases.release = since(t);
    if (signal.aborted) throw new Error('the campaign was stopped');
    result.hits = c.faults.map((f, i) => hitsOf(lab as Lab, f, first.armed[i] as boolean));
    c.faults.forEach((f, i) => {
      if (!result.hits[i]) result.problems.push(`the fault never fired: no ${f.rule.method ?? ''} request matched ${f.rule.route} on ${f.service}${f.armAfter ? ` after ${f.armAfter}` : ''}`);
    });
    if (c.kill && !first.killed && !first.hung) result.problems.push('the release ended before its kill point');
    const error = first.code === 0 && !first.killed ? undefined : lastError(first.stderr);
    if (error) result.error = error;
    let publicAfter: string[] = [];
    let resumed: boolean | undefined;
    let finished: { problems: string[]; verified: boolean; tail?: string } | undefined;
    let failureTail = first.code === 0 && !first.killed && !first.hung ? undefined : tail(first.stderr);
    if (first.code === 0 && !first.killed && !first.hung) {
      t = performance.now();
      finished = await finishedChecks(lab, cli, widget, out, env, signal);
      result.phases.checks = since(t);
    } else {
      // Right after the failure or the kill: what consumers can see.
      if (first.killed) await settleGroup(first.pid, 30_000);
      const after = await readPublicState(lab);
      publicAfter = publicParts(after);
      result.publicAfterFailure = publicAfter;
      result.problems.push(...leftoverProblems(after));
      // The fault is gone (the outage ended, the binding was fixed): resume must finish the release.
      for (const f of c.faults) chaosOf(lab, f.service).clear();
      killGroup(first.pid);
      t = performance.now();
      const resume = await cliRun(cli, ['resume', '--manifest', path.join(out, 'manifest.json'), '--repo', widget.repo], widget.repo, env, limits.resumeMs, signal);
      resumed = resume.code === 0 && !resume.hung;
      result.resumed = resumed;
      result.phases.resume = since(t);
      if (!resumed) {
        result.problems.push(`resume after the fault was cleared failed${resume.hung ? ' (timed out)' : ''}: ${lastError(resume.stderr)?.code ?? `exit ${resume.code}`}`);
        failureTail = `${failureTail ?? ''}\n--- resume ---\n${tail(resume.stderr)}`;
      } else {
        t = performance.now();
        finished = await finishedChecks(lab, cli, widget, out, env, signal);
        result.phases.checks = since(t);
      }
    }
    if (finished) {
      result.problems.push(...finished.problems);
      result.verified = finished.verified;
      if (finished.tail) failureTail = `${failureTail ?? ''}\n--- verify ---\n${finished.tail}`;
    }
    result.observed = classify({ hung: first.hung, exitCode: first.code, killed: first.killed, ...(error ? { error } : {}), publicAfter, ...(resumed !== undefined ? { resumed } : {}) }, c.diagnosis);
    result.pass = result.observed === c.expected && result.problems.length === 0;
    if ((!result.pass || process.env.MCP_RELEASE_CHAOS_TAIL) && (failureTail || process.env.MCP_RELEASE_CHAOS_TAIL)) result.tail = failureTail ?? tail(first.stderr, 60);
  } catch (err) {
    result.observed = 'campaign error';
    result.problems.push((err as Error).message);
  } finally {
    killGroup(pid);
    await lab?.stop().catch(() => undefined);
    await removeDir(dir).catch(() => undefined);
    result.seconds = since(started);
  }
  return result;
}
