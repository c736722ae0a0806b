import { execFileSync } from 'node:child_process';
import { chmod, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { readManifest } from '@mcp-release/manifest';
import { startLab } from '@mcp-release/lab';
import { cli } from '../helpers/cli.js';
import { buildFixtureCli } from '../helpers/native-cli.js';
import { tempDir } from '../helpers/tmp.js';

/** The publishing steps: their records name the lab's URLs and ports, which differ per run. */
const PUBLIC_STEPS = ['release-draft', 'verify-draft', 'publish-npm', 'wait-registry', 'push-tag', 'undraft', 'verify-published'];

/**
 * Everything a rehearsal writes, minus what is documented as run-specific: Sigstore bundles
 * (fresh certificates, log entries and timestamps each run) and their records in the manifest, and
 * the lab's ports.
 */
async function releaseBytes(out: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const f of (await readdir(path.join(out, 'release'))).sort()) {
    if (!f.endsWith('.sigstore.json')) files[f] = (await readFile(path.join(out, 'release', f))).toString('base64');
  }
  const manifest = JSON.parse(await readFile(path.join(out, 'manifest.json'), 'utf8'));
  manifest.artifacts = manifest.artifacts.filter((a: { kind: string }) => a.kind !== 'sigstore-bundle' && a.kind !== 'provenance');
  for (const step of ['sign', 'provenance', 'attest-gate', 'verify', ...PUBLIC_STEPS]) delete manifest.steps[step];
  // The plan names the lab's git remote, whose port is the lab's own each run.
  files['manifest.json'] = JSON.stringify(manifest, null, 2).replace(/\/\/localhost:\d+\//g, '//localhost:PORT/');
  return files;
}

describe('mcp-release rehearse (end to end, real npm, git, meson, ninja, gcc)', () => {
  it('builds the server tarball and the native fixture, writes SHA256SUMS and the manifest, byte-identical in two folders', async () => {
    const a = await tempDir();
    const b = path.join(await tempDir(), 'a', 'deeper', 'folder');
    const ra = await cli(['rehearse', '--out', a, '--json']);
    expect(ra.code, ra.stderr).toBe(0);
    const result = JSON.parse(ra.stdout);
    expect(result.ok).toBe(true);
    expect(result.steps.map((s: { name: string; state: string }) => `${s.name}:${s.state}`)).toEqual(
      ['plan', 'build-npm', 'build-native', 'smoke-mcp', 'mcp-consistency', 'gate-golden', 'sbom', 'verify-script', 'checksums', 'sign', 'provenance', 'attest-gate', 'verify', ...PUBLIC_STEPS].map((s) => `${s}:succeeded`),
    );
    expect(ra.stderr).toMatch(/compiling \d+\/\d+/); // progress from the long step

    const manifest = await readManifest(path.join(a, 'manifest.json'));
    expect(manifest.artifacts.filter((x) => x.kind !== 'sigstore-bundle').map((x) => x.kind).sort()).toEqual(['checksums', 'gate-report', 'gate-report', 'models-archive', 'native-cli', 'native-library', 'npm-tarball', 'npm-tarball', 'provenance', 'provenance', 'provenance', 'sbom-cyclonedx', 'sbom-spdx', 'verify-script']);
    expect(manifest.artifacts.filter((x) => x.kind === 'sigstore-bundle').map((x) => x.meta?.signs).sort()).toEqual(manifest.artifacts.filter((x) => x.kind !== 'sigstore-bundle' && x.kind !== 'provenance').map((x) => x.path).sort());
    expect(manifest.steps['smoke-mcp']?.data).toMatchObject({ package: 'vmaf-mcp', tools: ['list_backends', 'list_models', 'vmaf_benchmark', 'vmaf_score'] });
    expect(manifest.native?.['linux-x64']?.options).toMatchObject({ enable_float: true });
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: path.join(a, 'release'), encoding: 'utf8' }).match(/: OK/g)).toHaveLength(10);

    // A consumer's checks of the rehearsal's output, with the lab's trust root.
    const trustedRoot = path.join(a, 'lab', 'trusted_root.json');
    const verify = await cli(['verify', '--dir', path.join(a, 'release'), '--trusted-root', trustedRoot, '--json']);
    expect(verify.code, verify.stdout).toBe(0);
    expect(JSON.parse(verify.stdout).status).toBe('verified');
    const identity = 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/sign.yml@refs/heads/main';
    const issuer = 'https://token.actions.githubusercontent.com';
    const tarball = path.join(a, 'release', 'vmaf-mcp-0.1.0.tgz');
    const one = await cli(['verify-bundle', '--bundle', `${tarball}.sigstore.json`, '--certificate-identity', identity, '--certificate-oidc-issuer', issuer, '--trusted-root', trustedRoot, tarball]);
    expect(one.code, one.stderr).toBe(0);
    expect(one.stdout).toMatch(/^Verified OK/);
    const wrongIssuer = await cli(['verify-bundle', '--bundle', `${tarball}.sigstore.json`, '--certificate-identity', identity, '--certificate-oidc-issuer', 'https://accounts.example.invalid', '--trusted-root', trustedRoot, tarball]);
    expect(wrongIssuer.code).toBe(1);
    expect(wrongIssuer.stderr).toMatch(/error VERIFY_ISSUER_MISMATCH/);
    const offline = await cli(['verify-bundle', '--offline', '--bundle', `${tarball}.sigstore.json`, '--certificate-identity', identity, '--certificate-oidc-issuer', issuer, tarball], { env: { ...process.env, MCP_RELEASE_TRUSTED_ROOT: '' } });
    expect(offline.code).toBe(3);
    const usage = await cli(['verify-bundle', '--bundle', `${tarball}.sigstore.json`, '--certificate-oidc-issuer', issuer, tarball]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/exactly one of --certificate-identity and --certificate-identity-regexp/);

    // The golden gate's signed statement: its subjects are the scored files.
    const cliFile = path.join(a, 'release', 'minivmaf-linux-x64');
    const gate = await cli(['verify-bundle', '--bundle', path.join(a, 'release', 'gate-golden.intoto.sigstore.json'), '--certificate-identity', identity, '--certificate-oidc-issuer', issuer, '--trusted-root', trustedRoot, cliFile]);
    expect(gate.code, gate.stderr).toBe(0);
    const gateReport = JSON.parse(await readFile(path.join(a, 'release', 'gate-golden.json'), 'utf8')) as { passed: boolean; summary: { passed: number } };
    expect(gateReport.passed).toBe(true);
    expect(gateReport.summary.passed).toBeGreaterThanOrEqual(76); // 38 Netflix PSNR goldens, through the CLI and through the packed server

    // The rehearsal ended with a published release: the lab's state, read back.
    const lab = await startLab({ stateDir: path.join(a, 'lab'), trustedPublishers: [], githubTls: false });
    try {
      const doc = (await (await fetch(`${lab.registry.url}vmaf-mcp`)).json()) as { 'dist-tags': Record<string, string>; versions: Record<string, { dist: { integrity: string } }> };
      expect(doc['dist-tags'].latest).toBe('0.1.0');
      expect(doc.versions['0.1.0']?.dist.integrity).toBe(`sha512-${Buffer.from(manifest.artifacts.find((x) => x.path === 'vmaf-mcp-0.1.0.tgz')?.sha512 ?? '', 'hex').toString('base64')}`);
      const state = lab.github.state();
      expect(state.releases.map((r) => [r.tag_name, r.draft, r.assets.length])).toEqual([['v0.1.0', false, manifest.artifacts.length]]);
      expect(state.repositories.flatMap((r) => r.tags).map((x) => [x.name, x.commit, x.annotated])).toEqual([['v0.1.0', manifest.plan.commit, true]]);
    } finally {
      await lab.stop();
    }

    const rb = await cli(['rehearse', '--out', b]);
    expect(rb.code, rb.stderr).toBe(0);
    expect(rb.stdout).toMatch(/Release files in/);
    expect(rb.stdout).toMatch(/sha256:[0-9a-f]{64}/);
    expect(await releaseBytes(b)).toEqual(await releaseBytes(a));
  });

  it('a re-run into the same folder skips finished steps and changes nothing', async () => {
    const out = await tempDir();
    expect((await cli(['rehearse', '--out', out])).code).toBe(0);
    const before = await releaseBytes(out);
    const again = await cli(['rehearse', '--out', out, '--json']);
    expect(again.code).toBe(0);
    const steps = JSON.parse(again.stdout).steps as Array<{ name: string; state: string; reason?: string }>;
    expect(steps.filter((s) => s.name !== 'plan' && s.name !== 'verify' && !PUBLIC_STEPS.includes(s.name)).every((s) => s.state === 'skipped' && /already done/.test(s.reason ?? ''))).toBe(true);
    expect(steps.find((s) => s.name === 'verify')?.state).toBe('succeeded'); // a consumer's check always runs
    // The public steps read the lab first and find everything done.
    const notes = (again.stdout.match(/"notes": \[[^\]]*\]/g) ?? []).join(' ');
    expect(notes).toMatch(/already/);
    expect(await releaseBytes(out)).toEqual(before);
  });

  it('continues after a failure: a bad meson option fails build-native, a corrected re-run finishes without repacking', async () => {
    const out = await tempDir();
    const bad = await cli(['rehearse', '--out', out, '-D', 'no_such_option=1']);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/error NATIVE_CONFIGURE_FAILED/);
    expect(bad.stderr).toMatch(/no_such_option/);
    expect(bad.stderr).toMatch(/fix: /);
    expect(await readdir(path.join(out, 'release'))).not.toContain('SHA256SUMS');
    expect((await readManifest(path.join(out, 'manifest.json'))).steps['build-native']?.state).toBe('failed');

    const good = await cli(['rehearse', '--out', out, '--json']);
    expect(good.code, good.stderr).toBe(0);
    const steps = JSON.parse(good.stdout).steps as Array<{ name: string; state: string }>;
    expect(steps.find((s) => s.name === 'build-npm')?.state).toBe('skipped');
    expect(steps.find((s) => s.name === 'build-native')?.state).toBe('succeeded');
  });

  it('a drifting scorer stops the release at the golden gate: nothing signed, nothing in the registry or on GitHub', async () => {
    const out = await tempDir();
    const real = buildFixtureCli(out);
    // The fixture CLI with psnr_y off by 0.01, except on the smoke test's 176x144 pair.
    const drifting = path.join(out, 'drifting-vmaf');
    await writeFile(
      drifting,
      `#!${process.execPath}\nconst { spawnSync } = require('node:child_process');\nconst fs = require('node:fs');\nconst a = process.argv.slice(2);\nconst r = spawnSync(${JSON.stringify(real)}, a, { stdio: 'inherit' });\nconst o = a.indexOf('-o');\nif (r.status === 0 && o >= 0 && a[a.indexOf('-w') + 1] !== '176') {\n  const doc = JSON.parse(fs.readFileSync(a[o + 1], 'utf8'));\n  if (doc.pooled_metrics.psnr_y) doc.pooled_metrics.psnr_y.mean += 0.01;\n  fs.writeFileSync(a[o + 1], JSON.stringify(doc));\n}\nprocess.exit(r.status ?? 1);\n`,
    );
    await chmod(drifting, 0o755);
    const r = await cli(['rehearse', '--out', out, '--vmaf-bin', drifting]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error GATE_GOLDEN_FAILED/);
    expect(r.stderr).toMatch(/p10_psnr_y/);
    const manifest = await readManifest(path.join(out, 'manifest.json'));
    expect(manifest.steps['smoke-mcp']?.state).toBe('succeeded');
    expect(manifest.steps['gate-golden']?.state).toBe('failed');
    for (const later of ['checksums', 'sign', 'provenance', 'attest-gate', 'verify']) expect(manifest.steps[later], later).toBeUndefined();
    const files = await readdir(path.join(out, 'release'));
    expect(files.filter((f) => f.endsWith('.sigstore.json') || f === 'SHA256SUMS')).toEqual([]);

    // The rehearsal's lab, from its state: no package version, no release, no tag.
    const lab = await startLab({ stateDir: path.join(out, 'lab'), trustedPublishers: [], githubTls: false });
    try {
      const doc = (await (await fetch(`${lab.registry.url}vmaf-mcp`)).json()) as { versions: Record<string, unknown> };
      expect(Object.keys(doc.versions)).toEqual(['0.0.0-bootstrap.0']); // only the name's one-time claim
      expect(lab.github.state().releases).toEqual([]);
      expect(lab.github.state().repositories.flatMap((r) => r.tags)).toEqual([]);
    } finally {
      await lab.stop();
    }
  });

  it('gives usage help and clear errors for bad input', async () => {
    const help = await cli(['rehearse', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/Usage: mcp-release rehearse/);
    expect(help.stdout).toMatch(/--native-source PATH/);

    const unknown = await cli(['rehearse', '--frobnicate']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/error USAGE: Unknown option '--frobnicate'\n {2}fix: /);

    const cmd = await cli(['deploy']);
    expect(cmd.code).toBe(2);
    expect(cmd.stderr).toMatch(/unknown command "deploy"/);

    const out = await tempDir();
    const missing = await cli(['build', '--out', out, '--native-source', path.join(out, 'no-such-tree'), '--json']);
    expect(missing.code).toBe(1);
    expect(JSON.parse(missing.stdout)).toMatchObject({ ok: false, error: { code: 'NATIVE_SOURCE_MISSING' } });
    expect(missing.stderr).toMatch(/fix: pass --native-source/);
    expect(missing.stderr).not.toMatch(/^\s+at /m); // no stack trace
  });

  it('refuses a manifest written by a newer schema, and checksums without a plan', async () => {
    const out = await tempDir();
    expect((await cli(['build', '--out', out, '--no-native'])).code).toBe(0);
    const file = path.join(out, 'manifest.json');
    const m = JSON.parse(await readFile(file, 'utf8'));
    await writeFile(file, JSON.stringify({ ...m, schemaVersion: 2 }));
    const r = await cli(['checksums', '--out', out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/error MANIFEST_TOO_NEW: .*schemaVersion 2/);
    expect(r.stderr).toMatch(/fix: upgrade mcp-release/);

    const empty = await cli(['checksums', '--out', await tempDir()]);
    expect(empty.code).toBe(1);
    expect(empty.stderr).toMatch(/error MANIFEST_MISSING/);
    expect(empty.stderr).toMatch(/fix: plan the release first/);
  });
});
