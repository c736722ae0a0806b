/**
 * The rule table of `mcp-release lint-workflows`. Rule ids are stable: reports, SARIF uploads and
 * docs name them, so a rule is never renumbered; a retired rule keeps its id unused.
 */
export type LintSeverity = 'error' | 'warning';

export interface LintRule {
  /** Stable id, `MR` and three digits. */
  id: string;
  /** Stable kebab-case name. */
  name: string;
  /** The level a finding of this rule has (SARIF defaultConfiguration.level). */
  severity: LintSeverity;
  /** One line: what the rule catches. */
  summary: string;
  /** Why it matters and the general fix (SARIF help text). */
  help: string;
}

export const LINT_RULES = [
  {
    id: 'MR000',
    name: 'invalid-workflow',
    severity: 'error',
    summary: 'The file is not a workflow the linter can read: not UTF-8, too large, not valid YAML, too deeply nested, or not a workflow mapping.',
    help: 'GitHub refuses such a file too, or the linter could not check it. Fix the YAML (one document, a mapping with on: and jobs:), save it as UTF-8, and keep it under the size limit.',
  },
  {
    id: 'MR001',
    name: 'template-injection',
    severity: 'error',
    summary: 'An untrusted value is expanded with ${{ }} inside a run: script or an actions/github-script script:.',
    help: 'GitHub replaces ${{ }} before the shell (or the script) runs, so an issue title, a branch name or a dispatch input can inject commands that run with the job\'s token. Pass the value through env: (env: { TITLE: ${{ github.event.issue.title }} }) and use "$TITLE" in the script (process.env.TITLE in github-script).',
  },
  {
    id: 'MR002',
    name: 'unpinned-action',
    severity: 'error',
    summary: 'An action or reusable workflow from another repository is not pinned to a full 40-hex commit SHA (a Docker image not pinned by digest).',
    help: 'Tags and branches move: whoever controls the action\'s repository can change the code your release runs. Pin uses: to the full commit SHA of the release you reviewed and keep the tag in a comment (uses: owner/action@<sha> # v4.2.1); pin docker:// images by @sha256 digest.',
  },
  {
    id: 'MR003',
    name: 'workflow-write-permission',
    severity: 'error',
    summary: 'The workflow-level permissions grant write access (write-all, or some scope: write) to every job.',
    help: 'Every job, including ones that run third-party code, gets a token that can write. Set permissions: {} (or read scopes) at the top of the workflow and grant each write scope only in the job that needs it.',
  },
  {
    id: 'MR004',
    name: 'id-token-unneeded',
    severity: 'error',
    summary: 'A job is granted id-token: write but neither signs nor publishes.',
    help: 'An OIDC token proves the job is your release workflow to Sigstore and the registry; a job that does not sign or publish should not be able to mint one. Remove id-token: write from the job. Heuristic: a job counts as signing or publishing when it calls a reusable workflow, or a step uses sigstore, cosign, attest, provenance or SLSA actions, runs cosign, sigstore, gh attestation, mcp-release sign/provenance/attest-gate, or any publish command.',
  },
  {
    id: 'MR005',
    name: 'long-lived-publish-credential',
    severity: 'error',
    summary: 'A long-lived publish credential (NPM_TOKEN, NODE_AUTH_TOKEN, TWINE_PASSWORD, PYPI_TOKEN, a written _authToken) is used.',
    help: 'A stored registry token outlives the run and can be stolen and replayed. Publish with trusted publishing instead: grant id-token: write to the publish job, bind the package to this workflow (and its environment) on the registry, and delete the secret.',
  },
  {
    id: 'MR006',
    name: 'publish-outside-release-workflow',
    severity: 'error',
    summary: 'A workflow that is not a designated release workflow publishes (npm/pnpm/yarn publish, twine upload, gh release create/upload, mcp-release publish, a publishing action).',
    help: 'Releases must come from one reviewed workflow whose identity the registry and the signature policy trust. Move the publish step into the release workflow (or a reusable workflow it calls), or, if this file is the release workflow, name it in releaseWorkflows.',
  },
  {
    id: 'MR007',
    name: 'release-event-publish-never-fires',
    severity: 'error',
    summary: 'A job publishes in a workflow triggered by release: (created/published).',
    help: 'A release created with the GITHUB_TOKEN, as release tooling does, starts no new workflow run, so the publish never happens; a release made by hand publishes without the release workflow\'s gates. Publish from the workflow that creates the release.',
  },
  {
    id: 'MR008',
    name: 'scheduled-publish',
    severity: 'error',
    summary: 'A workflow that publishes has a schedule: trigger.',
    help: 'Scheduled runs pile up waiting for environment approval (zombie runs) or publish with nobody watching. Remove schedule: from the publishing workflow; run scheduled checks from a workflow that does not publish.',
  },
  {
    id: 'MR009',
    name: 'pull-request-target-head-checkout',
    severity: 'error',
    summary: 'A pull_request_target workflow checks out the pull request\'s head (github.event.pull_request.head.sha/ref, github.head_ref).',
    help: 'pull_request_target runs with the base repository\'s secrets and a write token; checking out the fork\'s code there lets the fork run code with them. Use pull_request for the contributor\'s code, or check out only the base in pull_request_target.',
  },
  {
    id: 'MR010',
    name: 'publish-job-without-environment',
    severity: 'error',
    summary: 'A job that publishes has no environment:.',
    help: 'An environment is what required reviewers, branch rules and the registry\'s trusted-publisher binding attach to. Add environment: <name> to the publishing job and protect that environment.',
  },
  {
    id: 'MR011',
    name: 'sha-pin-without-version',
    severity: 'warning',
    summary: 'An action pinned to a commit SHA has no version comment (# v4.2.1) on its line.',
    help: 'A bare SHA says nothing to a reviewer or an update bot. Add the tag the SHA belongs to as a comment: uses: owner/action@<sha> # v4.2.1.',
  },
] as const satisfies readonly LintRule[];

export type LintRuleId = (typeof LINT_RULES)[number]['id'];

export function lintRule(id: LintRuleId): LintRule {
  return LINT_RULES.find((r) => r.id === id) as LintRule;
}
