// The edge of the actions: the only module that talks to the runner through @actions/core.
// It builds typed inputs, calls runStepAction, and writes outputs and the job summary.
import * as core from '@actions/core';
import { runStepAction } from './main.js';

function lines(name: string): string[] {
  return core.getMultilineInput(name).filter((l) => l.trim() !== '');
}

/** `step` is fixed by a per-step action, or read from `with: step:` by the umbrella action. */
export async function runAction(step?: string): Promise<void> {
  const optional = (name: string): string | undefined => core.getInput(name) || undefined;
  const policy = optional('policy');
  const nativeSource = optional('native-source');
  const timestamp = optional('timestamp');
  const vmafBin = optional('vmaf-bin');
  const result = await runStepAction(
    {
      step: step ?? core.getInput('step', { required: true }),
      outDir: core.getInput('out-dir') || 'mcp-release-out',
      repo: core.getInput('repo') || process.env.GITHUB_WORKSPACE || process.cwd(),
      ...(policy ? { policy } : {}),
      ...(nativeSource ? { nativeSource } : {}),
      mesonOptions: lines('meson-options'),
      ...(vmafBin ? { vmafBin } : {}),
      ...(timestamp ? { timestamp } : {}),
      ...(core.getInput('replace') === 'true' ? { replace: true } : {}),
    },
    process.env,
    { info: (m) => core.info(m), warn: (m) => core.warning(m), progress: (m) => core.info(`  … ${m}`) },
  );
  for (const [k, v] of Object.entries(result.outputs)) core.setOutput(k, v);
  if (process.env.GITHUB_STEP_SUMMARY) await core.summary.addRaw(result.summary).write();
  if (!result.ok) core.setFailed(result.error ?? 'failed');
}
