/** Pure logic of the golden gate: the places rule, parity, aggregation and the reports. */

/** A double as sign, integer mantissa and binary exponent: |x| = mantissa * 2^exponent exactly. */
function decompose(x: number): { negative: boolean; mantissa: bigint; exponent: number } {
  const view = new DataView(new ArrayBuffer(8));
  view.setFloat64(0, x);
  const bits = view.getBigUint64(0);
  const negative = bits >> 63n === 1n;
  const biased = Number((bits >> 52n) & 0x7ffn);
  const fraction = bits & 0xfffffffffffffn;
  if (biased === 0) return { negative, mantissa: fraction, exponent: -1074 };
  return { negative, mantissa: fraction | (1n << 52n), exponent: biased - 1075 };
}

/**
 * Python's `round(x, places)` for a float: the exact binary value of `x` is rounded to `places`
 * decimals, ties to even, and the decimal result is read back as the nearest double.
 */
export function pythonRound(x: number, places: number): number {
  if (!Number.isInteger(places) || places < 0) throw new RangeError(`places must be a whole number >= 0, not ${places}`);
  if (!Number.isFinite(x) || x === 0) return x;
  const { negative, mantissa, exponent } = decompose(x);
  const scale = 10n ** BigInt(places);
  let num = mantissa * scale;
  let den = 1n;
  if (exponent >= 0) num <<= BigInt(exponent);
  else den <<= BigInt(-exponent);
  let q = num / den;
  const twice = (num % den) * 2n;
  if (twice > den || (twice === den && q % 2n === 1n)) q += 1n;
  const value = Number(`${q}e-${places}`);
  return negative ? -value : value;
}

/** Netflix's assertAlmostEqual(measured, golden, places): round(measured - golden, places) == 0. */
export function placesPass(measured: number, golden: number, places: number): boolean {
  if (!Number.isFinite(measured) || !Number.isFinite(golden)) return false;
  return pythonRound(measured - golden, places) === 0;
}

export type ResultStatus = 'pass' | 'fail' | 'not-applicable' | 'error';

export interface CheckResult {
  check: string;
  scorer: string;
  backend: string;
  metric: string;
  golden: number;
  places: number;
  status: ResultStatus;
  measured?: number;
  /** measured - golden, as Python computes it (a double subtraction). */
  difference?: number;
  /** Why the check was not applicable, or the scorer's error. */
  reason?: string;
}

/** Judges one measured value against its golden. */
export function judge(base: Omit<CheckResult, 'status' | 'measured' | 'difference' | 'reason'>, measured: number): CheckResult {
  const difference = measured - base.golden;
  return { ...base, measured, difference, status: placesPass(measured, base.golden, base.places) ? 'pass' : 'fail' };
}

export interface ParityResult {
  check: string;
  scorer: string;
  backend: string;
  cpu: number;
  gpu: number;
  difference: number;
  places: number;
  pass: boolean;
}

/** A GPU backend's value against the CPU's on the same check: the same rule at the policy's parity places. */
export function parity(check: string, scorer: string, backend: string, cpu: number, gpu: number, places: number): ParityResult {
  return { check, scorer, backend, cpu, gpu, difference: gpu - cpu, places, pass: placesPass(gpu, cpu, places) };
}

export type BackendState = 'available' | 'not-built' | 'skipped' | 'missing';

export interface BackendStatus {
  backend: string;
  state: BackendState;
  required: boolean;
  reason: string;
  evidence: { recordedOption: string | null; linked: string[]; advertised: boolean };
}

export interface GateSummary {
  total: number;
  passed: number;
  failed: number;
  errors: number;
  notApplicable: number;
  parityFailed: number;
  /** Checks no scorer could compute. */
  uncovered: string[];
}

export interface GateReport {
  schemaVersion: 1;
  table: { path: string; sha256: string; schemaVersion: number; goldens: number };
  fixtures: string;
  rule: string;
  scorers: Array<{ name: string; binary: string; version?: string; note?: string }>;
  backends: BackendStatus[];
  results: CheckResult[];
  parity: ParityResult[];
  /** The release files that were scored (native artifacts, the server tarball). */
  subjects: Array<{ name: string; sha256: string }>;
  summary: GateSummary;
  passed: boolean;
  /** Why the gate failed, one line each. */
  failures: string[];
}

