import type { PipelineName } from '@mcp-release/steps';

export interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
  multiple?: boolean;
  value?: string;
  help: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  usage: string;
  pipeline?: PipelineName;
  /** Name of the one positional argument, for commands that take one. */
  positional?: string;
  /** The command takes any number of positionals. */
  variadic?: boolean;
  options: Record<string, OptionSpec>;
  details?: string;
}

const common: Record<string, OptionSpec> = {
  out: { type: 'string', value: 'DIR', help: 'output folder: DIR/release (the release files), DIR/manifest.json, DIR/work (build trees)' },
  repo: { type: 'string', value: 'DIR', help: 'repository to release (default: the git top level of the current folder)' },
  policy: { type: 'string', value: 'FILE', help: 'release policy (default: policies/release-policy.yaml in the repository)' },
  json: { type: 'boolean', help: 'print a machine-readable result on stdout (progress stays on stderr)' },
  help: { type: 'boolean', short: 'h', help: 'show this help' },
};

const build: Record<string, OptionSpec> = {
  'native-source': { type: 'string', value: 'PATH', help: 'meson source tree to build (a vmaf checkout or a folder with meson.build); overrides native.source' },
  'meson-option': { type: 'string', short: 'D', multiple: true, value: 'NAME=VALUE', help: 'meson option, repeatable (e.g. -D enable_float=true); overrides native.options' },
  'no-native': { type: 'boolean', help: 'release without native artifacts' },
  'vmaf-bin': { type: 'string', value: 'PATH', help: 'vmaf-compatible CLI for the MCP smoke test (default: the native CLI this release builds)' },
  timestamp: { type: 'string', value: 'WHEN', help: 'release time for a new plan: "commit" (default: the commit time), "now", or seconds since 1970; SOURCE_DATE_EPOCH wins when set' },
};

