import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import { changesetsBaseRef, checkChangesets, DEFAULT_POLICY_PATH, loadPolicy, renderChangesetSummary, requireChangesets, versionPackages } from '@mcp-release/steps';
import { exec, type Logger } from '@mcp-release/pipeline';
import type { CliIo } from './main.js';

type Values = Record<string, unknown> & { _positional?: string };

/** Appends markdown to the GitHub job summary when the CLI runs in a workflow step. */
export async function jobSummary(io: CliIo, markdown: string): Promise<void> {
  const file = io.env.GITHUB_STEP_SUMMARY;
  if (file) await appendFile(file, `${markdown.trimEnd()}\n\n`);
}

function deps(io: CliIo) {
  return { exec, env: io.env, now: () => new Date() };
}

/** `mcp-release version`: changeset version, committed and pushed on the default branch. */
export async function versionCommand(values: Values, repoRoot: string, io: CliIo, log: Logger): Promise<number> {
  const policy = await loadPolicy(path.resolve(io.cwd, (values.policy as string | undefined) ?? path.join(repoRoot, DEFAULT_POLICY_PATH)));
  const result = await versionPackages({ repoRoot, policy, deps: deps(io), push: values['no-push'] !== true, log: (l) => log.progress(l) });
  if (values.json) {
    io.stdout(`${JSON.stringify({ ok: true, ...result }, null, 2)}\n`);
    return 0;
  }
  if (result.status === 'nothing-to-version') {
    io.stdout(`nothing to version: there are no changesets on ${result.branch}\n`);
    return 0;
  }
  const lines = [`versioned ${result.packages.length} package(s) on ${result.branch}:`, ...result.packages.map((p) => `  ${p.name} ${p.from} → ${p.to}`)];
  lines.push(result.pushed ? `committed ${result.commit?.slice(0, 12)} and pushed to ${result.remote}` : `committed ${result.commit?.slice(0, 12)} (not pushed: --no-push)`);
  lines.push('', 'Next: dispatch the release workflow on that commit.');
  io.stdout(`${lines.join('\n')}\n`);
  return 0;
}

/** `mcp-release check-changesets`: every releasable package a change touches has a changeset. */
export async function checkChangesetsCommand(values: Values, repoRoot: string, io: CliIo): Promise<number> {
  const policy = await loadPolicy(path.resolve(io.cwd, (values.policy as string | undefined) ?? path.join(repoRoot, DEFAULT_POLICY_PATH)));
  const base = (values.base as string | undefined) ?? changesetsBaseRef(policy, io.env);
  const head = (values.head as string | undefined) ?? 'HEAD';
  const result = await checkChangesets({ repoRoot, base, head, policy, deps: deps(io) });
  const markdown = renderChangesetSummary(result);
  await jobSummary(io, markdown);
  if (values.json) io.stdout(`${JSON.stringify(result, null, 2)}\n`);
  else io.stdout(`${markdown.trimEnd()}\n`);
  requireChangesets(result);
  return 0;
}
