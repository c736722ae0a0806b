import { access, mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { allCases, selectCases, type ChaosCase } from './cases.js';
import { failureDetails, markdownCases, resultsDocument, summaryLine, textTable } from './report.js';
import { runCase, type CaseLimits, type CaseResult } from './run-case.js';
import { caseDir, removeDir, widgetRepo, type Widget } from './world.js';

/**
 * `npm run chaos`: every case in a fresh widget repository and a fresh lab, a few at a time, under
 * one overall time limit. Prints the table and `N passed, M failed`; writes the results as JSON;
 * exits 1 when a case failed or the time limit stopped the campaign.
 *
 *   --only RE          the cases whose id matches RE (also MCP_RELEASE_CHAOS_ONLY)
 *   --jobs N           cases at once (default 3; MCP_RELEASE_CHAOS_JOBS): one case keeps about
 *                      half a core busy on average (its release, npm, git, its lab in this process)
 *   --idle-jobs N      timeout cases at once besides those (default 2): they spend most of their
 *                      time waiting for a client's time limit, so they run in a lane of their own
 *   --time-limit MIN   stop everything after MIN minutes (default 20; MCP_RELEASE_CHAOS_TIME_LIMIT)
 *   --results FILE     where the JSON goes (default bench/chaos-results.json)
 *   --list             print the declared cases (with --markdown, as a markdown table) and exit
 */

const USAGE = 'usage: npm run chaos -- [--only RE] [--jobs N] [--idle-jobs N] [--time-limit MIN] [--results FILE] [--list [--markdown]]';

function fail(message: string): never {
  process.stderr.write(`chaos: ${message}\n${USAGE}\n`);
  process.exit(2);
}

function bounded(name: string, raw: string | undefined, fallback: number, min: number, max: number): number {
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min || n > max) fail(`${name} ${JSON.stringify(raw)} must be a number from ${min} to ${max}`);
  return n;
}

/** A case that mostly waits for a client's time limit to pass. */
const waits = (c: ChaosCase): boolean => c.id.endsWith('-timeout');