export const COMMANDS: CommandSpec[] = [
  {
    name: 'plan',
    summary: 'freeze the release plan (packages, versions, tag, commit, time) into --out/manifest.json',
    usage: 'mcp-release plan [--out DIR] [--timestamp WHEN] [--json]',
    pipeline: 'plan',
    options: { ...common, timestamp: build.timestamp as OptionSpec },
    details: 'Every later step reads the plan and never the clock. The default --out is out/release-run.',
  },
  {
    name: 'rehearse',
    summary: 'run every release step that exists, offline, into --out',
    usage: 'mcp-release rehearse [--out DIR] [--native-source PATH] [-D NAME=VALUE]... [--json]',
    pipeline: 'rehearse',
    options: { ...common, ...build },
    details:
      'Re-running into the same --out continues from the manifest: steps whose inputs and outputs are unchanged are skipped.\nThe default --out is out/rehearsal.',
  },
  {
    name: 'build',
    summary: 'plan, pack the npm packages and build the native artifacts into --out',
    usage: 'mcp-release build [--out DIR] [--native-source PATH] [-D NAME=VALUE]... [--json]',
    pipeline: 'build',
    options: { ...common, ...build },
    details: 'The default --out is out/release-run.',
  },
  {
    name: 'build-npm',
    summary: 'pack each planned npm package reproducibly (needs a plan)',
    usage: 'mcp-release build-npm [--out DIR] [--json]',
    pipeline: 'build-npm',
    options: { ...common },
    details: 'The default --out is out/release-run.',
  },
  {
    name: 'build-native',
    summary: 'meson build and test, then stage the library, the CLI and models.tar.gz (needs a plan)',
    usage: 'mcp-release build-native [--out DIR] [--native-source PATH] [-D NAME=VALUE]... [--json]',
    pipeline: 'build-native',
    options: { ...common, 'native-source': build['native-source'] as OptionSpec, 'meson-option': build['meson-option'] as OptionSpec },
    details: 'The default --out is out/release-run.',
  },
  {
    name: 'gate',
    summary: "run a release gate on a built release in --out: `gate golden` scores Netflix's goldens and fails on drift",
    usage: 'mcp-release gate golden [--out DIR] [--vmaf-bin PATH] [--json]',
    positional: 'GATE',
    pipeline: 'gate-golden',
    options: { ...common, 'vmaf-bin': { type: 'string', value: 'PATH', help: 'a vmaf CLI to score with instead of the native CLI the release built (a real vmaf computes the VMAF goldens too)' } },
    details: 'Writes gate-golden.json and gate-golden.md into the release folder. Exit 1 when any golden check drifts; the report names each.\nThe default --out is out/release-run.',
  },
  {
    name: 'sbom',
    summary: 'write sbom.spdx.json (SPDX 2.3) and sbom.cdx.json (CycloneDX 1.6) for the release in --out',
    usage: 'mcp-release sbom [--out DIR] [--json]',
    pipeline: 'sbom',
    options: { ...common },
    details: 'Both are validated against the official schemas; the same inputs give byte-identical documents. The default --out is out/release-run.',
  },
  {
    name: 'smoke-mcp',
    summary: 'install a packed MCP server tarball, start it over stdio, check initialize, tools/list and a vmaf_score call',
    usage: 'mcp-release smoke-mcp TARBALL --vmaf-bin PATH [--lib-dir DIR] [--json]',
    positional: 'TARBALL',
    options: {
      'vmaf-bin': { type: 'string', value: 'PATH', help: 'vmaf-compatible CLI the server scores with (default: VMAF_BIN)' },
      'lib-dir': { type: 'string', value: 'DIR', help: 'folder added to LD_LIBRARY_PATH for that CLI' },
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details: 'The tarball is installed into an empty temporary project with npm, exactly as a user installs it.',
  },
  {
    name: 'verify-bundle',
    summary: 'verify one Sigstore bundle (cosign verify-blob flags); exit 0 verified, 1 not verified, 3 could not check',
    usage: 'mcp-release verify-bundle --bundle FILE (--certificate-identity ID | --certificate-identity-regexp RE) --certificate-oidc-issuer URL [--trusted-root FILE] [--offline] FILE_OR_DIGEST',
    positional: 'FILE_OR_DIGEST',
    options: {
      bundle: { type: 'string', value: 'FILE', help: 'the .sigstore.json bundle' },
      'certificate-identity': { type: 'string', value: 'ID', help: 'the exact certificate SAN' },
      'certificate-identity-regexp': { type: 'string', value: 'RE', help: 'a regular expression matched against the whole SAN (anchored; never a substring)' },
      'certificate-oidc-issuer': { type: 'string', value: 'URL', help: `the exact issuer (GitHub Actions: ${'https://token.actions.githubusercontent.com'})` },
      'trusted-root': { type: 'string', value: 'FILE', help: 'trusted_root.json (default: MCP_RELEASE_TRUSTED_ROOT, else the public Sigstore through TUF)' },
      offline: { type: 'boolean', help: 'make no network requests (needs --trusted-root or MCP_RELEASE_TRUSTED_ROOT)' },
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details: 'FILE_OR_DIGEST is the signed file, or sha256:<hex> for its digest. DSSE bundles must name that digest among their subjects.',
  },
  {
    name: 'verify',
    summary: 'verify a whole release: checksums, every signature, one signing run, provenance, SBOMs, the registry',
    usage: 'mcp-release verify (--dir DIR | --tag TAG --repository OWNER/NAME) [--workflow FILE --ref REF] [--trusted-root FILE] [--registry URL] [--json]',
    options: {
      dir: { type: 'string', value: 'DIR', help: 'a folder of downloaded release files' },
      tag: { type: 'string', value: 'TAG', help: 'download the release of this tag through the GitHub API (GITHUB_API_URL, GITHUB_TOKEN)' },
      repository: { type: 'string', value: 'OWNER/NAME', help: 'the repository of --tag' },
      'signer-repository': { type: 'string', value: 'OWNER/NAME', help: 'the repository whose workflow signs (default: signer.repository in the policy)' },
      workflow: { type: 'string', value: 'FILE', help: 'the signing workflow file, e.g. release.yml (default: signer.workflow)' },
      ref: { type: 'string', value: 'REF', help: 'the ref it runs from, a regular expression matched whole (default: signer.ref)' },
      'certificate-oidc-issuer': { type: 'string', value: 'URL', help: 'the exact issuer (default: signer.issuer, else GitHub Actions)' },
      'trusted-root': { type: 'string', value: 'FILE', help: 'trusted_root.json (default: MCP_RELEASE_TRUSTED_ROOT, else the public Sigstore)' },
      offline: { type: 'boolean', help: 'make no network requests for the trust root' },
      registry: { type: 'string', value: 'URL', help: 'also check that this npm registry serves each tarball with the same integrity' },
      policy: common.policy as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details: 'Exit status: 0 verified, 1 not verified (a check failed), 3 could not check (e.g. no trust root, download failed), 2 bad usage.',
  },
  {
    name: 'lab',
    summary: 'start or stop the offline lab: GitHub OIDC, Sigstore, the npm registry and GitHub Releases on 127.0.0.1',
    usage: 'mcp-release lab start|stop|env [--state DIR] [--port 0] [--json]',
    positional: 'ACTION',
    options: {
      state: { type: 'string', value: 'DIR', help: 'state folder: keys, registry storage, releases, lab.json (default: out/lab)' },
      port: { type: 'string', value: 'N', help: 'only 0: every service takes a port the system chooses (they are printed and kept in lab.json)' },
      policy: common.policy as OptionSpec,
      repo: common.repo as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details:
      'start runs in the foreground until stopped (Ctrl-C, or `mcp-release lab stop` from another shell) and prints the URLs\nand the environment of a release run as export lines (--json: one JSON line). The trusted-publisher bindings come\nfrom the release policy. env prints that environment again for a running lab.',
  },
  {
    name: 'release',
    summary: 'the whole release in its safe order: gates, build, SBOM, sign, provenance, draft, verify the draft, npm, tag, undraft',
    usage: 'mcp-release release [--out DIR] [--timestamp WHEN] [--replace] [--json]',
    pipeline: 'release',
    options: { ...common, ...build, replace: { type: 'boolean', help: 'replace draft assets whose bytes differ (a draft left by an earlier attempt)' } },
    details:
      'Runs in the release workflow (GitHub OIDC for signing and npm). A failure leaves nothing public, or a state that\n`mcp-release resume --manifest DIR/manifest.json` completes (docs/publishing.md says which, step by step).\nThe default --out is out/release-run.',
  },
  {
    name: 'publish',
    summary: 'the public half over an attested release in --out: draft, verify the draft, npm publish, wait, tag, undraft, verify',
    usage: 'mcp-release publish [--out DIR] [--replace] [--json]',
    pipeline: 'publish',
    options: { ...common, replace: { type: 'boolean', help: 'replace draft assets whose bytes differ' } },
    details: 'For a workflow whose publish job runs apart from the jobs that build and sign. The default --out is out/release-run.',
  },
  {
    name: 'release-github',
    summary: 'create (or reuse) the draft GitHub release, upload every release file, and verify the draft as a consumer would',
    usage: 'mcp-release release-github [--out DIR] [--replace] [--json]',
    pipeline: 'release-github',
    options: { ...common, replace: { type: 'boolean', help: 'replace draft assets whose bytes differ, and delete assets that are not release files' } },
    details: 'An asset already on the draft with the same digest is skipped. The draft is published later, by `mcp-release undraft`,\nafter npm and the tag. The default --out is out/release-run.',
  },
  {
    name: 'publish-npm',
    summary: 'publish the npm tarballs through OIDC trusted publishing (no token), then wait until the registry serves them',
    usage: 'mcp-release publish-npm [--out DIR] [--json]',
    pipeline: 'publish-npm',
    options: { ...common },
    details:
      'Needs npm 11.5.1 or newer and a GitHub OIDC token (id-token: write) in the environment the registry binds.\nThe exchange is tried first, so a refused binding is explained before anything is uploaded.\nA version already on the registry with the same integrity is skipped; with another integrity it is an error.',
  },
  {
    name: 'push-tag',
    summary: 'push the annotated release tag on the planned commit (after npm serves every version)',
    usage: 'mcp-release push-tag [--out DIR] [--json]',
    pipeline: 'push-tag',
    options: { ...common },
    details: 'Never moves or force-pushes a tag. The default --out is out/release-run.',
  },
  {
    name: 'undraft',
    summary: 'publish the verified draft release (after the tag is pushed), then verify the public release',
    usage: 'mcp-release undraft [--out DIR] [--json]',
    pipeline: 'undraft',
    options: { ...common },
  },
  {
    name: 'resume',
    summary: 'continue a release that stopped: finished steps are skipped, the rest run in order',
    usage: 'mcp-release resume --manifest FILE [--json]',
    pipeline: 'release',
    options: {
      manifest: { type: 'string', value: 'FILE', help: 'the manifest.json of the stopped release (its folder holds release/ and work/)' },
      replace: { type: 'boolean', help: 'replace draft assets whose bytes differ' },
      repo: common.repo as OptionSpec,
      policy: common.policy as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details:
      'The plan in the manifest is kept: same versions, tag, commit and release time. Every public step reads the\nregistry, GitHub and the remote first, so nothing is published twice. Never re-dispatch a release to retry it.',
  },
  {
    name: 'recover',
    summary: 'publish one package again at one existing tag, from its signed GitHub release (never a new version)',
    usage: 'mcp-release recover --package NAME --tag TAG [--out DIR] [--json]',
    options: {
      package: { type: 'string', value: 'NAME', help: 'the npm package to publish' },
      tag: { type: 'string', value: 'TAG', help: 'the existing release tag whose tarball is published' },
      out: { type: 'string', value: 'DIR', help: 'working folder (default: out/recover)' },
      repo: common.repo as OptionSpec,
      policy: common.policy as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details:
      'The release is downloaded and verified first; its tarball is published through the same trusted-publisher binding\n(run it in the release workflow and environment). A version already on the registry with the same integrity is left alone.',
  },
  {
    name: 'init',
    summary: 'install the release, sign and CI workflows into .github/workflows and write a starter release policy',
    usage: 'mcp-release init --owner OWNER --repo-name NAME --package PATH... [--toolkit-sha SHA] [--force] [--workflows-only]',
    options: {
      owner: { type: 'string', value: 'OWNER', help: 'the GitHub owner of the repository the workflows are for' },
      'repo-name': { type: 'string', value: 'NAME', help: 'the repository name' },
      package: { type: 'string', multiple: true, value: 'PATH', help: 'a workspace folder of a package to release, repeatable, in order' },
      'mcp-package': { type: 'string', value: 'NAME', help: 'the MCP server package (default: the first package)' },
      'native-source': { type: 'string', value: 'PATH', help: 'the meson source tree of the native artifacts' },
      'default-branch': { type: 'string', value: 'NAME', help: 'the default branch (default main)' },
      'node-version': { type: 'string', value: 'VERSION', help: 'the Node.js version the jobs set up' },
      'toolkit-sha': { type: 'string', value: 'SHA', help: "the mcp-release commit the workflows pin its actions to (required outside mcp-release's own repository)" },
      force: { type: 'boolean', help: 'replace files that exist' },
      'workflows-only': { type: 'boolean', help: 'write only the workflows (after a template or pin change); never the policy' },
      repo: common.repo as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details: 'Every action is pinned by commit SHA; dispatch inputs reach shells only through env:. The files pass lint-workflows with no finding.\nNothing is written when any file exists (without --force) or any value is invalid.',
  },
  {
    name: 'merge-manifests',
    summary: "join the release folders of a workflow's build jobs into one, refusing two parts with different bytes for one file",
    usage: 'mcp-release merge-manifests --out DIR PART_DIR...',
    positional: 'PART_DIR',
    variadic: true,
    options: { out: { type: 'string', value: 'DIR', help: 'the merged folder (manifest.json and release/); must be empty or absent' }, json: common.json as OptionSpec, help: common.help as OptionSpec },
    details: 'Each part holds manifest.json and release/, all from the same plan; every file is checked against its digest.',
  },
  {
    name: 'lint-workflows',
    summary: 'check GitHub workflows against the release rules (template injection, unpinned actions, tokens, dead or second publish paths, …)',
    usage: 'mcp-release lint-workflows [PATH…] [--format text|json|sarif] [--release-workflow FILE]… [--trusted-owner OWNER]…',
    positional: 'PATH',
    variadic: true,
    options: {
      format: { type: 'string', value: 'FORMAT', help: 'text (default), json, or sarif (for code scanning)' },
      'release-workflow': { type: 'string', multiple: true, value: 'FILE', help: 'a workflow file allowed to publish (default: release.yml and the local workflows it calls)' },
      'trusted-owner': { type: 'string', multiple: true, value: 'OWNER', help: 'an action owner whose actions need no SHA pin (default: none)' },
      repo: common.repo as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details: 'PATH is a workflow file or a folder of them (default: .github/workflows). Rule ids are stable (MR000–MR011, docs/workflows.md).\nExit 1 when any error is found, 0 otherwise.',
  },
  {
    name: 'version',
    summary: 'apply the changesets (changeset version), commit the bumps and CHANGELOGs on the default branch and push them',
    usage: 'mcp-release version [--no-push] [--json]',
    options: {
      'no-push': { type: 'boolean', help: 'commit, but do not push (push it yourself before dispatching the release)' },
      repo: common.repo as OptionSpec,
      policy: common.policy as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details:
      'Runs only on the default branch (release.branch, default main), on a clean work tree that is up to date with the remote.\nThe release later refuses any commit that is not on the default branch, so a version bump that was not pushed is never released.\nWith no changesets it does nothing and exits 0.',
  },
  {
    name: 'check-changesets',
    summary: 'fail when a change touches a releasable package without a changeset (for pull requests)',
    usage: 'mcp-release check-changesets [--base REF] [--head REF] [--json]',
    options: {
      base: { type: 'string', value: 'REF', help: 'what the change is compared with (default: the remote default branch, e.g. origin/main)' },
      head: { type: 'string', value: 'REF', help: 'the change (default: HEAD)' },
      repo: common.repo as OptionSpec,
      policy: common.policy as OptionSpec,
      json: common.json as OptionSpec,
      help: common.help as OptionSpec,
    },
    details:
      'Files are compared from the merge base of REF and HEAD. Packages listed under changesets.exempt in the policy, and files matching\nchangesets.ignore, need no changeset. Writes a markdown summary to the job summary on GitHub. Exit 1 when a changeset is missing or malformed.',
  },
  {
    name: 'checksums',
    summary: 'hash every release file in --out and write SHA256SUMS',
    usage: 'mcp-release checksums [--out DIR] [--json]',
    pipeline: 'checksums',
    options: { ...common },
    details: 'Every file is checked against the digest its step recorded; a stray, changed or linked file stops the step.\nThe default --out is out/release-run.',
  },
];

export function commandHelp(c: CommandSpec): string {
  const lines = [`mcp-release ${c.name}: ${c.summary}`, '', `Usage: ${c.usage}`, '', 'Options:'];
  for (const [name, o] of Object.entries(c.options)) {
    const flag = `${o.short ? `-${o.short}, ` : '    '}--${name}${o.value ? ` ${o.value}` : ''}`;
    lines.push(`  ${flag.padEnd(34)} ${o.help}`);
  }
  if (c.details) lines.push('', c.details);
  return `${lines.join('\n')}\n`;
}

export function mainHelp(version: string): string {
  const lines = [
    `mcp-release ${version}: release an MCP server package and native vmaf artifacts, verifiably`,
    '',
    'Usage: mcp-release <command> [options]',
    '',
    'Commands:',
    ...COMMANDS.map((c) => `  ${c.name.padEnd(12)} ${c.summary}`),
    `  ${'help'.padEnd(12)} show help for a command (mcp-release help rehearse)`,
    '',
    'Every command takes --help and --json. Exit status: 0 done, 1 failed, 2 bad usage.',
  ];
  return `${lines.join('\n')}\n`;
}