/** Totals over the results; a gate passes when nothing failed or errored, every parity holds and every required backend ran. */
export function aggregate(results: CheckResult[], parities: ParityResult[], backends: BackendStatus[], checkIds: string[]): { summary: GateSummary; passed: boolean; failures: string[] } {
  const count = (s: ResultStatus): number => results.filter((r) => r.status === s).length;
  const covered = new Set(results.filter((r) => r.status === 'pass' || r.status === 'fail').map((r) => r.check));
  const summary: GateSummary = {
    total: results.length,
    passed: count('pass'),
    failed: count('fail'),
    errors: count('error'),
    notApplicable: count('not-applicable'),
    parityFailed: parities.filter((p) => !p.pass).length,
    uncovered: checkIds.filter((id) => !covered.has(id)),
  };
  const failures: string[] = [];
  for (const r of results) {
    if (r.status === 'fail') failures.push(`${r.check} [${r.scorer}/${r.backend}]: golden ${fmt(r.golden)}, measured ${fmt(r.measured)}, difference ${fmtDiff(r.difference)} (places ${r.places})`);
    if (r.status === 'error') failures.push(`${r.check} [${r.scorer}/${r.backend}]: the scorer failed: ${r.reason ?? 'unknown error'}`);
  }
  for (const p of parities) if (!p.pass) failures.push(`${p.check} [${p.scorer}] ${p.backend} vs cpu: cpu ${fmt(p.cpu)}, ${p.backend} ${fmt(p.gpu)}, difference ${fmtDiff(p.difference)} (parity places ${p.places})`);
  for (const b of backends) if (b.required && b.state !== 'available') failures.push(`backend ${b.backend} is required by the policy but ${b.state}: ${b.reason}`);
  if (results.length > 0 && covered.size === 0) failures.push('no golden was scored: every check was not applicable to the configured scorers');
  return { summary, passed: failures.length === 0, failures };
}

export function fmt(v: number | undefined): string {
  if (v === undefined) return '—';
  return String(Number(v.toFixed(9)));
}

export function fmtDiff(v: number | undefined): string {
  if (v === undefined) return '—';
  const s = fmt(Math.abs(v));
  return `${v < 0 ? '-' : '+'}${s}`;
}

const cell = (s: string): string => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** gate-golden.json: the machine report. */
export function renderJsonReport(report: GateReport): string {
  return `${JSON.stringify(report, null, 2)}\n`;
}

/** gate-golden.md: one table per scorer (check | backend | golden | measured | difference | places | pass), then parity and backends. */
export function renderMarkdownReport(report: GateReport): string {
  const out: string[] = [];
  const s = report.summary;
  out.push(`## Golden-score gate: ${report.passed ? 'PASSED' : 'FAILED'}`, '');
  out.push(`${s.passed} passed, ${s.failed} failed, ${s.errors} errors, ${s.notApplicable} not applicable; table ${report.table.path} (${report.table.goldens} Netflix goldens, sha256 ${report.table.sha256.slice(0, 12)}…).`, '');
  out.push(`Rule: ${report.rule}`, '');
  if (report.failures.length) {
    out.push('### Failures', '');
    for (const f of report.failures) out.push(`- ${cell(f)}`);
    out.push('');
  }
  for (const scorer of [...new Set(report.results.map((r) => r.scorer))]) {
    const info = report.scorers.find((x) => x.name === scorer);
    out.push(`### ${scorer}${info ? ` (${cell(info.binary)}${info.version ? `, ${cell(info.version)}` : ''})` : ''}`, '');
    out.push('| check | backend | golden | measured | difference | places | pass |', '| --- | --- | ---: | ---: | ---: | ---: | --- |');
    for (const r of report.results.filter((x) => x.scorer === scorer)) {
      const pass = r.status === 'pass' ? 'yes' : r.status === 'fail' ? '**NO**' : r.status === 'error' ? `**ERROR**: ${cell(r.reason ?? '')}` : `n/a: ${cell(r.reason ?? '')}`;
      out.push(`| ${cell(r.check)} | ${r.backend} | ${fmt(r.golden)} | ${fmt(r.measured)} | ${fmtDiff(r.difference)} | ${r.places} | ${pass} |`);
    }
    out.push('');
  }
  if (report.parity.length) {
    out.push('### GPU vs CPU parity', '', '| check | backend | cpu | gpu | difference | places | pass |', '| --- | --- | ---: | ---: | ---: | ---: | --- |');
    for (const p of report.parity) out.push(`| ${cell(p.check)} | ${p.backend} | ${fmt(p.cpu)} | ${fmt(p.gpu)} | ${fmtDiff(p.difference)} | ${p.places} | ${p.pass ? 'yes' : '**NO**'} |`);
    out.push('');
  }
  if (report.backends.length) {
    out.push('### Backends', '', '| backend | state | required | reason |', '| --- | --- | --- | --- |');
    for (const b of report.backends) out.push(`| ${b.backend} | ${b.state} | ${b.required ? 'yes' : 'no'} | ${cell(b.reason)} |`);
    out.push('');
  }
  return `${out.join('\n')}\n`;
}
