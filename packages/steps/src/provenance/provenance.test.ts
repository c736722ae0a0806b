import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, cp, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { bundleFromJSON, type SerializedBundle } from '@sigstore/bundle';
import { TrustedRoot } from '@sigstore/protobuf-specs';
import { toSignedEntity, toTrustMaterial, Verifier } from '@sigstore/verify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OidcService, startSigstore, type SigstoreLab } from '@mcp-release/lab';
import { compareNames, type NativeBuild } from '@mcp-release/manifest';
import type { Step } from '@mcp-release/pipeline';
import { releaseContext, runSteps, TEST_PLAN } from '../../../../test/helpers/context.js';
import { checksumsStep } from '../checksums.js';
import { signStep } from '../sign.js';
import type { ReleaseContext, ReleaseOptions } from '../options.js';
import { jobClaimsFrom, type JobClaims } from './claims.js';
import { provenanceStep } from './provenance-step.js';
import { buildNpmStatement, buildStatement, NPM_PROVENANCE_FILE, PROVENANCE_FILE, statementFromBundle, type Statement } from './statement.js';
import { renderVerifyScript, verifyScriptFiles, verifyScriptStep } from './verify-script.js';

const execFileAsync = promisify(execFile);
const COMMIT = TEST_PLAN.commit;
const WORKFLOW = 'mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/tags/v0.0.1';
const SAN = `https://github.com/${WORKFLOW}`;

const oidc = new OidcService({ sha: COMMIT, ref: 'refs/tags/v0.0.1', workflow_ref: WORKFLOW, job_workflow_ref: WORKFLOW, repository_id: '4242', repository_owner_id: '77', event_name: 'push' });
let sigstore: SigstoreLab;
let env: NodeJS.ProcessEnv;
const dirs: string[] = [];

async function scratch(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'mcp-release-provenance-'));
  dirs.push(dir);
  return dir;
}

