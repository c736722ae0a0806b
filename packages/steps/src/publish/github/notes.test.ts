import { describe, expect, it } from 'vitest';
import type { Plan } from '@mcp-release/manifest';
import type { Policy } from '../../policy.js';
import { isPrerelease, releaseNotes, releaseTitle, releaseVersion } from './notes.js';

const plan = (tag: string, versions: string[]): Plan => ({
  commit: 'a'.repeat(40),
  dirty: false,
  timestamp: '2026-01-02T03:04:05Z',
  epoch: 1767323045,
  tag,
  packages: versions.map((version, i) => ({ name: `pkg-${i}`, version, path: `packages/p${i}` })),
});
const policy = (github?: NonNullable<Policy['publish']>['github']): Policy => ({ version: 1, packages: [], ...(github ? { publish: { github } } : {}) });

describe('release title, prerelease flag and notes', () => {
  it('takes the version from the first package, else from the tag', () => {
    expect(releaseVersion(plan('v1.2.3', ['1.2.3', '9.9.9']))).toBe('1.2.3');
    expect(releaseVersion(plan('vmaf-mcp@2.0.0-rc.1', []))).toBe('2.0.0-rc.1');
    expect(releaseVersion(plan('nightly', []))).toBeUndefined();
  });

  it('fills {tag} and {version} in the title, and defaults to the tag', () => {
    expect(releaseTitle(policy({ releaseName: 'vmaf-mcp {version} ({tag})' }), plan('v1.2.3', ['1.2.3']))).toBe('vmaf-mcp 1.2.3 (v1.2.3)');
    expect(releaseTitle(policy(), plan('v1.2.3', ['1.2.3']))).toBe('v1.2.3');
    expect(releaseTitle(policy({ releaseName: '{version}' }), plan('nightly', []))).toBe('nightly');
  });

  it('marks prereleases: auto from the semver prerelease part, or as the policy says', () => {
    expect(isPrerelease(policy(), plan('v1.2.3-rc.1', ['1.2.3-rc.1']))).toBe(true);
    expect(isPrerelease(policy({ prerelease: 'auto' }), plan('v1.2.3', ['1.2.3']))).toBe(false);
    expect(isPrerelease(policy({ prerelease: true }), plan('v1.2.3', ['1.2.3']))).toBe(true);
    expect(isPrerelease(policy({ prerelease: false }), plan('v1.2.3-rc.1', ['1.2.3-rc.1']))).toBe(false);
    expect(isPrerelease(policy(), plan('nightly', []))).toBe(false);
  });

  it('lists every package and the commands that verify the release', () => {
    const notes = releaseNotes({ plan: plan('v1.2.3', ['1.2.3', '0.4.0']), repository: 'acme/widget' });
    expect(notes).toContain(`commit ${'a'.repeat(40)}`);
    expect(notes).toContain('| `pkg-0` | 1.2.3 | latest |');
    expect(notes).toContain('| `pkg-1` | 0.4.0 | latest |');
    expect(notes).toContain('gh release download v1.2.3 -R acme/widget -p verify.sh');
    expect(notes).toContain('mcp-release verify --tag v1.2.3 --repository acme/widget');
  });
});