/** Longest first, so that slow cases do not trail at the end. */
function weight(c: ChaosCase): number {
  if (waits(c)) return 4;
  if (c.kill?.kind === 'during-fault' || c.id.endsWith('-slow')) return 3;
  if (c.id.endsWith('-repeated') || c.id.endsWith('-4xx') || c.kill) return 2;
  return 1;
}

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        only: { type: 'string' },
        jobs: { type: 'string' },
        'idle-jobs': { type: 'string' },
        'time-limit': { type: 'string' },
        results: { type: 'string' },
        list: { type: 'boolean' },
        markdown: { type: 'boolean' },
      },
      strict: true,
    }));
  } catch (err) {
    fail((err as Error).message);
  }
  const root = process.env.MCP_RELEASE_CHAOS_ROOT ?? process.cwd();
  const only = values.only ?? process.env.MCP_RELEASE_CHAOS_ONLY;
  let cases: ChaosCase[];
  try {
    cases = selectCases(allCases(), only);
  } catch (err) {
    fail((err as Error).message);
  }
  if (!cases.length) fail(`no case id matches ${JSON.stringify(only)}`);
  if (values.list) {
    process.stdout.write(`${values.markdown ? markdownCases(cases) : cases.map((c) => `${c.id.padEnd(28)} ${c.target} — ${c.fault} → ${c.expected}${c.diagnosis ? ` (${c.diagnosis.code})` : ''}`).join('\n')}\n`);
    return 0;
  }
  const jobs = Math.floor(bounded('--jobs', values.jobs ?? process.env.MCP_RELEASE_CHAOS_JOBS, 3, 1, 8));
  const idleJobs = Math.floor(bounded('--idle-jobs', values['idle-jobs'], 2, 0, 8));
  const minutes = bounded('--time-limit', values['time-limit'] ?? process.env.MCP_RELEASE_CHAOS_TIME_LIMIT, 20, 0.1, 240);
  const resultsFile = path.resolve(root, values.results ?? path.join('bench', 'chaos-results.json'));
  const cli = path.join(root, 'packages', 'cli', 'dist', 'mcp-release.mjs');
  try {
    await access(cli);
  } catch {
    fail(`${cli} is missing: build the CLI first (node scripts/build.mjs; npm run chaos does it)`);
  }
  const limits: CaseLimits = { runMs: 120_000, resumeMs: 120_000 };

  const startedAt = new Date().toISOString();
  const t0 = performance.now();
  const stop = new AbortController();
  let stoppedAtLimit = false;
  const limit = setTimeout(() => {
    stoppedAtLimit = true;
    process.stderr.write(`\nchaos: the time limit of ${minutes} min is reached; stopping the cases under way (their release processes are killed) and starting no more\n`);
    stop.abort();
  }, minutes * 60_000);
  const interrupt = (): void => {
    process.stderr.write('\nchaos: interrupted; stopping the cases under way\n');
    stop.abort();
  };
  process.on('SIGINT', interrupt);
  process.on('SIGTERM', interrupt);

  process.stderr.write(`chaos: ${cases.length} case(s), ${jobs} at a time (and ${idleJobs} waiting on time limits), time limit ${minutes} min\n`);
  const byWeight = [...cases].sort((a, b) => weight(b) - weight(a));
  const idleQueue = idleJobs ? byWeight.filter(waits) : [];
  const queue = byWeight.filter((c) => !idleQueue.includes(c));
  const results = new Map<string, CaseResult>();
  let done = 0;
  const templateDir = await caseDir('template');
  let template: Widget;
  try {
    template = await widgetRepo(templateDir);
  } catch (err) {
    await removeDir(templateDir);
    throw err;
  }
  // A worker of the main lane takes the waiting cases too once its own queue is empty.
  const worker = async (lanes: ChaosCase[][]): Promise<void> => {
    const next = (): ChaosCase | undefined => lanes.find((l) => l.length)?.shift();
    for (let c = next(); c && !stop.signal.aborted; c = next()) {
      const r = await runCase(c, cli, template, limits, stop.signal);
      if (stop.signal.aborted && !r.pass) r.observed = 'stopped (time limit)';
      results.set(c.id, r);
      done += 1;
      process.stderr.write(`[${String(done).padStart(String(cases.length).length)}/${cases.length}] ${r.pass ? 'pass' : 'FAIL'} ${r.id} (${r.seconds.toFixed(1)} s): ${r.observed}${r.pass || !r.problems.length ? '' : `; ${r.problems[0]}`}\n`);
    }
  };
  try {
    await Promise.all([...Array.from({ length: jobs }, () => worker([queue, idleQueue])), ...Array.from({ length: idleJobs }, () => worker([idleQueue]))]);
  } finally {
    await removeDir(templateDir);
  }
  clearTimeout(limit);
  process.off('SIGINT', interrupt);
  process.off('SIGTERM', interrupt);

  const ordered: CaseResult[] = cases.map(
    (c) => results.get(c.id) ?? { id: c.id, target: c.target, fault: c.fault, expected: c.expected, observed: stoppedAtLimit ? 'not run (time limit)' : 'not run (interrupted)', seconds: 0, pass: false, hits: [], problems: [], phases: { setup: 0, release: 0 } },
  );
  const seconds = Math.round((performance.now() - t0) / 100) / 10;
  await mkdir(path.dirname(resultsFile), { recursive: true });
  await writeFile(resultsFile, `${JSON.stringify(resultsDocument(ordered, { startedAt, seconds, jobs, idleJobs, ...(only ? { only } : {}), stoppedAtLimit }), null, 2)}\n`);

  const details = failureDetails(ordered);
  process.stdout.write(`\n${textTable(ordered)}\n\n`);
  if (details) process.stdout.write(`${details}\n\n`);
  if (stop.signal.aborted) process.stdout.write(`chaos: stopped ${stoppedAtLimit ? `at the time limit of ${minutes} min` : 'by an interrupt'}; ${ordered.filter((r) => r.observed.startsWith('not run')).length} case(s) did not run\n`);
  process.stdout.write(`results: ${path.relative(root, resultsFile)} (${seconds.toFixed(1)} s)\n`);
  process.stdout.write(`${summaryLine(ordered)}\n`);
  return ordered.every((r) => r.pass) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
