import { digestOf } from '../source.js';
import { hashFile } from '@mcp-release/manifest';
import { IN_TOTO_STATEMENT_V1 } from '../provenance/statement.js';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { canonicalJson, resolveInside, writeFileAtomic, type Artifact } from '@mcp-release/manifest';
import { hashWithProgress, skip, type Step } from '@mcp-release/pipeline';
import { StepError } from '../errors.js';
import type { ReleaseContext, ReleaseOptions } from '../options.js';
import type { Policy } from '../policy.js';
import { endpointsFromEnv, githubIdentity, ReleaseSigner } from '../sigstore/signing.js';
import { linkNativeLibrary } from '../smoke-mcp.js';
import { linkedLibraries, resolveBackends, type BackendPolicy } from './backends.js';
import { aggregate, fmt, fmtDiff, judge, parity, renderJsonReport, renderMarkdownReport, type BackendStatus, type CheckResult, type GateReport, type ParityResult } from './logic.js';
import { ffmpegScorer, mcpScorer, vmafCliScorer, type CliUsage, type GateScorer, type ScorerDeps } from './scorers.js';
import { DEFAULT_GOLDEN_TABLE, loadGoldenTable, sha256Of, type GoldenCheck, type GoldenTable } from './table.js';

export const GATE_REPORT_JSON = 'gate-golden.json';
export const GATE_REPORT_MD = 'gate-golden.md';
export const GATE_ATTESTATION = 'gate-golden.intoto.sigstore.json';
export const GOLDEN_PREDICATE_TYPE = 'https://mcp-release.dev/attestations/golden-scores/v1';

export type ScorerSpec =
  /** A vmaf-compatible CLI; default: --vmaf-bin, else this release's native CLI for the platform. */
  | { kind: 'vmaf-cli'; binary?: string }
  /** ffmpeg with the libvmaf 1.x filter; default: FFMPEG_BIN, else ffmpeg on PATH. */
  | { kind: 'ffmpeg'; binary?: string }
  /** The packed MCP server of this release (default: mcp.package), scoring through the vmaf CLI above. */
  | { kind: 'mcp'; package?: string };

/** The policy section `gates.golden`. Paths are relative to the repository root. */
export interface GoldenGatePolicy {
  /** Default policies/golden-scores.json. */
  table?: string;
  /** The fixture folder the table's files are relative to; default: given by the caller. */
  fixtures?: string;
  /** Default: [{ kind: vmaf-cli }]. */
  scorers?: ScorerSpec[];
  backends?: BackendPolicy;
  /** Places of the GPU-vs-CPU comparison; default 4. */
  parityPlaces?: number;
  /** Run only these goldens (by id or metric); default all. */
  select?: { ids?: string[]; metrics?: string[] };
}

// ---------------------------------------------------------------------------------------------
// The gate itself, without a release context.

export interface GoldenGateInput {
  table: GoldenTable;
  tablePath: string;
  tableSha256: string;
  fixturesDir: string;
  scorers: GateScorer[];
  backends: BackendStatus[];
  parityPlaces: number;
  select?: GoldenGatePolicy['select'];
  subjects?: Array<{ name: string; sha256: string }>;
  progress?: (line: string) => void;
}

export function selectGoldens(table: GoldenTable, select?: GoldenGatePolicy['select']): GoldenCheck[] {
  return table.goldens.filter((g) => (!select?.ids || select.ids.includes(g.id)) && (!select?.metrics || select.metrics.includes(g.metric)));
}

/**
 * Every fixture file the checks read must have the table's sha256: a different file is a
 * configuration error (the wrong fixture folder or a damaged copy), never score drift.
 */