beforeAll(async () => {
  await oidc.start();
  sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks` });
  env = {
    ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl,
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken,
    MCP_RELEASE_FULCIO_URL: sigstore.urls.fulcio,
    MCP_RELEASE_REKOR_URL: sigstore.urls.rekor,
    MCP_RELEASE_TSA_URL: sigstore.urls.tsa,
  };
});
afterAll(async () => {
  await sigstore?.stop();
  await oidc.stop();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const PACKAGES = [
  { name: '@mcp-release/vmaf-mcp', version: '0.0.1', path: 'packages/vmaf-mcp' },
  { name: 'vmaf-helper', version: '0.0.1', path: 'packages/helper' },
];
const NATIVE: Record<string, NativeBuild> = {
  'linux-x64': {
    project: { name: 'libvmaf', version: '3.0.0' },
    source: { path: 'vendor/vmaf/libvmaf', commit: COMMIT, fingerprint: 'f'.repeat(64) },
    buildtype: 'release',
    options: { built_in_models: true, enable_float: false },
    requestedOptions: { enable_float: 'false' },
  },
};

/** The build steps' outputs: two npm tarballs (one scoped) and the native files. */
const build: Step<ReleaseOptions> = {
  name: 'build-npm',
  description: 'test release files',
  async run(ctx) {
    const files: Array<[string, 'npm-tarball' | 'native-library' | 'native-cli' | 'models-archive', string, Record<string, unknown>?]> = [
      ['mcp-release-vmaf-mcp-0.0.1.tgz', 'npm-tarball', 'any', { name: '@mcp-release/vmaf-mcp', version: '0.0.1' }],
      ['vmaf-helper-0.0.1.tgz', 'npm-tarball', 'any', { name: 'vmaf-helper', version: '0.0.1' }],
      ['libvmaf-linux-x64.so.3', 'native-library', 'linux-x64'],
      ['vmaf-linux-x64', 'native-cli', 'linux-x64'],
      ['models.tar.gz', 'models-archive', 'any'],
    ];
    for (const [name, kind, platform, meta] of files) {
      await writeFile(path.join(ctx.releaseDir, name), `${name} contents\n`);
      await ctx.addArtifact(name, kind, platform, meta);
    }
  },
};

async function release(dir?: string): Promise<ReleaseContext> {
  const ctx = await releaseContext(dir ?? (await scratch()), {}, { deps: { env } });
  ctx.manifest.plan.packages = structuredClone(PACKAGES);
  ctx.manifest.native = structuredClone(NATIVE);
  return ctx;
}

function claims(): JobClaims {
  return jobClaimsFrom({ ...oidc.claims, iss: oidc.issuer });
}

async function readBundle(ctx: ReleaseContext, file: string): Promise<SerializedBundle> {
  return JSON.parse(await readFile(path.join(ctx.releaseDir, file), 'utf8')) as SerializedBundle;
}

const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
const sha512 = (b: Buffer): string => createHash('sha512').update(b).digest('hex');

describe('provenance and verify-script against the lab', () => {
  let ctx: ReleaseContext;
  let statement: Statement;
  let npmStatement: Statement;

  beforeAll(async () => {
    ctx = await release();
    const r = await runSteps([build, verifyScriptStep, checksumsStep, signStep, provenanceStep], ctx);
    if (r.error) throw r.error;
    statement = statementFromBundle(await readBundle(ctx, PROVENANCE_FILE));
    npmStatement = statementFromBundle(await readBundle(ctx, NPM_PROVENANCE_FILE));
  });

  it('attests exactly the release files, sorted, with the digests on disk', async () => {
    const expected = ['SHA256SUMS', 'libvmaf-linux-x64.so.3', 'mcp-release-vmaf-mcp-0.0.1.tgz', 'models.tar.gz', 'verify.sh', 'vmaf-helper-0.0.1.tgz', 'vmaf-linux-x64'];
    expect(statement.subject.map((s) => s.name)).toEqual(expected);
    expect([...expected].sort(compareNames)).toEqual(expected);
    for (const s of statement.subject) expect(s.digest).toEqual({ sha256: sha256(await readFile(path.join(ctx.releaseDir, s.name))) });
    expect(statement._type).toBe('https://in-toto.io/Statement/v1');
    expect(statement.predicateType).toBe('https://slsa.dev/provenance/v1');
    expect(statement).toEqual(buildStatement(ctx.manifest, claims()));
    const recorded = ctx.manifest.artifacts.filter((a) => a.kind === 'provenance');
    expect(recorded.map((a) => [a.path, a.platform, a.meta])).toEqual([
      [NPM_PROVENANCE_FILE, 'any', { predicateType: 'https://slsa.dev/provenance/v1', subjects: 2 }],
      [PROVENANCE_FILE, 'any', { predicateType: 'https://slsa.dev/provenance/v1', subjects: 7 }],
    ]);
  });

  it('fills the predicate from the token claims and records the plan and native options', () => {
    const p = statement.predicate;
    expect(p.buildDefinition.buildType).toBe('https://actions.github.io/buildtypes/workflow/v1');
    expect(p.buildDefinition.externalParameters.workflow).toEqual({ ref: 'refs/tags/v0.0.1', repository: 'https://github.com/mcp-release/vmaf-mcp', path: '.github/workflows/release.yml' });
    expect(p.buildDefinition.internalParameters.github).toEqual({ event_name: 'push', repository_id: '4242', repository_owner_id: '77', runner_environment: 'github-hosted' });
    expect(p.buildDefinition.resolvedDependencies).toEqual([{ uri: 'git+https://github.com/mcp-release/vmaf-mcp@refs/tags/v0.0.1', digest: { gitCommit: COMMIT } }]);
    expect(p.runDetails.builder.id).toBe(SAN);
    expect(p.runDetails.metadata.invocationId).toBe(`https://github.com/mcp-release/vmaf-mcp/actions/runs/${oidc.claims.run_id}/attempts/${oidc.claims.run_attempt}`);
    expect(p.buildDefinition.internalParameters.mcpRelease).toEqual({
      plan: { commit: COMMIT, tag: TEST_PLAN.tag, timestamp: TEST_PLAN.timestamp, packages: PACKAGES },
      native: NATIVE,
    });
  });

  it('names the npm tarballs as npm does, with their sha512, under the same predicate', async () => {
    const scoped = await readFile(path.join(ctx.releaseDir, 'mcp-release-vmaf-mcp-0.0.1.tgz'));
    const plain = await readFile(path.join(ctx.releaseDir, 'vmaf-helper-0.0.1.tgz'));
    expect(npmStatement.subject).toEqual([
      { name: 'pkg:npm/%40mcp-release/vmaf-mcp@0.0.1', digest: { sha512: sha512(scoped) } },
      { name: 'pkg:npm/vmaf-helper@0.0.1', digest: { sha512: sha512(plain) } },
    ]);
    expect(npmStatement.predicate).toEqual(statement.predicate);
    expect(npmStatement).toEqual(buildNpmStatement(ctx.manifest, claims()));
  });

  it('writes DSSE bundles that verify against the lab trusted root for the job identity, with the statement as payload', async () => {
    const verifier = new Verifier(toTrustMaterial(TrustedRoot.fromJSON(sigstore.trustedRoot)));
    const policy = { subjectAlternativeName: SAN, extensions: { issuer: oidc.issuer } };
    for (const [file, expected] of [
      [PROVENANCE_FILE, buildStatement(ctx.manifest, claims())],
      [NPM_PROVENANCE_FILE, buildNpmStatement(ctx.manifest, claims())],
    ] as const) {
      const bundle = await readBundle(ctx, file);
      expect(bundle.mediaType).toBe('application/vnd.dev.sigstore.bundle.v0.3+json');
      expect(bundle.dsseEnvelope?.payloadType).toBe('application/vnd.in-toto+json');
      expect(() => verifier.verify(toSignedEntity(bundleFromJSON(bundle)), policy)).not.toThrow();
      expect(() => verifier.verify(toSignedEntity(bundleFromJSON(bundle)), { ...policy, subjectAlternativeName: `${SAN}x` })).toThrow();
      const payload = Buffer.from(bundle.dsseEnvelope?.payload as string, 'base64').toString('utf8');
      expect(JSON.parse(payload)).toEqual(expected);
      expect(payload).toBe(JSON.stringify(expected)); // canonical key order, byte for byte
    }
  });

  it('does not attest again when nothing changed (same subjects, same identity)', async () => {
    const again = await runSteps([provenanceStep], ctx);
    expect(again.steps[0]).toMatchObject({ state: 'skipped', reason: expect.stringContaining('already done') });
  });

  it('writes verify.sh (0755) that bash accepts, with the exact identity, issuer and every file, deterministically', async () => {
    const file = path.join(ctx.releaseDir, 'verify.sh');
    expect((await stat(file)).mode & 0o777).toBe(0o755);
    await execFileAsync('bash', ['-n', file]);
    const text = await readFile(file, 'utf8');
    expect(text).toContain(`IDENTITY='${SAN}'`);
    expect(text).toContain(`ISSUER='${oidc.issuer}'`);
    expect(text).toContain(`RELEASE_REPO='mcp-release/vmaf-mcp'`);
    expect(text).toContain(`RELEASE_TAG='v0.0.1'`);
    for (const s of statement.subject) {
      expect(text).toContain(`verify_blob '${s.name}'\n`);
      expect(text).toContain(`verify_provenance '${s.name}'\n`);
    }
    const files = verifyScriptFiles(ctx.manifest);
    expect(renderVerifyScript({ tag: 'v0.0.1', repository: 'mcp-release/vmaf-mcp', commit: COMMIT, identity: SAN, issuer: oidc.issuer, files })).toBe(text);
    const sums = await readFile(path.join(ctx.releaseDir, 'SHA256SUMS'), 'utf8');
    expect(sums).toContain('  verify.sh\n');
  });

  describe('verify.sh end to end with a fake gh and a fake cosign', () => {
    let bin: string;
    let work: string;

    beforeAll(async () => {
      work = await scratch();
      bin = path.join(work, 'bin');
      await mkdir(bin);
      await writeFile(
        path.join(bin, 'gh'),
        [
          '#!/bin/sh',
          'printf \'%s\\n\' "$*" >> "$FAKE_GH_LOG"',
          '[ "$1" = release ] && [ "$2" = download ] || exit 2',
          'dir=',
          'while [ "$#" -gt 0 ]; do case $1 in -D) dir=$2; shift 2 ;; *) shift ;; esac; done',
          'mkdir -p "$dir" && cp "$FAKE_GH_FROM"/* "$dir"/',
          '',
        ].join('\n'),
      );
      await writeFile(
        path.join(bin, 'cosign'),
        [
          '#!/bin/sh',
          'line=',
          'for a in "$@"; do line="$line$a|"; last=$a; done',
          'printf \'%s\\n\' "$line" >> "$FAKE_COSIGN_LOG"',
          '[ "${FAKE_COSIGN_FAIL:-}" != "$last" ]',
          '',
        ].join('\n'),
      );
      await chmod(path.join(bin, 'gh'), 0o755);
      await chmod(path.join(bin, 'cosign'), 0o755);
    });

    async function verify(name: string, from: string, extra: { args?: string[]; env?: NodeJS.ProcessEnv; shell?: string } = {}) {
      const logs = { gh: path.join(work, `${name}.gh.log`), cosign: path.join(work, `${name}.cosign.log`) };
      const dest = path.join(work, `${name}-download`);
      const childEnv = { PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}`, FAKE_GH_FROM: from, FAKE_GH_LOG: logs.gh, FAKE_COSIGN_LOG: logs.cosign, ...extra.env };
      let code = 0;
      let stdout = '';
      let stderr = '';
      try {
        ({ stdout, stderr } = await execFileAsync(extra.shell ?? 'bash', [path.join(from, 'verify.sh'), '--dir', dest, ...(extra.args ?? [])], { env: childEnv, cwd: work }));
      } catch (err) {
        const e = err as { code: number; stdout: string; stderr: string };
        ({ code, stdout, stderr } = e);
      }
      const read = async (f: string): Promise<string[]> => (await readFile(f, 'utf8').catch(() => '')).split('\n').filter(Boolean);
      return { code, stdout, stderr, gh: await read(logs.gh), cosign: (await read(logs.cosign)).map((l) => l.split('|').slice(0, -1)), dest };
    }

    /** Exactly the calls the script must make: a signature check per file, then a provenance check per file. */
    function expectedCalls(): string[][] {
      const names = statement.subject.map((s) => s.name);
      return [
        ...names.map((f) => ['verify-blob', '--bundle', `${f}.sigstore.json`, '--certificate-identity', SAN, '--certificate-oidc-issuer', oidc.issuer, f]),
        ...names.map((f) => ['verify-blob-attestation', '--bundle', PROVENANCE_FILE, '--new-bundle-format', '--type', 'slsaprovenance1', '--certificate-identity', SAN, '--certificate-oidc-issuer', oidc.issuer, f]),
      ];
    }

    it('downloads the release, checks SHA256SUMS and calls cosign once per file with the exact flags', async () => {
      for (const shell of ['bash', 'sh']) {
        const r = await verify(`ok-${shell}`, ctx.releaseDir, { shell });
        expect(r.stderr).toBe('');
        expect(r.code).toBe(0);
        expect(r.gh).toEqual([`release download v0.0.1 -R mcp-release/vmaf-mcp -D ${r.dest} --clobber`]);
        expect(r.cosign).toEqual(expectedCalls());
        expect(r.stdout).toContain('ok: every file matches SHA256SUMS');
        for (const s of statement.subject) expect(r.stdout).toContain(`ok: signature of ${s.name}\n`);
        expect(r.stdout).toContain('verified release v0.0.1 of mcp-release/vmaf-mcp: 6 files match SHA256SUMS; these and SHA256SUMS (7 files) are signed by');
      }
    });

    it('takes the tag and repository from arguments or the environment, and a private trusted root', async () => {
      const r = await verify('override', ctx.releaseDir, { args: ['--tag', 'v9.9.9'], env: { REPO: 'someone/fork', VERIFY_TRUSTED_ROOT: '/tmp/trusted root.json' } });
      expect(r.code).toBe(0);
      expect(r.gh).toEqual([`release download v9.9.9 -R someone/fork -D ${r.dest} --clobber`]);
      expect(r.cosign[0]).toEqual(['verify-blob', '--trusted-root', '/tmp/trusted root.json', '--bundle', 'SHA256SUMS.sigstore.json', '--certificate-identity', SAN, '--certificate-oidc-issuer', oidc.issuer, 'SHA256SUMS']);
    });

    it('exits non-zero with a clear line when SHA256SUMS was tampered with, before any signature check', async () => {
      const from = path.join(work, 'tampered');
      await cp(ctx.releaseDir, from, { recursive: true });
      const sums = await readFile(path.join(from, 'SHA256SUMS'), 'utf8');
      const line = sums.split('\n').find((l) => l.endsWith('  models.tar.gz')) as string;
      await writeFile(path.join(from, 'SHA256SUMS'), sums.replace(line, `${'0'.repeat(64)}  models.tar.gz`));
      const r = await verify('tampered', from);
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain('verify.sh: FAILED: a file does not match SHA256SUMS');
      expect(r.cosign).toEqual([]);

      const dropped = path.join(work, 'dropped');
      await cp(ctx.releaseDir, dropped, { recursive: true });
      await writeFile(path.join(dropped, 'SHA256SUMS'), sums.replace(`${line}\n`, ''));
      const d = await verify('dropped', dropped);
      expect(d.code).not.toBe(0);
      expect(d.stderr).toContain('verify.sh: FAILED: SHA256SUMS does not list models.tar.gz');
    });

    it('checks files already in a folder without gh when told not to download, and names a missing SHA256SUMS', async () => {
      const r = await verify('offline', ctx.releaseDir, { args: ['--no-download', '--dir', ctx.releaseDir] });
      expect(r.code).toBe(0);
      expect(r.gh).toEqual([]);
      expect(r.cosign).toEqual(expectedCalls());

      const bare = path.join(work, 'bare');
      await cp(ctx.releaseDir, bare, { recursive: true });
      await rm(path.join(bare, 'SHA256SUMS'));
      const m = await verify('bare', bare, { args: ['--no-download', '--dir', bare] });
      expect(m.code).not.toBe(0);
      expect(m.stderr).toBe(`verify.sh: FAILED: SHA256SUMS is missing from ${bare}\n`);
    });

    it('stops at the first file whose signature cosign rejects, naming it', async () => {
      const r = await verify('bad-signature', ctx.releaseDir, { env: { FAKE_COSIGN_FAIL: 'models.tar.gz' } });
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(`verify.sh: FAILED: the signature of models.tar.gz does not verify for ${SAN}`);
      expect(r.cosign).toEqual(expectedCalls().slice(0, 4));
      expect(await readdir(r.dest)).toContain('models.tar.gz');
    });
  });
});

describe('provenance refusals', () => {
  it('refuses a token whose sha is not the planned commit, and writes nothing', async () => {
    const ctx = await release();
    const before = oidc.claims.sha;
    oidc.claims.sha = 'd'.repeat(40);
    try {
      const r = await runSteps([build, provenanceStep], ctx);
      expect(r.error).toMatchObject({ code: 'PROVENANCE_COMMIT_MISMATCH', message: expect.stringContaining('would attest another commit') });
      expect((r.error as { message: string }).message).toContain(COMMIT);
      expect((r.error as { message: string }).message).toContain('d'.repeat(40));
      expect((r.error as { hint?: string }).hint).toMatch(/planned commit/);
    } finally {
      oidc.claims.sha = before;
    }
    expect((await readdir(ctx.releaseDir)).filter((f) => f.includes('provenance'))).toEqual([]);
  });

  it('refuses to attest files that are not signed yet', async () => {
    const ctx = await release();
    const r = await runSteps([build, checksumsStep, provenanceStep], ctx);
    expect(r.error).toMatchObject({ code: 'PROVENANCE_BEFORE_SIGNING', message: expect.stringContaining('SHA256SUMS') });
    expect((r.error as { hint?: string }).hint).toMatch(/sign step/);
  });

  it('skips both steps when there are no release files', async () => {
    const ctx = await release();
    const r = await runSteps([verifyScriptStep, provenanceStep], ctx);
    expect(r.steps.map((s) => [s.name, s.state, s.reason])).toEqual([
      ['verify-script', 'skipped', 'there are no release files to verify'],
      ['provenance', 'skipped', 'there are no release files to attest'],
    ]);
  });

  it('says which permission is missing when the job has no OIDC token', async () => {
    const ctx = await releaseContext(await scratch(), {}, { deps: { env: {} } });
    const r = await runSteps([build, verifyScriptStep], ctx);
    expect(r.error).toMatchObject({ code: 'OIDC_TOKEN_UNAVAILABLE' });
  });

  it('refuses a release file name verify.sh cannot carry safely', async () => {
    const ctx = await release();
    const odd: Step<ReleaseOptions> = {
      name: 'build-npm',
      description: 'odd name',
      async run(c) {
        await writeFile(path.join(c.releaseDir, 'notes (final).txt'), 'x');
        await c.addArtifact('notes (final).txt', 'gate-report', 'any');
      },
    };
    const r = await runSteps([odd, verifyScriptStep], ctx);
    expect(r.error).toMatchObject({ code: 'VERIFY_SCRIPT_UNSAFE_NAME', message: expect.stringContaining('"notes (final).txt"') });
  });
});
