import path from 'node:path';
import { formatError } from '@mcp-release/manifest';
import { streamLogger, type Logger } from '@mcp-release/pipeline';
import { runRelease, StepError, type PipelineName, type ReleaseRunInput } from '@mcp-release/steps';

/** Typed inputs of every step action; built by the edge from the `with:` block. */
export interface ActionInputs {
  step: string;
  outDir: string;
  repo: string;
  policy?: string;
  nativeSource?: string;
  mesonOptions?: string[];
  vmafBin?: string;
  timestamp?: string;
  /** release-github: replace draft assets whose bytes differ. */
  replace?: boolean;
}

export interface ActionResult {
  ok: boolean;
  outputs: Record<string, string>;
  summary: string;
  error?: string;
}

export const ACTION_STEPS = ['plan', 'build-npm', 'build-native', 'smoke-mcp', 'mcp-consistency', 'gate-golden', 'sbom', 'verify-script', 'checksums', 'sign', 'provenance', 'attest-gate', 'verify', 'release-github', 'publish-npm', 'push-tag', 'undraft'] as const satisfies ReadonlyArray<PipelineName>;

function parseMesonLines(lines: string[] | undefined): Record<string, string> | undefined {
  if (!lines?.length) return undefined;
  const out: Record<string, string> = {};
  for (const line of lines) {
    const m = /^([A-Za-z_][A-Za-z0-9_:.-]*)=(.*)$/.exec(line.trim());
    if (!m) throw new StepError('ACTION_INPUT', `meson-options line ${JSON.stringify(line)} is not NAME=VALUE`, { hint: 'write one option per line, e.g. enable_float=true' });
    out[m[1] as string] = m[2] as string;
  }
  return out;
}

/** Runs one step the way a workflow job does; pure apart from the files it builds. */
export async function runStepAction(inputs: ActionInputs, env: NodeJS.ProcessEnv, log: Logger = streamLogger()): Promise<ActionResult> {
  try {
    if (!(ACTION_STEPS as readonly string[]).includes(inputs.step)) {
      throw new StepError('ACTION_INPUT', `step ${JSON.stringify(inputs.step)} is not a step this action runs`, { hint: `set with: step: to one of ${ACTION_STEPS.join(', ')}` });
    }
    const mesonOptions = parseMesonLines(inputs.mesonOptions);
    const ts = inputs.timestamp;
    const timestamp: ReleaseRunInput['timestamp'] =
      !ts || ts === 'now' ? { source: 'clock' } : ts === 'commit' ? { source: 'commit' } : /^\d+$/.test(ts) ? { source: 'explicit', epoch: Number(ts) } : undefined;
    if (!timestamp) throw new StepError('ACTION_INPUT', `timestamp ${JSON.stringify(ts)} is not now, commit or seconds since 1970`, { hint: 'use timestamp: now (the default)' });
    const { run, manifest, layout, summary } = await runRelease({
      pipeline: inputs.step as PipelineName,
      repoRoot: inputs.repo,
      outDir: path.resolve(inputs.repo, inputs.outDir),
      ...(inputs.policy ? { policyPath: path.resolve(inputs.repo, inputs.policy) } : {}),
      ...(inputs.nativeSource ? { nativeSource: path.resolve(inputs.repo, inputs.nativeSource) } : {}),
      ...(mesonOptions ? { mesonOptions } : {}),
      ...(inputs.vmafBin ? { vmafBin: path.resolve(inputs.repo, inputs.vmafBin) } : {}),
      timestamp,
      ...(inputs.replace ? { replace: true } : {}),
      deps: { env },
      log,
    });
    const outputs = {
      manifest: layout.manifestPath,
      'release-dir': layout.releaseDir,
      artifacts: JSON.stringify(manifest.artifacts.map((a) => ({ path: a.path, kind: a.kind, platform: a.platform, sha256: a.sha256 }))),
      result: run.ok ? 'succeeded' : 'failed',
      tag: manifest.plan.tag,
    };
    return { ok: run.ok, outputs, summary, ...(run.ok ? {} : { error: formatError(run.error) }) };
  } catch (err) {
    return { ok: false, outputs: { result: 'failed' }, summary: `## mcp-release ${inputs.step}\n\nResult: **failed**\n\n\`\`\`\n${formatError(err)}\n\`\`\`\n`, error: formatError(err) };
  }
}
