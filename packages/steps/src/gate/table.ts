import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StepError } from '../errors.js';

/**
 * policies/golden-scores.json: the checks the golden gate runs. It is generated from the shared
 * fixture folder's golden.json by `generateGoldenTable` (table.test.ts compares the committed file
 * with the generator's output; `GATE_WRITE_GOLDEN_TABLE=1 npx vitest run packages/steps/src/gate/table.test.ts`
 * rewrites it).
 */
export const GOLDEN_TABLE_SCHEMA_VERSION = 1;
export const DEFAULT_GOLDEN_TABLE = 'policies/golden-scores.json';

export type Chroma = '420' | '422' | '444';
export type BitDepth = 8 | 10 | 12 | 16;

export interface GoldenPair {
  id: string;
  /** Relative to the fixtures folder. */
  reference: string;
  distorted: string;
  width: number;
  height: number;
  /** ffmpeg's name, e.g. yuv420p10le. */
  pixelFormat: string;
  /** The vmaf CLI's -p value. */
  chroma: Chroma;
  bitDepth: BitDepth;
  frames: number;
  frameBytes: number;
  sha256: { reference: string; distorted: string };
}

/** How to compute the check's value. */
export type GoldenCompute =
  | {
      kind: 'vmaf';
      /** The exact `--model` argument of the vmaf CLI (paths relative to the fixtures folder). */
      modelArg: string;
      model: string;
      modelFile: string;
      /** Model options beyond path and name (disable_clip, enhancement-gain limits): a scorer without them cannot compute the check. */
      modelOptions: string[];
      distortedIsReference: boolean;
    }
  | {
      kind: 'feature';
      /** `--no_prediction --feature <arg>` of the vmaf CLI. */
      featureArg: string;
      distortedIsReference: boolean;
    };

export interface GoldenSource {
  repository: string;
  commit: string;
  file: string;
  line: number;
  test: string;
  /** The Netflix runner or extractor the golden comes from. */
  by: string;
}

export interface GoldenCheck {
  id: string;
  pair: GoldenPair;
  metric: string;
  compute: GoldenCompute;
  /** The pooled value (`pooled_metrics.<metric>.mean`) Netflix asserts. */
  expected: number;
  places: number;
  source: GoldenSource;
}

export interface RegressionBaseline {
  id: string;
  pair: GoldenPair;
  metric: string;
  compute: GoldenCompute;
  /** What this toolkit's reference CLI measured: NOT a Netflix golden. */
  measured: number;
  measuredBy: string;
  places: number;
  /** Also recorded for the lusoris fork CLI (CPU). */
  alsoMeasured: Record<string, number>;
}

export interface GoldenTable {
  schemaVersion: typeof GOLDEN_TABLE_SCHEMA_VERSION;
  description: string;
  provenance: {
    note: string;
    fixtures: { repository: string; commit: string; path: string };
    goldens: { repository: string; commit: string; version: string };
    models: { repository: string; commit: string };
    libvmaf1Model: { repository: string; tag: string; commit: string };
    license: string;
  };
  rule: string;
  /** sha256 of every model file a check uses, relative to the fixtures folder. */
  models: Record<string, string>;
  /** The libvmaf 1.x model for the ffmpeg scorer, relative to the fixtures folder. */
  libvmaf1Model: string;
  goldens: GoldenCheck[];
  regressionBaselines: { note: string; checks: RegressionBaseline[] };
}

interface RawGolden {
  value: number;
  places: number;
  source: string;
  test: string;
  runner?: string;
  extractor?: string;
}

interface RawPair {
  id: string;
  reference: string;
  distorted: string;
  width: number;
  height: number;
  pixel_format: string;
  vmaf_cli_pixel_format: string;
  bit_depth: number;
  frames: number;
  frame_bytes: number;
  sha256: { reference: string; distorted: string };
  checks: Array<{ id: string; distorted_is_reference: boolean; model: string; model_file: string; vmaf_cli_model_arg: string; netflix_golden: RawGolden | null; measured: Record<string, number> }>;
  psnr_checks?: Array<{ id: string; metric: string; distorted_is_reference: boolean; vmaf_cli_feature_arg: string; netflix_golden: RawGolden | null; measured: Record<string, number> }>;
}

interface RawGoldenJson {
  schema_version: number;
  origin: {
    netflix_vmaf: { repo: string; commit: string; version: string };
    netflix_vmaf_pkl_model: { repo: string; tag: string; commit: string };
    netflix_vmaf_resource: { repo: string; commit: string; path: string };
    license: string;
  };
  comparison_rule: string;
  pairs: RawPair[];
}

