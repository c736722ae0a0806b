import { cp, mkdtemp, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { npmIntegrity } from '@mcp-release/manifest';
import { startGithub, type GithubLab } from '@mcp-release/lab';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import type { ReleaseSigner } from '../sigstore/signing.js';
import { buildRelease, PACKAGE, startSigningLab, TARBALL, type SigningLab } from './testing.js';
import { hashFileStreaming } from './digest.js';
import { verifyExitCode } from './codes.js';
import { overallStatus, renderReleaseVerification, releaseIdentity, verifyRelease, type ReleaseCheck, type ReleaseIdentityPolicy, type ReleaseVerification, type VerifyReleaseOptions } from './release.js';

const NEW_RUN = { run_id: '101', sha: 'b'.repeat(40) };
const OLD_RUN = { run_id: '100', sha: 'a'.repeat(40) };

let lab: SigningLab;
let signer: ReleaseSigner;
let work: string;
let current: string;
let old: string;
let minimal: string;
let files: string[];

beforeAll(async () => {
  lab = await startSigningLab();
  work = await mkdtemp(path.join(tmpdir(), 'verify-release-'));
  current = path.join(work, 'v0.2.0');
  old = path.join(work, 'v0.1.0');
  minimal = path.join(work, 'minimal');
  await buildRelease(await lab.signer(OLD_RUN), old);
  signer = await lab.signer(NEW_RUN);
  files = await buildRelease(signer, current);
  await buildRelease(await lab.signer({ run_id: '102', sha: 'c'.repeat(40) }), minimal, { sbom: false, npmProvenance: false });
});

afterAll(async () => {
  await lab?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

function policy(extra: Partial<ReleaseIdentityPolicy> = {}): ReleaseIdentityPolicy {
  return { repository: 'mcp-release/vmaf-mcp', workflow: 'release.yml', refPattern: 'refs/heads/main', issuer: lab.oidc.issuer, ...extra };
}

function options(folder: string, extra: Partial<VerifyReleaseOptions> = {}): VerifyReleaseOptions {
  return { folder, policy: policy(), trustedRoot: lab.sigstore.trustedRoot, ...extra };
}

/** A copy of a release to tamper with. */
async function copyOf(release: string): Promise<string> {
  const dir = path.join(await tempDir(), 'release');
  await cp(release, dir, { recursive: true });
  return dir;
}

const find = (r: ReleaseVerification, name: ReleaseCheck['name'], file?: string): ReleaseCheck[] => r.checks.filter((c) => c.name === name && (file === undefined || c.file === file));
const failedOf = (r: ReleaseVerification): ReleaseCheck[] => r.checks.filter((c) => c.status === 'failed');

async function flipByte(file: string): Promise<void> {
  const data = await readFile(file);
  const i = Math.floor(data.length / 2);
  data[i] = (data[i] as number) ^ 0x01;
  await writeFile(file, data);
}

describe('verifyRelease: a genuine release', () => {
  it('verifies every file, the signing run, the provenance, the npm provenance and the SBOM', async () => {
    const result = await verifyRelease(options(current));
    expect(failedOf(result)).toEqual([]);
    expect(result.status).toBe('verified');
    expect(verifyExitCode(result)).toBe(0);
    expect(result.files).toEqual(files);
    for (const f of files) {
      expect(find(result, 'signature', f)[0]?.status).toBe('verified');
      if (f !== 'SHA256SUMS') expect(find(result, 'checksums', f)[0]?.status).toBe('verified');
    }
    expect(find(result, 'signature', 'provenance.intoto.sigstore.json')[0]?.status).toBe('verified');
    expect(find(result, 'signature', 'npm-provenance.sigstore.json')[0]?.status).toBe('verified');
    expect(find(result, 'signing-run')).toEqual([expect.objectContaining({ status: 'verified', detail: expect.stringContaining('/actions/runs/101 at commit bbbb') })]);
    expect(result.run).toBe('https://github.com/mcp-release/vmaf-mcp/actions/runs/101/attempts/1');
    expect(result.commit).toBe(NEW_RUN.sha);
    expect(find(result, 'provenance')).toEqual([expect.objectContaining({ status: 'verified', detail: `${files.length} subjects match the release files` })]);
    expect(find(result, 'npm-provenance', TARBALL)[0]).toMatchObject({ status: 'verified', detail: expect.stringContaining(`${PACKAGE.name}@${PACKAGE.version}`) });
    expect(find(result, 'sbom', 'sbom.spdx.json')[0]).toMatchObject({ status: 'verified', detail: 'lists 4 release files with their sha256' });
    expect(JSON.parse(JSON.stringify(result))).toEqual(result);
    const table = renderReleaseVerification(result);
    expect(table).toMatch(/^VERIFIED: /);
    expect(table).toMatch(/STATUS +CHECK +FILE +DETAIL/);
    expect(table).toMatch(/ok {2,}signature {2,}libvmaf\.so {2,}signed by https:\/\/github\.com\/mcp-release\/vmaf-mcp/);
  });

  it('says "not in this release" for an absent SBOM and npm provenance', async () => {
    const result = await verifyRelease(options(minimal));
    expect(result.status).toBe('verified');
    expect(find(result, 'sbom')).toEqual([expect.objectContaining({ status: 'skipped', detail: 'SBOM: not in this release' })]);
    expect(find(result, 'npm-provenance')).toEqual([expect.objectContaining({ status: 'skipped', detail: 'npm-provenance.sigstore.json: not in this release' })]);
  });

  it('accepts files re-signed by a later attempt of the same run', async () => {
    const dir = await copyOf(current);
    const retry = await lab.signer({ ...NEW_RUN, run_attempt: '2' });
    await writeFile(path.join(dir, 'vmaf.sigstore.json'), JSON.stringify((await retry.signFile(path.join(dir, 'vmaf'))).bundle));
    const result = await verifyRelease(options(dir));
    expect(result.status).toBe('verified');
  });
});

describe('verifyRelease: the tamper corpus', () => {
  it.each(['mcp-release-vmaf-mcp-0.1.0.tgz', 'libvmaf.so', 'vmaf', 'models.tar.gz', 'verify.sh', 'sbom.spdx.json'])('refuses %s with one byte flipped', async (name) => {
    const dir = await copyOf(current);
    await flipByte(path.join(dir, name));
    const result = await verifyRelease(options(dir));
    expect(result.status).toBe('not-verified');
    expect(verifyExitCode(result)).toBe(1);
    expect(find(result, 'signature', name)[0]).toMatchObject({ status: 'failed', code: 'VERIFY_DIGEST_MISMATCH' });
    expect(find(result, 'checksums', name)[0]).toMatchObject({ status: 'failed', code: 'VERIFY_CHECKSUM_MISMATCH', detail: expect.stringContaining(`${name} has sha256`) });
    expect(find(result, 'provenance', name)[0]).toMatchObject({ status: 'failed', code: 'VERIFY_PROVENANCE_SUBJECT_DIGEST' });
    if (name === TARBALL) expect(find(result, 'npm-provenance', name)[0]).toMatchObject({ status: 'failed', code: 'VERIFY_NPM_PROVENANCE_MISMATCH' });
    if (['libvmaf.so', 'vmaf', 'models.tar.gz', TARBALL].includes(name)) expect(find(result, 'sbom', name)[0]).toMatchObject({ status: 'failed', code: 'VERIFY_SBOM_MISMATCH' });
    expect(renderReleaseVerification(result)).toMatch(/^NOT VERIFIED: [\s\S]*what to do:/);
  });

  it('refuses an edited SHA256SUMS', async () => {
    const dir = await copyOf(current);
    const sums = await readFile(path.join(dir, 'SHA256SUMS'), 'utf8');
    await writeFile(path.join(dir, 'SHA256SUMS'), sums.replace(/^[0-9a-f]{64}( {2}libvmaf\.so)$/m, `${'0'.repeat(64)}$1`));
    const result = await verifyRelease(options(dir));
    expect(find(result, 'signature', 'SHA256SUMS')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_DIGEST_MISMATCH' });
    expect(find(result, 'checksums', 'libvmaf.so')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_CHECKSUM_MISMATCH', detail: expect.stringContaining(`SHA256SUMS says ${'0'.repeat(64)}`) });
    expect(find(result, 'provenance', 'SHA256SUMS')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_PROVENANCE_SUBJECT_DIGEST' });
  });

  it('refuses a malformed SHA256SUMS line, a listed file that is missing and a file that is not listed', async () => {
    const dir = await copyOf(current);
    await writeFile(path.join(dir, 'SHA256SUMS'), `${await readFile(path.join(dir, 'SHA256SUMS'), 'utf8')}not a checksum line\n${'1'.repeat(64)}  gone.bin\n`);
    await writeFile(path.join(dir, 'extra.bin'), 'added later');
    const result = await verifyRelease(options(dir));
    expect(find(result, 'checksums', 'SHA256SUMS').find((c) => c.code === 'VERIFY_CHECKSUMS_MALFORMED')?.detail).toMatch(/line \d+ is not/);
    expect(find(result, 'checksums', 'gone.bin')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_FILE_MISSING' });
    expect(find(result, 'checksums', 'extra.bin')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_FILE_UNLISTED' });
    expect(find(result, 'signature', 'extra.bin')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_BUNDLE_MISSING' });
    expect(find(result, 'provenance', 'extra.bin')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_PROVENANCE_SUBJECT_MISSING' });
  });

  it('refuses a missing SHA256SUMS, a missing bundle and a bundle of no file', async () => {
    const dir = await copyOf(current);
    await rm(path.join(dir, 'SHA256SUMS'));
    await rm(path.join(dir, 'SHA256SUMS.sigstore.json'));
    await rm(path.join(dir, 'vmaf.sigstore.json'));
    await rename(path.join(dir, 'verify.sh'), path.join(dir, '.verify.sh.tmp'));
    const result = await verifyRelease(options(dir));
    expect(find(result, 'checksums', 'SHA256SUMS')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_CHECKSUMS_MISSING' });
    expect(find(result, 'signature', 'vmaf')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_BUNDLE_MISSING', detail: expect.stringContaining('vmaf.sigstore.json is not in the release') });
    expect(find(result, 'signature', 'verify.sh.sigstore.json')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_BUNDLE_ORPHAN' });
    expect(find(result, 'provenance', 'verify.sh')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_PROVENANCE_SUBJECT_EXTRA' });
  });

  it('refuses two bundles swapped between files, naming whose signature each one is', async () => {
    const dir = await copyOf(current);
    await rename(path.join(dir, 'libvmaf.so.sigstore.json'), path.join(dir, 'swap'));
    await rename(path.join(dir, 'vmaf.sigstore.json'), path.join(dir, 'libvmaf.so.sigstore.json'));
    await rename(path.join(dir, 'swap'), path.join(dir, 'vmaf.sigstore.json'));
    const result = await verifyRelease(options(dir));
    expect(find(result, 'signature', 'libvmaf.so')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_DIGEST_MISMATCH', detail: expect.stringContaining('libvmaf.so.sigstore.json is the signature of vmaf, not of libvmaf.so') });
    expect(find(result, 'signature', 'vmaf')[0]).toMatchObject({ status: 'failed', detail: expect.stringContaining('vmaf.sigstore.json is the signature of libvmaf.so, not of vmaf') });
    expect(find(result, 'checksums').every((c) => c.status === 'verified')).toBe(true);
  });

  it.each([
    ['a wrong repository', { repository: 'mcp-release/other' }, 'VERIFY_IDENTITY_MISMATCH'],
    ['a wrong ref', { refPattern: 'refs/tags/v[0-9]+\\.[0-9]+\\.[0-9]+' }, 'VERIFY_IDENTITY_MISMATCH'],
    ['a ref that only matches as a prefix', { refPattern: 'refs/heads/mai' }, 'VERIFY_IDENTITY_MISMATCH'],
    ['a wrong workflow', { workflow: 'publish.yml' }, 'VERIFY_IDENTITY_MISMATCH'],
    ['a wrong issuer', { issuer: 'https://token.actions.githubusercontent.com' }, 'VERIFY_ISSUER_MISMATCH'],
  ])('refuses every signature for %s', async (_what, change, code) => {
    const result = await verifyRelease({ ...options(current), policy: policy(change) });
    expect(result.status).toBe('not-verified');
    const signatures = find(result, 'signature');
    expect(signatures.length).toBe(files.length + 2);
    for (const c of signatures) expect(c).toMatchObject({ status: 'failed', code });
    if (code === 'VERIFY_IDENTITY_MISMATCH') expect(signatures[0]?.detail).toMatch(/was signed by https:\/\/github\.com\/mcp-release\/vmaf-mcp\/\.github\/workflows\/release\.yml@refs\/heads\/main, expected a match of \^\(\?:/);
    expect(find(result, 'provenance')[0]?.status).toBe('skipped');
  });

  it("catches an old release's file mixed into the new one, naming the file", async () => {
    const dir = await copyOf(current);
    await cp(path.join(old, 'libvmaf.so'), path.join(dir, 'libvmaf.so'));
    await cp(path.join(old, 'libvmaf.so.sigstore.json'), path.join(dir, 'libvmaf.so.sigstore.json'));
    const result = await verifyRelease(options(dir));
    expect(result.status).toBe('not-verified');
    // the old file is genuinely signed, by the old run
    expect(find(result, 'signature', 'libvmaf.so')[0]?.status).toBe('verified');
    expect(find(result, 'signing-run')).toEqual([
      expect.objectContaining({
        status: 'failed',
        code: 'VERIFY_MIXED_RUNS',
        file: 'libvmaf.so.sigstore.json',
        detail: expect.stringMatching(/libvmaf\.so\.sigstore\.json was signed by run .*\/runs\/100\/attempts\/1 at commit a{40}, the rest of the release by run .*\/runs\/101\/attempts\/1 at commit b{40}/),
      }),
    ]);
  });

  it('refuses a provenance with a subject removed, and one with a subject added', async () => {
    const statement = JSON.parse(Buffer.from((JSON.parse(await readFile(path.join(current, 'provenance.intoto.sigstore.json'), 'utf8')) as { dsseEnvelope: { payload: string } }).dsseEnvelope.payload, 'base64').toString()) as {
      subject: Array<{ name: string; digest: Record<string, string> }>;
    };
    const removed = await copyOf(current);
    await writeFile(path.join(removed, 'provenance.intoto.sigstore.json'), JSON.stringify(await signer.signStatement({ ...statement, subject: statement.subject.filter((s) => s.name !== 'models.tar.gz') })));
    const r1 = await verifyRelease(options(removed));
    expect(failedOf(r1)).toEqual([expect.objectContaining({ name: 'provenance', file: 'models.tar.gz', code: 'VERIFY_PROVENANCE_SUBJECT_MISSING', detail: 'models.tar.gz is not a subject of the provenance' })]);

    const added = await copyOf(current);
    await writeFile(path.join(added, 'provenance.intoto.sigstore.json'), JSON.stringify(await signer.signStatement({ ...statement, subject: [...statement.subject, { name: 'backdoor.so', digest: { sha256: 'e'.repeat(64) } }] })));
    const r2 = await verifyRelease(options(added));
    expect(failedOf(r2)).toEqual([expect.objectContaining({ name: 'provenance', file: 'backdoor.so', code: 'VERIFY_PROVENANCE_SUBJECT_EXTRA', detail: 'the provenance names backdoor.so, which is not in the release' })]);
  });

  it('refuses an edited Rekor body, an edited inclusion proof, a malformed bundle and an unknown media type, each with its own code', async () => {
    const dir = await copyOf(current);
    const edit = async (name: string, fn: (b: Record<string, unknown>) => unknown): Promise<void> => {
      const file = path.join(dir, name);
      const out = fn(JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>);
      await writeFile(file, typeof out === 'string' ? out : JSON.stringify(out));
    };
    type Entry = { canonicalizedBody: string; inclusionPromise?: unknown; inclusionProof: { hashes: string[]; rootHash: string } };
    const entryOf = (b: Record<string, unknown>): Entry => (b.verificationMaterial as { tlogEntries: Entry[] }).tlogEntries[0] as Entry;
    await edit('vmaf.sigstore.json', (b) => {
      const e = entryOf(b);
      const body = JSON.parse(Buffer.from(e.canonicalizedBody, 'base64').toString()) as { spec: { signature: { content: string } } };
      body.spec.signature.content = Buffer.from('forged').toString('base64');
      e.canonicalizedBody = Buffer.from(JSON.stringify(body)).toString('base64');
      return b;
    });
    await edit('models.tar.gz.sigstore.json', (b) => {
      const e = entryOf(b);
      delete e.inclusionPromise;
      e.inclusionProof.rootHash = Buffer.alloc(32, 1).toString('base64');
      return b;
    });
    await edit('verify.sh.sigstore.json', () => '{"mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json", "verificationMaterial": {}}');
    await edit('libvmaf.so.sigstore.json', (b) => ({ ...b, mediaType: 'application/vnd.example.bundle+json' }));
    const result = await verifyRelease(options(dir));
    expect(find(result, 'signature', 'vmaf')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_TLOG_BODY_MISMATCH', detail: expect.stringContaining('logs a different signature') });
    expect(find(result, 'signature', 'models.tar.gz')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_TLOG_INCLUSION_INVALID', detail: expect.stringContaining('but its checkpoint states') });
    expect(find(result, 'signature', 'verify.sh')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_BUNDLE_MALFORMED' });
    expect(find(result, 'signature', 'libvmaf.so')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_BUNDLE_MEDIA_TYPE' });
    expect(new Set(failedOf(result).map((c) => c.code))).toEqual(new Set(['VERIFY_TLOG_BODY_MISMATCH', 'VERIFY_TLOG_INCLUSION_INVALID', 'VERIFY_BUNDLE_MALFORMED', 'VERIFY_BUNDLE_MEDIA_TYPE']));
  });

  it('refuses an SBOM that lists a file with another digest, naming the file', async () => {
    const dir = await copyOf(current);
    const sbom = JSON.parse(await readFile(path.join(dir, 'sbom.spdx.json'), 'utf8')) as { packages: Array<{ name: string; checksums: Array<{ checksumValue: string }> }> };
    for (const p of sbom.packages) if (p.name === 'vmaf') (p.checksums[0] as { checksumValue: string }).checksumValue = 'f'.repeat(64);
    await writeFile(path.join(dir, 'sbom.spdx.json'), JSON.stringify(sbom));
    const result = await verifyRelease(options(dir));
    expect(find(result, 'sbom', 'vmaf')[0]).toMatchObject({ status: 'failed', code: 'VERIFY_SBOM_MISMATCH', detail: expect.stringContaining(`sbom.spdx.json lists vmaf with sha256 ${'f'.repeat(64)}`) });
  });

  it('reads a CycloneDX SBOM as well', async () => {
    const dir = await copyOf(minimal);
    const components = [];
    for (const name of ['libvmaf.so', 'vmaf', 'models.tar.gz', TARBALL]) components.push({ type: 'file', name, hashes: [{ alg: 'SHA-256', content: (await hashFileStreaming(path.join(dir, name), ['sha256'])).sha256 }] });
    // unsigned and unlisted, so those checks fail; the SBOM check itself passes
    await writeFile(path.join(dir, 'sbom.cdx.json'), JSON.stringify({ bomFormat: 'CycloneDX', specVersion: '1.6', components }));
    const result = await verifyRelease(options(dir));
    expect(find(result, 'sbom', 'sbom.cdx.json')[0]).toMatchObject({ status: 'verified', detail: 'lists 4 release files with their sha256' });
  });
});

describe('verifyRelease: the npm registry', () => {
  let server: Server;
  let url: string;
  let packument: unknown = {};
  let status = 200;

  beforeAll(async () => {
    server = createServer((req, res) => {
      if (req.url !== `/${PACKAGE.name.replace('/', '%2f')}`) {
        res.writeHead(404).end('{}');
        return;
      }
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(packument));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as { port: number }).port}/`;
  });
  afterAll(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });

  it('verifies that the registry serves each package version with the tarball integrity', async () => {
    const integrity = npmIntegrity((await hashFileStreaming(path.join(current, TARBALL), ['sha512'])).sha512 as string);
    status = 200;
    packument = { name: PACKAGE.name, versions: { [PACKAGE.version]: { dist: { integrity } } } };
    const ok = await verifyRelease(options(current, { registry: url }));
    expect(ok.status).toBe('verified');
    expect(find(ok, 'registry', TARBALL)[0]).toMatchObject({ status: 'verified', detail: `${PACKAGE.name}@${PACKAGE.version} is served with the tarball's integrity` });

    packument = { name: PACKAGE.name, versions: { [PACKAGE.version]: { dist: { integrity: `sha512-${Buffer.alloc(64).toString('base64')}` } } } };
    const wrong = await verifyRelease(options(current, { registry: url }));
    expect(find(wrong, 'registry', TARBALL)[0]).toMatchObject({ status: 'failed', code: 'VERIFY_REGISTRY_INTEGRITY_MISMATCH' });

    packument = { name: PACKAGE.name, versions: {} };
    const missing = await verifyRelease(options(current, { registry: url }));
    expect(find(missing, 'registry', TARBALL)[0]).toMatchObject({ status: 'failed', code: 'VERIFY_REGISTRY_VERSION_MISSING' });

    status = 503;
    const down = await verifyRelease(options(current, { registry: url }));
    expect(find(down, 'registry', TARBALL)[0]).toMatchObject({ status: 'error', code: 'CANNOT_VERIFY_REGISTRY' });
    expect(down.status).toBe('could-not-check');
    expect(verifyExitCode(down)).toBe(3);
    expect(renderReleaseVerification(down)).toMatch(/^COULD NOT CHECK: /);
  });
});

describe('verifyRelease: from a GitHub release', () => {
  let github: GithubLab;
  beforeAll(async () => {
    github = await startGithub({ tls: false });
    const octokit = new Octokit({ baseUrl: github.url, auth: github.token, log: { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined } });
    const rel = (await octokit.rest.repos.createRelease({ owner: 'mcp-release', repo: 'vmaf-mcp', tag_name: 'v0.2.0' })).data;
    for (const name of (await readdir(current)).sort()) {
      const data = await readFile(path.join(current, name));
      await octokit.rest.repos.uploadReleaseAsset({ owner: 'mcp-release', repo: 'vmaf-mcp', release_id: rel.id, url: rel.upload_url, name, data: data as unknown as string, headers: { 'content-type': 'application/octet-stream', 'content-length': data.length } });
    }
  });
  afterAll(async () => {
    await github?.stop();
  });

  it('downloads every asset through the API, streaming, and verifies the folder', async () => {
    const keep = path.join(await tempDir(), 'download');
    const result = await verifyRelease({ policy: policy(), trustedRoot: lab.sigstore.trustedRoot, github: { repository: 'mcp-release/vmaf-mcp', tag: 'v0.2.0', baseUrl: github.url, token: github.token, downloadDir: keep } });
    expect(failedOf(result)).toEqual([]);
    expect(result).toMatchObject({ status: 'verified', folder: keep, source: { repository: 'mcp-release/vmaf-mcp', tag: 'v0.2.0', kept: true } });
    expect((await readdir(keep)).sort()).toEqual((await readdir(current)).sort());
    expect(renderReleaseVerification(result)).toMatch(/^VERIFIED: mcp-release\/vmaf-mcp v0\.2\.0/);

    const temporary = await verifyRelease({ policy: policy(), trustedRoot: lab.sigstore.trustedRoot, github: { repository: 'mcp-release/vmaf-mcp', tag: 'v0.2.0', baseUrl: github.url } });
    expect(temporary).toMatchObject({ status: 'verified', source: { kept: false } });
    await expect(readdir(temporary.folder)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('cannot check a release that is not there', async () => {
    const err = await caught(async () => verifyRelease({ policy: policy(), trustedRoot: lab.sigstore.trustedRoot, github: { repository: 'mcp-release/vmaf-mcp', tag: 'v9.9.9', baseUrl: github.url } }));
    expect(err).toMatchObject({ code: 'CANNOT_VERIFY_DOWNLOAD', message: expect.stringContaining('there is no release v9.9.9 on mcp-release/vmaf-mcp') });
    expect(verifyExitCode(err)).toBe(3);
  });
});

describe('verifyRelease: what it cannot check', () => {
  it('throws CANNOT_VERIFY_ errors for a missing folder, an unusable trusted root and bad options', async () => {
    expect(await caught(async () => verifyRelease(options(path.join(work, 'nope'))))).toMatchObject({ code: 'CANNOT_VERIFY_INPUT' });
    expect(await caught(async () => verifyRelease({ ...options(current), trustedRoot: { mediaType: 'x' } }))).toMatchObject({ code: 'CANNOT_VERIFY_TRUSTED_ROOT_INVALID' });
    expect(await caught(async () => verifyRelease({ ...options(current), policy: policy({ repository: 'nope' }) }))).toMatchObject({ code: 'CANNOT_VERIFY_OPTIONS' });
    expect(await caught(async () => verifyRelease({ ...options(current), policy: policy({ refPattern: 'refs/(' }) }))).toMatchObject({ code: 'CANNOT_VERIFY_OPTIONS' });
  });

  it('builds an anchored SAN pattern and an overall status from the checks', () => {
    const { regexp } = releaseIdentity(policy({ workflow: '.github/workflows/release.yml' })) as { regexp: string };
    expect(regexp).toBe('https://github\\.com/mcp-release/vmaf-mcp/\\.github/workflows/release\\.yml@(?:refs/heads/main)');
    const c = (status: ReleaseCheck['status']): ReleaseCheck => ({ name: 'signature', status, detail: '' });
    expect(overallStatus([c('verified'), c('skipped')])).toBe('verified');
    expect(overallStatus([c('verified'), c('error')])).toBe('could-not-check');
    expect(overallStatus([c('error'), c('failed')])).toBe('not-verified');
    expect(overallStatus([c('skipped')])).toBe('could-not-check');
  });
});
