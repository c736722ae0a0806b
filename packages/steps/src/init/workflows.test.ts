/**
 * The drift test: this repository's .github/workflows are the templates rendered for this
 * repository, byte for byte. A template or pin change without regenerating, or a hand edit of a
 * generated workflow, fails here.
 *
 * To regenerate: `mcp-release init --workflows-only --force` in the repository root, or
 * `MCP_RELEASE_WRITE_WORKFLOWS=1 npx vitest run packages/steps/src/init/workflows.test.ts`.
 */
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../../../test/helpers/tmp.js';
import { lintWorkflowFiles } from '../lint-workflows/index.js';
import { loadPolicy } from '../policy.js';
import { initRepository, WORKFLOW_DIR } from './init.js';
import { WORKFLOW_TEMPLATES, renderTemplates } from './render.js';
import { SELF } from './testing.js';

const REGENERATE = 'run `mcp-release init --workflows-only --force` in the repository root (or MCP_RELEASE_WRITE_WORKFLOWS=1 npx vitest run packages/steps/src/init/workflows.test.ts) and commit the result';
const dir = path.join(REPO_ROOT, WORKFLOW_DIR);

describe("this repository's workflows", () => {
  it('are the templates rendered for this repository (no drift)', async () => {
    if (process.env.MCP_RELEASE_WRITE_WORKFLOWS === '1') await initRepository({ ...SELF, repoRoot: REPO_ROOT, workflowsOnly: true, force: true });
    const rendered = await renderTemplates(SELF);
    const present = (await readdir(dir).catch(() => [])).filter((n) => /\.ya?ml$/.test(n)).sort();
    expect(present, `.github/workflows must hold exactly the generated workflows; ${REGENERATE}`).toEqual([...WORKFLOW_TEMPLATES].sort());
    for (const name of WORKFLOW_TEMPLATES) {
      const committed = await readFile(path.join(dir, name), 'utf8');
      expect(committed === rendered[name], `${WORKFLOW_DIR}/${name} differs from a fresh render of workflows/${name}; ${REGENERATE}`).toBe(true);
    }
  });

  it('lint clean, with release.yml as the release workflow and sign.yml reached from it', async () => {
    const report = await lintWorkflowFiles([dir], { root: REPO_ROOT });
    expect(report.findings).toEqual([]);
    expect(report.releaseWorkflows).toEqual([`${WORKFLOW_DIR}/release.yml`, `${WORKFLOW_DIR}/sign.yml`]);
  });

  it("name the repository of the policy's signer, for which the policy must name sign.yml", async () => {
    const policy = await loadPolicy(path.join(REPO_ROOT, 'policies', 'release-policy.yaml'));
    expect(`${SELF.owner}/${SELF.repo}`).toBe(policy.signer?.repository);
    for (const p of policy.trustedPublishers ?? []) expect(p).toMatchObject({ repository: policy.signer?.repository, workflow: 'release.yml', environment: 'release' });
    const sign = await readFile(path.join(dir, 'sign.yml'), 'utf8');
    expect(sign).toContain(`https://github.com/${policy.signer?.repository}/.github/workflows/sign.yml@refs/heads/main`);
  });
});