const REFERENCE_CLI = 'vmaf_cli_netflix';
const LIBVMAF1_MODEL = 'model/libvmaf1/vmaf_v0.6.1.pkl';

function bad(message: string): StepError {
  return new StepError('GOLDEN_SOURCE_INVALID', message, { hint: 'regenerate from the fixture folder golden.json described in its README (pairs[].checks[], pairs[].psnr_checks[])' });
}

function pairOf(p: RawPair): GoldenPair {
  if (!['420', '422', '444'].includes(p.vmaf_cli_pixel_format)) throw bad(`pair ${p.id}: unknown pixel format ${p.vmaf_cli_pixel_format}`);
  if (![8, 10, 12, 16].includes(p.bit_depth)) throw bad(`pair ${p.id}: unknown bit depth ${p.bit_depth}`);
  return {
    id: p.id,
    reference: p.reference,
    distorted: p.distorted,
    width: p.width,
    height: p.height,
    pixelFormat: p.pixel_format,
    chroma: p.vmaf_cli_pixel_format as Chroma,
    bitDepth: p.bit_depth as BitDepth,
    frames: p.frames,
    frameBytes: p.frame_bytes,
    sha256: { reference: p.sha256.reference, distorted: p.sha256.distorted },
  };
}

/** `path=X:disable_clip:…:name=vmaf` → the options beyond path and name. */
export function modelOptionsOf(modelArg: string): string[] {
  return modelArg.split(':').filter((part) => !part.startsWith('path=') && !part.startsWith('name=') && !part.startsWith('version='));
}

function sourceOf(g: RawGolden, repo: string, commit: string, id: string): GoldenSource {
  const m = /^(.+):(\d+)$/.exec(g.source);
  if (!m) throw bad(`check ${id}: golden source ${JSON.stringify(g.source)} is not file:line`);
  return { repository: repo, commit, file: m[1] as string, line: Number(m[2]), test: g.test, by: g.runner ?? g.extractor ?? '' };
}

function measuredOf(id: string, measured: Record<string, number>): number {
  const v = measured[REFERENCE_CLI];
  if (typeof v !== 'number') throw bad(`check ${id} has no measured.${REFERENCE_CLI}`);
  return v;
}

