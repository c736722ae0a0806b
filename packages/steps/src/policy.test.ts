import { describe, expect, it } from 'vitest';
import { applyTagScheme, loadPolicy, parsePolicy } from './policy.js';
import { caught, REPO_ROOT } from '../../../test/helpers/tmp.js';
import path from 'node:path';

describe('release policy', () => {
  it("loads the repository's own policy", async () => {
    const p = await loadPolicy(path.join(REPO_ROOT, 'policies/release-policy.yaml'));
    expect(p.packages.length).toBeGreaterThan(0);
    expect(p.native?.source).toBe('test/fixtures/native');
  });

  it('reports YAML syntax errors with the line', () => {
    expect(() => parsePolicy('version: 1\npackages: [\n  - a', 'p.yaml')).toThrow(expect.objectContaining({ code: 'POLICY_INVALID', message: expect.stringMatching(/line \d+/) }));
  });

  it('names the bad field of a schema error', () => {
    expect(() => parsePolicy('version: 1\npackages:\n  - tag: "x{version}"\n', 'p.yaml')).toThrow(expect.objectContaining({ message: expect.stringContaining('packages[0].path is required') }));
    expect(() => parsePolicy('version: 2\npackages: [{path: a}]\n', 'p.yaml')).toThrow(expect.objectContaining({ message: expect.stringContaining('version') }));
    expect(() => parsePolicy('version: 1\npackages: [{path: a}]\nrelease: {tag: "latest"}\n', 'p.yaml')).toThrow(expect.objectContaining({ message: expect.stringContaining('release.tag') }));
  });

  it('says where the policy should be when it is missing', async () => {
    expect(await caught(() => loadPolicy('/nonexistent/policy.yaml'))).toMatchObject({ code: 'POLICY_MISSING', hint: expect.stringContaining('--policy') });
  });

  it('applies tag schemes, including the lusoris style', () => {
    expect(applyTagScheme('v{version}', '1.0.10')).toBe('v1.0.10');
    expect(applyTagScheme('v{version}-lusoris.2', '3.0.1')).toBe('v3.0.1-lusoris.2');
  });
});
