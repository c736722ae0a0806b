/**
 * What a step does, read from its `uses:` and `run:`: which action it is, whether it publishes,
 * signs, or handles a long-lived registry credential. These are heuristics over text; each list
 * below is the whole heuristic, so the docs can quote it.
 */

export type ActionRef =
  | { kind: 'local'; path: string }
  | { kind: 'docker'; image: string; digest: boolean }
  | { kind: 'remote'; slug: string; ref: string | undefined; expression: boolean };

/** Parses a `uses:` value. `slug` is `owner/repo[/path]`, lower case. */
export function parseUses(value: string): ActionRef {
  const v = value.trim();
  if (v.startsWith('./') || v.startsWith('../')) return { kind: 'local', path: v };
  if (v.startsWith('docker://')) {
    const image = v.slice('docker://'.length);
    return { kind: 'docker', image, digest: /@sha256:[0-9a-f]{64}$/.test(image) };
  }
  const at = v.lastIndexOf('@');
  const slug = (at === -1 ? v : v.slice(0, at)).toLowerCase();
  const ref = at === -1 ? undefined : v.slice(at + 1);
  return { kind: 'remote', slug, ref, expression: v.includes('${{') };
}

export function isFullSha(ref: string | undefined): boolean {
  return ref !== undefined && /^[0-9a-f]{40}$/i.test(ref);
}

/** A version-looking comment after the value: `# v4`, `# v4.2.1`, `# 4.2.1`, `# tag=v4`. */
export function hasVersionComment(restOfLine: string): boolean {
  const hash = restOfLine.indexOf('#');
  return hash !== -1 && /\bv?\d+(?:\.\d+)*\b/.test(restOfLine.slice(hash + 1));
}

/** The repository part of a slug (`owner/repo`). */
export function repoOf(slug: string): string {
  return slug.split('/').slice(0, 2).join('/');
}

/** The local file name a job-level `uses: ./.github/workflows/x.yml` calls, or undefined. */
export function calledWorkflowFile(ref: ActionRef): string | undefined {
  if (ref.kind !== 'local') return undefined;
  const m = /\/([^/]+\.ya?ml)$/i.exec(ref.path.replace(/@.*$/, ''));
  return m?.[1];
}

export interface CommandMatch {
  /** Index in the script. */
  index: number;
  /** The matched text (one line). */
  text: string;
  /** A short name for the command. */
  what: string;
}

/** Flags without a separate value, between a tool and its subcommand (`npm --workspaces publish`, `pnpm -r publish`). */
// Bounded and unambiguous, so a hostile line costs linear time: `-[\w-]` splits a flag one way
// only (`--?[\w-]+` backtracks exponentially on a long run of flags), and the bounds stop a
// command name repeated inside one huge token from rescanning it from every occurrence.
const FLAGS = String.raw`(?:-[\w-]{1,64}(?:=\S{1,256})?\s+){0,8}`;

/** Commands that publish a package or a release. Lines with --dry-run and shell comment lines do not count. */
const PUBLISH_COMMANDS: ReadonlyArray<readonly [RegExp, string]> = [
  [new RegExp(String.raw`\bnpm\s+${FLAGS}publish\b`), 'npm publish'],
  [new RegExp(String.raw`\bpnpm\s+${FLAGS}publish\b`), 'pnpm publish'],
  [new RegExp(String.raw`\byarn\s+${FLAGS}(?:workspaces\s+foreach\s+${FLAGS})?npm\s+publish\b`), 'yarn npm publish'],
  [/\byarn\s+publish\b/, 'yarn publish'],
  [/\bchangeset\s+publish\b/, 'changeset publish'],
  [/\blerna\s+publish\b/, 'lerna publish'],
  [/\btwine\s+upload\b/, 'twine upload'],
  [/\bgh\s+release\s+(?:create|upload)\b/, 'gh release create/upload'],
  [new RegExp(String.raw`\bmcp-release(?:@[\w.^~-]{1,64})?(?:\.[cm]?js)?\s+${FLAGS}(?:publish-npm|publish|release-github|release|undraft|resume)(?![\w-])`), 'mcp-release publish'],
];

/** Commands that sign or attest (they need an OIDC token). */
const SIGN_COMMANDS: readonly RegExp[] = [
  /\bcosign\b/,
  /\bsigstore\b/,
  /\bgh\s+attestation\b/,
  /--provenance\b/,
  new RegExp(String.raw`\bmcp-release(?:@[\w.^~-]{1,64})?(?:\.[cm]?js)?\s+${FLAGS}(?:sign|provenance|attest-gate)(?![\w-])`),
];