/** Builds the table from golden.json and the sha256 of the model files it names. */
export function generateGoldenTable(golden: RawGoldenJson, modelSha256: Record<string, string>): GoldenTable {
  if (golden.schema_version !== 1) throw bad(`golden.json schema_version ${golden.schema_version} is not 1`);
  const nf = golden.origin.netflix_vmaf;
  const goldens: GoldenCheck[] = [];
  const baselines: RegressionBaseline[] = [];
  const models: Record<string, string> = {};
  const modelHash = (file: string): string => {
    const h = modelSha256[file];
    if (!h) throw bad(`no sha256 for the model file ${file}`);
    models[file] = h;
    return h;
  };
  modelHash(LIBVMAF1_MODEL);
  modelHash(`${LIBVMAF1_MODEL}.model`);
  for (const p of golden.pairs) {
    const pair = pairOf(p);
    const rows: Array<{ id: string; metric: string; compute: GoldenCompute; golden: RawGolden | null; measured: Record<string, number> }> = [];
    for (const c of p.checks) {
      modelHash(c.model_file);
      rows.push({
        id: c.id,
        metric: 'vmaf',
        compute: { kind: 'vmaf', modelArg: c.vmaf_cli_model_arg, model: c.model, modelFile: c.model_file, modelOptions: modelOptionsOf(c.vmaf_cli_model_arg), distortedIsReference: c.distorted_is_reference },
        golden: c.netflix_golden,
        measured: c.measured,
      });
    }
    for (const c of p.psnr_checks ?? []) {
      rows.push({ id: c.id, metric: c.metric, compute: { kind: 'feature', featureArg: c.vmaf_cli_feature_arg, distortedIsReference: c.distorted_is_reference }, golden: c.netflix_golden, measured: c.measured });
    }
    for (const r of rows) {
      if (r.golden) {
        goldens.push({ id: r.id, pair, metric: r.metric, compute: r.compute, expected: r.golden.value, places: r.golden.places, source: sourceOf(r.golden, nf.repo, nf.commit, r.id) });
      } else {
        const alsoMeasured: Record<string, number> = {};
        for (const [k, v] of Object.entries(r.measured)) if (k !== REFERENCE_CLI) alsoMeasured[k] = v;
        baselines.push({ id: r.id, pair, metric: r.metric, compute: r.compute, measured: measuredOf(r.id, r.measured), measuredBy: REFERENCE_CLI, places: 4, alsoMeasured });
      }
    }
  }
  const res = golden.origin.netflix_vmaf_resource;
  const pkl = golden.origin.netflix_vmaf_pkl_model;
  return {
    schemaVersion: GOLDEN_TABLE_SCHEMA_VERSION,
    description: 'Checks of the golden-score gate: the pooled scores Netflix/vmaf asserts in its own unit tests (assertAlmostEqual) for the YUV pairs of the shared VMAF fixture folder.',
    provenance: {
      note: `Generated by generateGoldenTable (packages/steps/src/gate/table.ts) from golden.json of the fixture folder. YUV pairs from ${res.repo}@${res.commit} (${res.path}); golden values from ${nf.repo}@${nf.commit} python tests (file:line per check); models from ${nf.repo}@${nf.commit}; the libvmaf 1.x .pkl model from ${pkl.repo} ${pkl.tag} (${pkl.commit}).`,
      fixtures: { repository: res.repo, commit: res.commit, path: res.path },
      goldens: { repository: nf.repo, commit: nf.commit, version: nf.version },
      models: { repository: nf.repo, commit: nf.commit },
      libvmaf1Model: { repository: pkl.repo, tag: pkl.tag, commit: pkl.commit },
      license: golden.origin.license,
    },
    rule: 'PASS iff round(measured - expected, places) == 0, with Python round (half-even on the exact value of the difference): Netflix unittest assertAlmostEqual(places=N).',
    models: Object.fromEntries(Object.entries(models).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
    libvmaf1Model: LIBVMAF1_MODEL,
    goldens,
    regressionBaselines: {
      note: `Measurements of this toolkit's reference CLI (${REFERENCE_CLI}: Netflix/vmaf ${nf.version} at ${nf.commit.slice(0, 8)}, built with -Denable_float=true), recorded where Netflix asserts nothing. They are NOT Netflix goldens and the gate does not run them.`,
      checks: baselines,
    },
  };
}

export function sha256Of(bytes: Buffer): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Reads golden.json and hashes the model files it names, from the fixture folder. */
export async function generateGoldenTableFromFixtures(fixturesDir: string): Promise<GoldenTable> {
  const golden = JSON.parse(await readFile(path.join(fixturesDir, 'golden.json'), 'utf8')) as RawGoldenJson;
  const files = new Set<string>([LIBVMAF1_MODEL, `${LIBVMAF1_MODEL}.model`]);
  for (const p of golden.pairs) for (const c of p.checks) files.add(c.model_file);
  const hashes: Record<string, string> = {};
  for (const f of files) hashes[f] = sha256Of(await readFile(path.join(fixturesDir, f)));
  return generateGoldenTable(golden, hashes);
}

export function renderGoldenTable(table: GoldenTable): string {
  return `${JSON.stringify(table, null, 2)}\n`;
}

/** Loads policies/golden-scores.json (or another table) and checks its shape. */
export async function loadGoldenTable(file: string): Promise<{ table: GoldenTable; sha256: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new StepError('GATE_TABLE_MISSING', `cannot read the golden table ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, {
      hint: `set gates.golden.table in the policy to the table's path (default ${DEFAULT_GOLDEN_TABLE}), relative to the repository root`,
      cause: err,
    });
  }
  let table: GoldenTable;
  try {
    table = JSON.parse(bytes.toString('utf8')) as GoldenTable;
  } catch (err) {
    throw new StepError('GATE_TABLE_INVALID', `${file} is not JSON: ${(err as Error).message}`, { hint: 'regenerate it with generateGoldenTable', cause: err });
  }
  if (table.schemaVersion !== GOLDEN_TABLE_SCHEMA_VERSION || !Array.isArray(table.goldens)) {
    throw new StepError('GATE_TABLE_INVALID', `${file} is not a golden table of schemaVersion ${GOLDEN_TABLE_SCHEMA_VERSION}`, { hint: 'regenerate it with generateGoldenTable' });
  }
  for (const g of table.goldens) {
    if (typeof g.id !== 'string' || typeof g.expected !== 'number' || !Number.isInteger(g.places) || g.places < 0 || !g.pair || !g.compute) {
      throw new StepError('GATE_TABLE_INVALID', `${file}: golden ${JSON.stringify(g.id)} lacks id, expected, places, pair or compute`, { hint: 'regenerate it with generateGoldenTable' });
    }
  }
  return { table, sha256: sha256Of(bytes) };
}