export async function verifyFixtures(table: GoldenTable, checks: GoldenCheck[], fixturesDir: string, withLibvmaf1Model: boolean): Promise<number> {
  const expected = new Map<string, string>();
  for (const c of checks) {
    expected.set(c.pair.reference, c.pair.sha256.reference);
    if (!c.compute.distortedIsReference) expected.set(c.pair.distorted, c.pair.sha256.distorted);
    if (c.compute.kind === 'vmaf') expected.set(c.compute.modelFile, table.models[c.compute.modelFile] ?? '');
  }
  if (withLibvmaf1Model) for (const f of [table.libvmaf1Model, `${table.libvmaf1Model}.model`]) expected.set(f, table.models[f] ?? '');
  const missing: string[] = [];
  const wrong: string[] = [];
  for (const [rel, sha] of [...expected].sort(([a], [b]) => (a < b ? -1 : 1))) {
    let bytes: Buffer;
    try {
      bytes = await readFile(path.join(fixturesDir, rel));
    } catch {
      missing.push(rel);
      continue;
    }
    const actual = sha256Of(bytes);
    if (actual !== sha) wrong.push(`${rel}: sha256 ${actual} but the table expects ${sha || '(none recorded)'}`);
  }
  if (missing.length) {
    throw new StepError('GATE_FIXTURE_MISSING', `${missing.length} fixture file(s) are missing from ${fixturesDir}: ${missing.slice(0, 3).join(', ')}${missing.length > 3 ? ', …' : ''}`, {
      details: missing,
      hint: 'point gates.golden.fixtures at the VMAF fixture folder the table was generated from (it holds yuv/ and model/)',
    });
  }
  if (wrong.length) {
    throw new StepError('GATE_FIXTURE_MISMATCH', `${wrong.length} fixture file(s) in ${fixturesDir} are not the ones the golden table was made for: ${wrong[0]}`, {
      details: wrong,
      hint: 'restore the fixture files (Netflix/vmaf_resource yuv at the commit in the table provenance), or regenerate the table from the fixture folder if it was updated on purpose; this is a configuration error, not score drift',
    });
  }
  return expected.size;
}