function scanLines(script: string, patterns: ReadonlyArray<readonly [RegExp, string]>, skip: (line: string) => boolean): CommandMatch[] {
  const out: CommandMatch[] = [];
  let offset = 0;
  for (const line of script.split('\n')) {
    if (!line.trimStart().startsWith('#') && !skip(line)) {
      // One match per line, the leftmost: `yarn … npm publish` is one command, not also an `npm publish`.
      let first: CommandMatch | undefined;
      for (const [re, what] of patterns) {
        const m = re.exec(line);
        if (m && (!first || offset + m.index < first.index)) first = { index: offset + m.index, text: m[0], what };
      }
      if (first) out.push(first);
    }
    offset += line.length + 1;
  }
  return out;
}

/** Publish commands in a run: script. */
export function publishCommands(script: string): CommandMatch[] {
  return scanLines(script, PUBLISH_COMMANDS, (line) => /--dry-run\b/.test(line));
}

export function signsInScript(script: string): boolean {
  return scanLines(
    script,
    SIGN_COMMANDS.map((re) => [re, 'sign'] as const),
    () => false,
  ).length > 0;
}

/** Registry tokens written into an .npmrc (or npm config) by a script. */
export function writtenAuthTokens(script: string): CommandMatch[] {
  if (!script.includes('_authToken')) return [];
  // Report from the start of the `//host/:_authToken=` word (a bounded look back, not a regex that rescans).
  return scanLines(script, [[/_authToken\s*=/, '_authToken']], () => false).map((m) => {
    let start = m.index;
    while (start > 0 && m.index - start < 256 && !/[\s'"=]/.test(script[start - 1] ?? ' ')) start--;
    return { ...m, index: start, text: script.slice(start, m.index + m.text.length) };
  });
}

/** Actions that publish, by `owner/repo` (changesets/action only when its `publish:` input is set). */
const PUBLISH_ACTIONS = new Set([
  'changesets/action',
  'softprops/action-gh-release',
  'pypa/gh-action-pypi-publish',
  'js-devtools/npm-publish',
  'ncipollo/release-action',
  'actions/create-release',
  'actions/upload-release-asset',
  'svenstaro/upload-release-action',
]);

/** mcp-release's own steps that publish, and those that sign, as an action folder name or the umbrella's `step:` input. */
const OWN_PUBLISH_STEPS = new Set(['publish', 'publish-npm', 'release-github', 'release', 'undraft']);
const OWN_SIGN_STEPS = new Set(['sign', 'provenance', 'attest-gate']);

/** Action repositories that sign, attest or produce provenance (matched anywhere in `owner/repo`). */
const SIGN_ACTION = /sigstore|cosign|attest|provenance|slsa/;

function ownStep(ref: ActionRef, stepInput: string | undefined): string | undefined {
  if (ref.kind === 'docker') return undefined;
  const where = ref.kind === 'local' ? ref.path : ref.slug;
  const own = ref.kind === 'local' || /(^|\/)mcp-release(\/|$)/.test(where);
  if (!own) return undefined;
  const last = where.replace(/\/+$/, '').split('/').pop() ?? '';
  return stepInput?.trim() || last;
}

/** Whether a step's action publishes; `withPublish` is its `with: publish:` input, `stepInput` its `with: step:`. */
export function actionPublishes(ref: ActionRef, inputs: { publish?: string; step?: string }): string | undefined {
  if (ref.kind === 'remote') {
    const repo = repoOf(ref.slug);
    if (repo === 'changesets/action') return inputs.publish?.trim() ? 'changesets/action with publish:' : undefined;
    if (PUBLISH_ACTIONS.has(repo)) return repo;
  }
  const step = ownStep(ref, inputs.step);
  return step && OWN_PUBLISH_STEPS.has(step) ? `mcp-release ${step}` : undefined;
}

export function actionSigns(ref: ActionRef, inputs: { step?: string }): boolean {
  if (ref.kind === 'remote' && SIGN_ACTION.test(repoOf(ref.slug))) return true;
  const step = ownStep(ref, inputs.step);
  return step !== undefined && OWN_SIGN_STEPS.has(step);
}

/** env/with/secrets keys that hold a long-lived registry credential. */
export const CREDENTIAL_KEY = /^(?:NPM_TOKEN|NPM_AUTH_TOKEN|NODE_AUTH_TOKEN|NPM_CONFIG__AUTHTOKEN|NPM_CONFIG__AUTH|TWINE_PASSWORD|TWINE_API_KEY|PYPI_TOKEN|PYPI_API_TOKEN|PYPI_PASSWORD)$/i;

/** Secrets named like a registry credential, whatever key they are passed under (`with: token: ${{ secrets.NPM_TOKEN }}`). */
export const CREDENTIAL_SECRET = /\bsecrets\s*\.\s*((?:NPM|NODE_AUTH|PYPI|TWINE)[A-Z0-9_]*(?:TOKEN|PASSWORD|KEY))\b/i;

/** A value that holds only the run's own short-lived token (GitHub Packages uses it as NODE_AUTH_TOKEN). */
export function isRunToken(value: string): boolean {
  return /^\s*\$\{\{\s*(?:secrets\.GITHUB_TOKEN|github\.token)\s*\}\}\s*$/i.test(value);
}
