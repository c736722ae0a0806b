/**
 * Workflows the lint-workflows tests share: a hardened release setup that must give no finding,
 * and one small workflow per rule that must give exactly that rule's finding. The parser test
 * checks every one of them against GitHub's own workflow parser, so they are real workflows.
 */

/** Synthetic commit SHAs (40 hex digits). */
export const SHA_CHECKOUT = '0123456789abcdef0123456789abcdef01234567';
export const SHA_NODE = '89abcdef0123456789abcdef0123456789abcdef';
export const SHA_SCRIPT = 'fedcba9876543210fedcba9876543210fedcba98';

/** The designated release workflow: dispatch inputs through env, job-level permissions, pinned actions, an environment. */
export const CLEAN_RELEASE = `name: release
on:
  workflow_dispatch:
    inputs:
      version:
        description: the version to release
        type: string
        required: true
      dry-run:
        type: boolean
        default: false
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    permissions:
      contents: read
    steps:
      - uses: actions/checkout@${SHA_CHECKOUT} # v4.2.2
        with:
          persist-credentials: false
      - uses: actions/setup-node@${SHA_NODE} # v4.4.0
        with:
          node-version: 24
      - name: build
        env:
          VERSION: \${{ inputs.version }}
        run: |
          npm ci
          npm run build -- --version "$VERSION"
          echo "dry run: \${{ inputs.dry-run }}"
  sign:
    needs: build
    uses: ./.github/workflows/sign.yml
    permissions:
      contents: read
      id-token: write
  publish:
    needs: sign
    runs-on: ubuntu-latest
    environment: release
    permissions:
      contents: write
      id-token: write
    steps:
      - uses: actions/checkout@${SHA_CHECKOUT} # v4.2.2
        with:
          persist-credentials: false
      - uses: actions/setup-node@${SHA_NODE} # v4.4.0
        with:
          node-version: 24
      - run: npx mcp-release publish --out out/release-run
`;

/** The reusable workflow the release workflow calls to sign. */
export const CLEAN_SIGN = `name: sign
on:
  workflow_call:
permissions: {}
jobs:
  sign:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - uses: actions/checkout@${SHA_CHECKOUT} # v4.2.2
        with:
          persist-credentials: false
      - run: npx mcp-release sign --out out/release-run
`;

/** CI on pushes and pull requests: read-only, untrusted titles only through env. */
export const CLEAN_CI = `name: ci
on:
  push:
    branches: [main]
  pull_request:
permissions:
  contents: read
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@${SHA_CHECKOUT} # v4.2.2
        with:
          persist-credentials: false
      - run: npm ci && npm test
      - name: show the title
        if: github.event_name == 'pull_request'
        env:
          TITLE: \${{ github.event.pull_request.title }}
        run: echo "$TITLE"
      - uses: actions/github-script@${SHA_SCRIPT} # v7.0.1
        env:
          TITLE: \${{ github.event.pull_request.title }}
        with:
          script: |
            core.info(process.env.TITLE ?? '')
            core.info('\${{ github.event.pull_request.number }}')
`;

/** One true positive per rule: [rule id, file name, workflow]. */
export const POSITIVES: ReadonlyArray<readonly [string, string, string]> = [
  [
    'MR001',
    'triage.yml',
    `on:
  issues:
    types: [opened]
permissions: {}
jobs:
  triage:
    runs-on: ubuntu-latest
    steps:
      - run: |
          echo "new issue"
          echo "\${{ github.event.issue.title }}"
`,
  ],
  [
    'MR002',
    'ci.yml',
    `on: push
permissions: {}
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
`,
  ],
  [
    'MR003',
    'ci.yml',
    `on: push
permissions: write-all
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - run: npm test
`,
  ],
  [
    'MR004',
    'ci.yml',
    `on: push
permissions: {}
jobs:
  test:
    runs-on: ubuntu-latest
    permissions:
      contents: read
      id-token: write
    steps:
      - run: npm test
`,
  ],
  [
    'MR005',
    'release.yml',
    `on: workflow_dispatch
permissions: {}
jobs:
  publish:
    runs-on: ubuntu-latest
    environment: release
    steps:
      - run: npm publish
        env:
          NODE_AUTH_TOKEN: \${{ secrets.NPM_TOKEN }}
`,
  ],
  [
    'MR006',
    'ci.yml',
    `on: workflow_dispatch
permissions: {}
jobs:
  ship:
    runs-on: ubuntu-latest
    environment: release
    permissions:
      id-token: write
    steps:
      - run: npm publish --access public
`,
  ],
  [
    'MR007',
    'release.yml',
    `on:
  release:
    types: [published]
permissions: {}
jobs:
  publish:
    runs-on: ubuntu-latest
    environment: release
    permissions:
      id-token: write
    steps:
      - run: npm publish
`,
  ],
  [
    'MR008',
    'release.yml',
    `on:
  workflow_dispatch:
  schedule:
    - cron: '0 3 * * *'
permissions: {}
jobs:
  publish:
    runs-on: ubuntu-latest
    environment: release
    permissions:
      id-token: write
    steps:
      - run: npx mcp-release publish
`,
  ],
  [
    'MR009',
    'pr.yml',
    `on: pull_request_target
permissions: {}
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@${SHA_CHECKOUT} # v4.2.2
        with:
          ref: \${{ github.event.pull_request.head.sha }}
`,
  ],
  [
    'MR010',
    'release.yml',
    `on: workflow_dispatch
permissions: {}
jobs:
  publish:
    runs-on: ubuntu-latest
    permissions:
      id-token: write
    steps:
      - run: pnpm -r publish
`,
  ],
  [
    'MR011',
    'ci.yml',
    `on: push
permissions: {}
jobs:
  test:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@${SHA_CHECKOUT}
`,
  ],
];

/** Files GitHub's workflow parser rejects too, each with the position of its first error there. */
export const NOT_WORKFLOWS: ReadonlyArray<readonly [string, string, number, number]> = [
  ['unclosed flow sequence', 'on: push\njobs:\n  j: [\n', 4, 1],
  ['duplicate key', 'on: push\non: pull_request\njobs:\n  j: {runs-on: x, steps: [{run: a}]}\n', 2, 1],
  ['two documents', 'on: push\njobs:\n  j: {runs-on: x, steps: [{run: a}]}\n---\nfoo: 1\n', 4, 1],
  ['a list', '- on: push\n', 1, 1],
  ['a scalar', 'hello\n', 1, 1],
  ['no jobs', 'name: x\non: push\n', 1, 1],
  ['no event', 'on:\njobs:\n  j: {runs-on: x, steps: [{run: a}]}\n', 1, 4],
  ['a job that is a number', 'on: push\njobs:\n  j: 3\n', 3, 6],
  ['steps that are a string', 'on: push\njobs:\n  j:\n    runs-on: x\n    steps: run\n', 5, 12],
  ['a step that is a number', 'on: push\njobs:\n  j:\n    runs-on: x\n    steps: [3]\n', 5, 13],
];
