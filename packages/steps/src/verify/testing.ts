// Test support for the verification tests: a lab to sign with and a small signed release folder.
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { create as createTar } from 'tar';
import { DEFAULT_CLAIMS, OidcService, startSigstore, type GithubClaims, type SigstoreLab } from '@mcp-release/lab';
import { githubIdentity, ReleaseSigner } from '../sigstore/signing.js';
import { hashFileStreaming } from './digest.js';
import { RELEASE_LAYOUT } from './release.js';

const { bundleSuffix: BUNDLE_SUFFIX, checksums: CHECKSUMS_NAME, provenance: PROVENANCE_BUNDLE, npmProvenance: NPM_PROVENANCE_BUNDLE, slsaProvenanceV1: SLSA_PROVENANCE_V1 } = RELEASE_LAYOUT;

export const LAB_SAN = 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml@refs/heads/main';

export interface SigningLab {
  oidc: OidcService;
  sigstore: SigstoreLab;
  /** A signer for a new signing run with these claims (run_id, sha, refs...). */
  signer(claims?: Partial<GithubClaims>, options?: { tsa?: boolean }): Promise<ReleaseSigner>;
  stop(): Promise<void>;
}

export async function startSigningLab(): Promise<SigningLab> {
  const oidc = new OidcService();
  await oidc.start();
  const sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks` });
  const env = { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken };
  return {
    oidc,
    sigstore,
    async signer(claims = {}, options = {}) {
      oidc.claims = { ...DEFAULT_CLAIMS, ...claims } as GithubClaims;
      const signer = new ReleaseSigner({ fulcio: sigstore.urls.fulcio, rekor: sigstore.urls.rekor, ...(options.tsa === false ? {} : { tsa: sigstore.urls.tsa }) }, githubIdentity(env));
      await signer.certificate(); // the certificate is bound to the claims of now
      oidc.claims = { ...DEFAULT_CLAIMS };
      return signer;
    },
    async stop() {
      await sigstore.stop();
      await oidc.stop();
    },
  };
}

export const PACKAGE = { name: '@mcp-release/vmaf-mcp', version: '0.1.0' };
export const TARBALL = 'mcp-release-vmaf-mcp-0.1.0.tgz';

/** A real npm tarball (package/package.json inside), gzip-compressed. */
async function writeTarball(file: string, seed: string): Promise<void> {
  const stage = await mkdtemp(path.join(tmpdir(), 'verify-tgz-'));
  try {
    await mkdir(path.join(stage, 'package'));
    await writeFile(path.join(stage, 'package', 'package.json'), `${JSON.stringify({ name: PACKAGE.name, version: PACKAGE.version, description: seed })}\n`);
    await writeFile(path.join(stage, 'package', 'index.js'), `export const seed = ${JSON.stringify(seed)};\n`);
    await createTar({ gzip: true, file, cwd: stage, portable: true }, ['package']);
  } finally {
    await rm(stage, { recursive: true, force: true });
  }
}

export interface BuildReleaseOptions {
  sbom?: boolean;
  npmProvenance?: boolean;
}

/**
 * Builds and signs a small release in `dir`: an npm tarball, a native library and CLI, models, an
 * SBOM, verify.sh, SHA256SUMS, a bundle for each, the SLSA provenance and the npm provenance.
 */
export async function buildRelease(signer: ReleaseSigner, dir: string, options: BuildReleaseOptions = {}): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const seed = randomBytes(8).toString('hex');
  await writeTarball(path.join(dir, TARBALL), seed);
  await writeFile(path.join(dir, 'libvmaf.so'), randomBytes(256 * 1024));
  await writeFile(path.join(dir, 'vmaf'), randomBytes(128 * 1024));
  await writeFile(path.join(dir, 'models.tar.gz'), randomBytes(64 * 1024));
  const components = [TARBALL, 'libvmaf.so', 'vmaf', 'models.tar.gz'];
  if (options.sbom !== false) {
    const packages = [];
    for (const name of components) {
      const h = await hashFileStreaming(path.join(dir, name), ['sha256']);
      packages.push({ SPDXID: `SPDXRef-${name.replace(/[^A-Za-z0-9]/g, '-')}`, name, packageFileName: name, checksums: [{ algorithm: 'SHA256', checksumValue: h.sha256 }] });
    }
    await writeFile(path.join(dir, 'sbom.spdx.json'), `${JSON.stringify({ spdxVersion: 'SPDX-2.3', name: `vmaf-mcp ${seed}`, packages }, null, 2)}\n`);
  }
  await writeFile(path.join(dir, 'verify.sh'), `#!/bin/sh\n# release ${seed}\nsha256sum -c SHA256SUMS\n`);
  const listed = (await readdir(dir)).filter((f) => f !== CHECKSUMS_NAME && !f.endsWith(BUNDLE_SUFFIX)).sort();
  const lines: string[] = [];
  for (const f of listed) lines.push(`${(await hashFileStreaming(path.join(dir, f), ['sha256'])).sha256}  ${f}\n`);
  await writeFile(path.join(dir, CHECKSUMS_NAME), lines.join(''));

  const files = [...listed, CHECKSUMS_NAME].sort();
  const subjects: Array<{ name: string; digest: Record<string, string> }> = [];
  for (const f of files) {
    const { bundle, sha256 } = await signer.signFile(path.join(dir, f));
    await writeFile(path.join(dir, `${f}${BUNDLE_SUFFIX}`), `${JSON.stringify(bundle, null, 2)}\n`);
    subjects.push({ name: f, digest: { sha256 } });
  }
  const provenance = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: subjects,
    predicateType: SLSA_PROVENANCE_V1,
    predicate: { buildDefinition: { buildType: 'https://mcp-release.invalid/release/v1', externalParameters: { seed } }, runDetails: { builder: { id: 'https://github.com/mcp-release/vmaf-mcp/.github/workflows/release.yml' } } },
  };
  await writeFile(path.join(dir, PROVENANCE_BUNDLE), `${JSON.stringify(await signer.signStatement(provenance), null, 2)}\n`);
  if (options.npmProvenance !== false) {
    const tgz = await hashFileStreaming(path.join(dir, TARBALL), ['sha512']);
    const npm = {
      _type: 'https://in-toto.io/Statement/v1',
      subject: [{ name: `pkg:npm/${PACKAGE.name.replace('@', '%40')}@${PACKAGE.version}`, digest: { sha512: tgz.sha512 } }],
      predicateType: SLSA_PROVENANCE_V1,
      predicate: {},
    };
    await writeFile(path.join(dir, NPM_PROVENANCE_BUNDLE), `${JSON.stringify(await signer.signStatement(npm), null, 2)}\n`);
  }
  return files;
}
