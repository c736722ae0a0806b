import type { ChaosCase } from './cases.js';
import type { CaseResult } from './run-case.js';

const HEAD = ['case', 'service/step', 'fault', 'expected', 'observed', 'seconds', 'pass'];

function rows(results: readonly CaseResult[]): string[][] {
  return results.map((r) => [r.id, r.target, r.fault, r.expected, r.observed, r.seconds.toFixed(1), r.pass ? 'yes' : 'NO']);
}

/** The results as an aligned text table. */
export function textTable(results: readonly CaseResult[]): string {
  const all = [HEAD, ...rows(results)];
  const widths = HEAD.map((_h, i) => Math.max(...all.map((r) => (r[i] as string).length)));
  const line = (r: string[]): string =>
    r
      .map((cell, i) => (i === 5 ? cell.padStart(widths[i] as number) : cell.padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line(HEAD), widths.map((w) => '-'.repeat(w)).join('  '), ...all.slice(1).map(line)].join('\n');
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|');
}

/** The declared cases as a markdown table (for the docs): what is done, and what must come of it. */
export function markdownCases(cases: readonly ChaosCase[]): string {
  const lines = ['| case | service/step | fault | expected | diagnosis |', '| --- | --- | --- | --- | --- |'];
  for (const c of cases) lines.push(`| \`${c.id}\` | ${cell(c.target)} | ${cell(c.fault)} | ${c.expected} | ${c.diagnosis ? `\`${c.diagnosis.code}\`` : ''} |`);
  return lines.join('\n');
}

/** The closing line of a campaign. */
export function summaryLine(results: readonly CaseResult[]): string {
  const passed = results.filter((r) => r.pass).length;
  return `${passed} passed, ${results.length - passed} failed`;
}

/** Why each failed case failed: its observed outcome, its problems and the end of its output. */
export function failureDetails(results: readonly CaseResult[]): string {
  const out: string[] = [];
  for (const r of results.filter((x) => !x.pass)) {
    out.push(`✖ ${r.id}: expected ${r.expected}, observed ${r.observed}${r.error ? ` (error ${r.error.code}: ${r.error.message})` : ''}`);
    for (const p of r.problems) out.push(`    - ${p}`);
    if (r.tail) out.push(...r.tail.split('\n').map((l) => `    | ${l}`));
  }
  return out.join('\n');
}

/** The JSON written to bench/chaos-results.json. */
export function resultsDocument(results: readonly CaseResult[], meta: { startedAt: string; seconds: number; jobs: number; idleJobs: number; only?: string; stoppedAtLimit: boolean }): unknown {
  const passed = results.filter((r) => r.pass).length;
  return { ...meta, passed, failed: results.length - passed, cases: results };
}
