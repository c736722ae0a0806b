/**
 * The pins `mcp-release init` writes into workflows: every third-party action by full commit SHA
 * with its release tag as a comment, and where the toolkit's own actions live.
 *
 * Keep this table current. When an action releases (a security fix above all), look up the
 * commit of the new tag (`git ls-remote https://github.com/<action> 'refs/tags/<tag>^{}'`, or the
 * tag's page), review the change, update the entry, and regenerate this repository's workflows
 * (`mcp-release init --workflows-only --force`); the drift test fails until they match.
 * Adopters get the new pins by running `mcp-release init --force` with the new mcp-release.
 */

export interface ActionPin {
  /** The full 40-hex commit SHA of the release tag. */
  sha: string;
  /** The release tag, written as the comment after the pin. */
  version: string;
}

/** Third-party actions the templates use, as `{{pin:<owner>/<name>}}`. */
export const ACTION_PINS = {
  'actions/checkout': { sha: '11bd71901bbe5b1630ceea73d27597364c9af683', version: 'v4.2.2' },
  'actions/setup-node': { sha: '49933ea5288caeca8642d1e84afbd3f7d6820020', version: 'v4.4.0' },
  'actions/upload-artifact': { sha: 'ea165f8d65b6e75b540449e92b4886f43607fa02', version: 'v4.6.2' },
  'actions/download-artifact': { sha: 'd3f86a106a0bac45b974a628896c90dbdf5c8093', version: 'v4.3.0' },
} as const satisfies Record<string, ActionPin>;

export type PinnedAction = keyof typeof ACTION_PINS;

/**
 * The repository that holds mcp-release's actions (actions/<step>/action.yml). Its own workflows
 * use the actions from the same commit (`./actions/<step>`); every other repository pins them by
 * commit: `<TOOLKIT_REPOSITORY>/actions/<step>@<sha> # v<version>`.
 */
export const TOOLKIT_REPOSITORY = 'mcp-release/vmaf-mcp';

/** The toolkit's actions the templates may name as `{{action:<step>}}`. */
export const TOOLKIT_ACTIONS = [
  'plan',
  'build-npm',
  'build-native',
  'smoke-mcp',
  'mcp-consistency',
  'gate-golden',
  'sbom',
  'verify-script',
  'checksums',
  'sign',
  'provenance',
  'attest-gate',
  'verify',
  'release-github',
  'publish-npm',
  'push-tag',
  'undraft',
] as const;

export type ToolkitAction = (typeof TOOLKIT_ACTIONS)[number];

/** The Node.js major the workflows set up, unless init is told otherwise. */
export const DEFAULT_NODE_VERSION = '24';