function describeError(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Verifies the fixtures, scores every golden each scorer can compute (on the CPU and every available GPU backend), and judges. */
export async function runGoldenGate(input: GoldenGateInput): Promise<GateReport> {
  const checks = selectGoldens(input.table, input.select);
  if (!checks.length) throw new StepError('GATE_NO_CHECKS', 'the golden gate selects no checks', { hint: 'widen gates.golden.select (ids, metrics) or check the table' });
  await verifyFixtures(input.table, checks, input.fixturesDir, input.scorers.some((s) => s.name === 'ffmpeg'));
  const gpus = input.backends.filter((b) => b.backend !== 'cpu' && b.state === 'available').map((b) => b.backend);
  const results: CheckResult[] = [];
  const parities: ParityResult[] = [];
  for (const scorer of input.scorers) {
    input.progress?.(`scoring ${checks.length} golden(s) with ${scorer.name}`);
    for (const check of checks) {
      const base = { check: check.id, scorer: scorer.name, metric: check.metric, golden: check.expected, places: check.places };
      const reason = scorer.applicable(check);
      if (reason) {
        results.push({ ...base, backend: 'cpu', status: 'not-applicable', reason });
        continue;
      }
      let cpu: number | undefined;
      for (const backend of ['cpu', ...(scorer.selectsBackend ? gpus : [])]) {
        try {
          const measured = await scorer.score(check, backend);
          results.push(judge({ ...base, backend }, measured));
          if (backend === 'cpu') cpu = measured;
          else if (cpu !== undefined) parities.push(parity(check.id, scorer.name, backend, cpu, measured, input.parityPlaces));
        } catch (err) {
          results.push({ ...base, backend, status: 'error', reason: describeError(err) });
        }
      }
    }
  }
  const { summary, passed, failures } = aggregate(
    results,
    parities,
    input.backends,
    checks.map((c) => c.id),
  );
  return {
    schemaVersion: 1,
    table: { path: input.tablePath, sha256: input.tableSha256, schemaVersion: input.table.schemaVersion, goldens: checks.length },
    fixtures: input.fixturesDir,
    rule: input.table.rule,
    scorers: input.scorers.map((s) => ({ name: s.name, binary: s.binary, ...(s.version ? { version: s.version } : {}), ...(s.note ? { note: s.note } : {}) })),
    backends: input.backends,
    results,
    parity: parities,
    subjects: input.subjects ?? [],
    summary,
    passed,
    failures,
  };
}

/** The error a failed gate stops the release with: every failing check with golden, measured and difference. */
export function gateFailure(report: GateReport): StepError {
  const checkFailures = report.results.filter((r) => r.status === 'fail' || r.status === 'error').length + report.parity.filter((p) => !p.pass).length;
  const backendOnly = checkFailures === 0 && report.backends.some((b) => b.required && b.state !== 'available');
  if (backendOnly) {
    const missing = report.backends.filter((b) => b.required && b.state !== 'available');
    return new StepError('GATE_BACKEND_MISSING', `the golden gate needs backend(s) ${missing.map((b) => `${b.backend} (${b.state}: ${b.reason})`).join('; ')}`, {
      details: report.failures,
      hint: 'build the vmaf CLI with that backend (e.g. -Denable_cuda=true in native.options) on a runner that has it, or move it from gates.golden.backends.required to optional',
    });
  }
  const failed = report.results.filter((r) => r.status === 'fail');
  const head = failed[0];
  return new StepError(
    'GATE_GOLDEN_FAILED',
    `${checkFailures} golden check(s) failed${head ? `, e.g. ${head.check} [${head.scorer}/${head.backend}]: golden ${fmt(head.golden)}, measured ${fmt(head.measured)}, difference ${fmtDiff(head.difference)} at places ${head.places}` : ''}`,
    {
      details: report.failures,
      hint: `the scorer no longer reproduces Netflix's golden scores; see ${GATE_REPORT_MD}. Fix the scorer build (model, features, bit-depth handling) rather than the table`,
    },
  );
}

// ---------------------------------------------------------------------------------------------
// The release step.

export function goldenGatePolicy(policy: Policy): GoldenGatePolicy | undefined {
  return (policy as Policy & { gates?: { golden?: GoldenGatePolicy } }).gates?.golden;
}

export interface GateGoldenDefaults {
  /** The fixture folder when the policy names none. */
  fixtures?: string;
  /** The gate's settings when the policy has no gates.golden section. */
  policy?: GoldenGatePolicy;
}

function fromRoot(root: string, p: string): string {
  return path.isAbsolute(p) ? p : path.join(root, p);
}

interface ResolvedCli {
  binary: string;
  artifact?: Artifact;
  library?: Artifact;
  libDir?: string;
}

async function resolveVmafCli(ctx: ReleaseContext, spec: { binary?: string } | undefined): Promise<ResolvedCli | undefined> {
  if (spec?.binary) return { binary: fromRoot(ctx.repoRoot, spec.binary) };
  if (ctx.options.vmafBin) return { binary: ctx.options.vmafBin };
  const cli = ctx.manifest.artifacts.find((a) => a.kind === 'native-cli' && a.platform === ctx.options.platform);
  if (!cli) return undefined;
  const library = ctx.manifest.artifacts.find((a) => a.kind === 'native-library' && a.platform === ctx.options.platform);
  const libDir = await linkNativeLibrary(ctx.releaseDir, library, path.join(ctx.workDir, 'gate-golden-lib'));
  return { binary: await resolveInside(ctx.releaseDir, cli.path, 'native CLI'), artifact: cli, ...(library && libDir ? { library, libDir } : {}) };
}

/**
 * The golden-score gate: scores Netflix's golden checks (policies/golden-scores.json) with the
 * configured scorers and backends and fails the release when any drifts from its golden at the
 * golden's places. Writes gate-golden.json and gate-golden.md into the release folder.
 */
export function createGateGoldenStep(defaults: GateGoldenDefaults = {}): Step<ReleaseOptions> {
  return {
    name: 'gate-golden',
    description: "score Netflix's golden VMAF/PSNR checks and fail on drift",
    skip(ctx) {
      return goldenGatePolicy(ctx.options.policy) ?? defaults.policy ? undefined : skip('no golden gate configured (gates.golden in the policy)');
    },
    async fingerprint(ctx) {
      // What the gate's answer depends on: the table, the gate's settings, and the bytes that are
      // scored (the native CLI and library of this platform, the MCP server tarball). Fixture
      // files are checked by digest against the table on every run that scores.
      const policy = (goldenGatePolicy(ctx.options.policy) ?? defaults.policy) as GoldenGatePolicy;
      const table = await hashFile(fromRoot(ctx.repoRoot, policy.table ?? DEFAULT_GOLDEN_TABLE)).catch(() => undefined);
      const scored = ctx.manifest.artifacts
        .filter((a) => a.kind === 'npm-tarball' || ((a.kind === 'native-cli' || a.kind === 'native-library') && a.platform === ctx.options.platform))
        .map((a) => [a.path, a.sha256]);
      return digestOf({ step: 'gate-golden', table: table?.sha256 ?? null, policy, fixtures: defaults.fixtures ?? null, scored, vmafBin: ctx.options.vmafBin ?? null });
    },
    async run(ctx) {
      const policy = (goldenGatePolicy(ctx.options.policy) ?? defaults.policy) as GoldenGatePolicy;
      const fixtures = policy.fixtures ? fromRoot(ctx.repoRoot, policy.fixtures) : defaults.fixtures;
      if (!fixtures) {
        throw new StepError('GATE_NO_FIXTURES', 'the golden gate has no fixture folder', { hint: 'set gates.golden.fixtures in the policy to the VMAF fixture folder (it holds golden.json, yuv/ and model/)' });
      }
      const tablePath = policy.table ?? DEFAULT_GOLDEN_TABLE;
      const { table, sha256 } = await loadGoldenTable(fromRoot(ctx.repoRoot, tablePath));
      const specs = policy.scorers ?? [{ kind: 'vmaf-cli' }];
      const cliSpec = specs.find((s) => s.kind === 'vmaf-cli') as { binary?: string } | undefined;
      const needsCli = specs.some((s) => s.kind === 'vmaf-cli' || s.kind === 'mcp');
      const cli = needsCli ? await resolveVmafCli(ctx, cliSpec) : undefined;
      if (needsCli && !cli) {
        throw new StepError('GATE_NO_SCORER', `there is no vmaf CLI for ${ctx.options.platform} to score the goldens with`, {
          hint: 'build the native artifacts (native.source in the policy), pass --vmaf-bin PATH, or set gates.golden.scorers[].binary',
        });
      }
      const env: NodeJS.ProcessEnv = cli?.libDir ? { ...ctx.deps.env, LD_LIBRARY_PATH: [cli.libDir, ctx.deps.env.LD_LIBRARY_PATH].filter(Boolean).join(path.delimiter) } : ctx.deps.env;
      const deps: ScorerDeps = { exec: ctx.deps.exec, env, fixturesDir: fixtures };
      const subjects: Artifact[] = [];
      const scorers: GateScorer[] = [];
      try {
        const cliScorer = cli ? await vmafCliScorer(cli.binary, deps) : undefined;
        for (const spec of specs) {
          if (spec.kind === 'vmaf-cli') scorers.push(cliScorer as GateScorer);
          else if (spec.kind === 'ffmpeg') scorers.push(ffmpegScorer(spec.binary ? fromRoot(ctx.repoRoot, spec.binary) : (ctx.deps.env.FFMPEG_BIN ?? 'ffmpeg'), deps, table));
          else {
            const name = spec.package ?? ctx.options.policy.mcp?.package;
            const tarball = ctx.manifest.artifacts.find((a) => a.kind === 'npm-tarball' && a.meta?.name === name);
            if (!name || !tarball) {
              throw new StepError('GATE_NO_TARBALL', `the mcp scorer needs the packed ${name ?? 'MCP server'} tarball, which this release does not have`, { hint: 'run build-npm first, or set gates.golden.scorers[].package' });
            }
            scorers.push(
              await mcpScorer(
                { tarball: await resolveInside(ctx.releaseDir, tarball.path, 'npm tarball'), vmafBin: (cli as ResolvedCli).binary, usage: (cliScorer as { usage: CliUsage }).usage, ...(cli?.libDir ? { libDir: cli.libDir } : {}), log: (l) => ctx.log.progress(l) },
                deps,
              ),
            );
            subjects.push(tarball);
          }
        }
        if (cli?.artifact) subjects.push(cli.artifact, ...(cli.library ? [cli.library] : []));
        const backends = resolveBackends(policy.backends ?? {}, {
          ...(cliScorer ? { usage: cliScorer.usage } : {}),
          ...(cli?.artifact ? { nativeOptions: ctx.manifest.native?.[ctx.options.platform]?.options ?? {} } : {}),
          linked: cli ? await linkedLibraries(cli.binary, ctx.deps.exec, env) : [],
        });
        const raw = await runGoldenGate({
          table,
          tablePath,
          tableSha256: sha256,
          fixturesDir: fixtures,
          scorers,
          backends,
          parityPlaces: policy.parityPlaces ?? 4,
          ...(policy.select ? { select: policy.select } : {}),
          subjects: subjects.map((a) => ({ name: a.path, sha256: a.sha256 })).sort((a, b) => (a.name < b.name ? -1 : 1)),
          progress: (l) => ctx.progress(l),
        });
        // A release file names no folder of this machine: fixtures relative to the repository,
        // a scorer inside the release folder by its release file name.
        const inside = (p: string): string => {
          const rel = path.relative(ctx.releaseDir, p);
          return rel && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel : p;
        };
        const report: typeof raw = {
          ...raw,
          fixtures: path.relative(ctx.repoRoot, raw.fixtures).split(path.sep).join('/'),
          scorers: raw.scorers.map((sc) => ({ ...sc, binary: inside(sc.binary) })),
        };
        const markdown = renderMarkdownReport(report);
        await writeFileAtomic(path.join(ctx.releaseDir, GATE_REPORT_JSON), renderJsonReport(report));
        await writeFileAtomic(path.join(ctx.releaseDir, GATE_REPORT_MD), markdown);
        await ctx.addArtifact(GATE_REPORT_JSON, 'gate-report', 'any', { gate: 'golden', passed: report.passed });
        await ctx.addArtifact(GATE_REPORT_MD, 'gate-report', 'any', { gate: 'golden', passed: report.passed });
        if (!report.passed) throw gateFailure(report);
        const s = report.summary;
        const skipped = report.backends.filter((b) => b.state !== 'available').map((b) => `${b.backend} ${b.state}: ${b.reason}`);
        return {
          notes: [`${s.passed} golden check(s) passed, ${s.notApplicable} not applicable, ${report.parity.length} GPU parity check(s)`, ...skipped],
          data: { passed: true, summary: { ...s }, markdown, backends: report.backends.map((b) => ({ backend: b.backend, state: b.state })) },
        };
      } finally {
        for (const s of scorers) await s.close?.();
      }
    },
  };
}

/** The gate with no caller defaults: it runs when the policy has a gates.golden section. */
export const gateGoldenStep: Step<ReleaseOptions> = createGateGoldenStep();

// ---------------------------------------------------------------------------------------------
// The attestation.

export interface GoldenStatement {
  _type: typeof IN_TOTO_STATEMENT_V1;
  subject: Array<{ name: string; digest: { sha256: string } }>;
  predicateType: typeof GOLDEN_PREDICATE_TYPE;
  predicate: {
    passed: boolean;
    table: GateReport['table'];
    rule: string;
    scorers: GateReport['scorers'];
    backends: Array<{ backend: string; state: string; required: boolean; reason: string }>;
    results: Array<Omit<CheckResult, 'reason'> & { reason?: string }>;
    parity: ParityResult[];
    summary: GateReport['summary'];
  };
}

/** An in-toto v1 statement of the gate's results over the artifacts that were scored (schema: policies/schemas/golden-scores-predicate.schema.json). */
export function buildGoldenStatement(report: GateReport, subjects: Array<{ name: string; sha256: string }>): GoldenStatement {
  if (!subjects.length) throw new StepError('GATE_ATTEST_NO_SUBJECTS', 'the golden-score statement has no subjects', { hint: 'attest the native artifacts and server tarball the gate scored (report.subjects)' });
  for (const s of subjects) {
    if (!/^[0-9a-f]{64}$/.test(s.sha256)) throw new StepError('GATE_ATTEST_BAD_SUBJECT', `subject ${s.name} has no sha256 digest (${JSON.stringify(s.sha256)})`, { hint: 'pass the sha256 the manifest records for it' });
  }
  return {
    _type: IN_TOTO_STATEMENT_V1,
    subject: [...subjects].sort((a, b) => (a.name < b.name ? -1 : 1)).map((s) => ({ name: s.name, digest: { sha256: s.sha256 } })),
    predicateType: GOLDEN_PREDICATE_TYPE,
    predicate: {
      passed: report.passed,
      table: report.table,
      rule: report.rule,
      scorers: report.scorers,
      backends: report.backends.map((b) => ({ backend: b.backend, state: b.state, required: b.required, reason: b.reason })),
      results: report.results,
      parity: report.parity,
      summary: report.summary,
    },
  };
}

/**
 * DSSE-signs the golden statement with the job's keyless identity into gate-golden.intoto.sigstore.json.
 * Runs after sign: the scored files must still be the bytes the manifest records.
 */
export const goldenAttestationStep: Step<ReleaseOptions> = {
  name: 'attest-gate',
  description: 'attest the golden-score gate results over the scored artifacts, signed with Sigstore',
  skip(ctx) {
    return ctx.manifest.artifacts.some((a) => a.path === GATE_REPORT_JSON) ? undefined : skip(`no ${GATE_REPORT_JSON} in this release (the golden gate did not run)`);
  },
  fingerprint(ctx) {
    const report = ctx.manifest.artifacts.find((a) => a.path === GATE_REPORT_JSON);
    const scored = ctx.manifest.artifacts.filter((a) => a.kind === 'npm-tarball' || a.kind === 'native-cli' || a.kind === 'native-library').map((a) => [a.path, a.sha256]);
    return digestOf({ step: 'attest-gate', report: report?.sha256 ?? null, scored, endpoints: endpointsFromEnv(ctx.deps.env) });
  },
  async run(ctx) {
    const report = JSON.parse(await readFile(await resolveInside(ctx.releaseDir, GATE_REPORT_JSON, 'gate report'), 'utf8')) as GateReport;
    if (!report.passed) throw new StepError('GATE_ATTEST_FAILED_GATE', `${GATE_REPORT_JSON} records a failed gate`, { hint: 'a failed gate is not attested; fix the scorer and run gate-golden again' });
    for (const s of report.subjects) {
      const a = ctx.manifest.artifacts.find((x) => x.path === s.name);
      const d = a ? await hashWithProgress(ctx, await resolveInside(ctx.releaseDir, a.path, 'release file'), a.path) : undefined;
      if (!a || a.sha256 !== s.sha256 || d?.sha256 !== s.sha256) {
        throw new StepError('GATE_ATTEST_SUBJECT_CHANGED', `${s.name} is not the file the golden gate scored (sha256 ${s.sha256.slice(0, 16)}… in the report)`, {
          hint: 'the release changed after the gate; run gate-golden again before attest-gate',
        });
      }
    }
    const statement = buildGoldenStatement(report, report.subjects);
    const signer = new ReleaseSigner(endpointsFromEnv(ctx.deps.env), githubIdentity(ctx.deps.env, 'sigstore'));
    ctx.progress(`signing ${GATE_ATTESTATION}`);
    const bundle = await signer.signStatement(statement);
    await writeFileAtomic(path.join(ctx.releaseDir, GATE_ATTESTATION), canonicalJson(bundle));
    await ctx.addArtifact(GATE_ATTESTATION, 'provenance', 'any', { predicateType: GOLDEN_PREDICATE_TYPE, subjects: statement.subject.length });
    return { notes: [`${GATE_ATTESTATION}: ${statement.subject.length} subject(s), ${report.summary.passed} golden(s) passed`] };
  },
};
