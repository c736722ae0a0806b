import { writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caught, tempDir } from '../../../../test/helpers/tmp.js';
import { startSigningLab, LAB_SAN, type SigningLab } from './testing.js';
import { loadTrustedRoot } from './trusted-root.js';
import { verifyBundle } from './bundle.js';
import { couldNotCheck, verifyExitCode } from './codes.js';

let lab: SigningLab;

beforeAll(async () => {
  lab = await startSigningLab();
});
afterAll(async () => {
  await lab?.stop();
});

async function rootFile(content: unknown): Promise<string> {
  const file = path.join(await tempDir(), 'trusted_root.json');
  await writeFile(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** A port nothing listens on: taken from the system, then released. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('loadTrustedRoot', () => {
  it('reads --trusted-root first, then MCP_RELEASE_TRUSTED_ROOT', async () => {
    const file = await rootFile(lab.sigstore.trustedRoot);
    const other = await rootFile({ broken: true });
    await expect(loadTrustedRoot({ file, env: { MCP_RELEASE_TRUSTED_ROOT: other }, offline: true })).resolves.toMatchObject({ source: 'file', location: file, trustedRoot: lab.sigstore.trustedRoot });
    await expect(loadTrustedRoot({ env: { MCP_RELEASE_TRUSTED_ROOT: file }, offline: true })).resolves.toMatchObject({ source: 'env', location: file });
  });

  it('fetches the root over TUF from the mirror and the initial root the environment names', async () => {
    const dir = await tempDir();
    const tufRoot = path.join(dir, 'tuf-root.json');
    await lab.sigstore.tufRootFile(tufRoot);
    const loaded = await loadTrustedRoot({ env: { MCP_RELEASE_TUF_MIRROR: lab.sigstore.urls.tufMirror, MCP_RELEASE_TUF_ROOT: tufRoot }, offline: false, tufCachePath: path.join(dir, 'cache') });
    expect(loaded).toMatchObject({ source: 'tuf', location: lab.sigstore.urls.tufMirror });
    // the root it got is the one that verifies the lab's signatures
    const signer = await lab.signer();
    const artifact = path.join(dir, 'a.bin');
    await writeFile(artifact, 'data');
    const bundle = path.join(dir, 'a.bin.sigstore.json');
    await writeFile(bundle, JSON.stringify((await signer.signFile(artifact)).bundle));
    await expect(verifyBundle({ bundle, artifact: { file: artifact }, identity: { exact: LAB_SAN }, issuer: lab.oidc.issuer, trustedRoot: loaded.trustedRoot })).resolves.toMatchObject({ verified: true });
  });

  it('cannot check when offline without a root, or when the root cannot be had: exit 3', async () => {
    const offline = await caught(async () => loadTrustedRoot({ env: {}, offline: true }));
    expect(offline).toMatchObject({ code: 'CANNOT_VERIFY_TRUSTED_ROOT' });
    expect(offline.hint).toMatch(/--trusted-root/);
    expect(verifyExitCode(offline)).toBe(3);
    expect(couldNotCheck(offline)).toBe(true);

    const missing = await caught(async () => loadTrustedRoot({ file: path.join(await tempDir(), 'nope.json'), env: {}, offline: true }));
    expect(missing).toMatchObject({ code: 'CANNOT_VERIFY_TRUSTED_ROOT', message: expect.stringContaining('does not exist') });

    const dir = await tempDir();
    const tufRoot = path.join(dir, 'tuf-root.json');
    await lab.sigstore.tufRootFile(tufRoot);
    const port = await closedPort();
    const unreachable = await caught(async () => loadTrustedRoot({ env: { MCP_RELEASE_TUF_MIRROR: `http://127.0.0.1:${port}`, MCP_RELEASE_TUF_ROOT: tufRoot }, offline: false, tufCachePath: path.join(dir, 'cache2') }));
    expect(unreachable).toMatchObject({ code: 'CANNOT_VERIFY_TRUSTED_ROOT', message: expect.stringContaining(`could not get the Sigstore trusted root over TUF from http://127.0.0.1:${port}`) });
    expect(verifyExitCode(unreachable)).toBe(3);
  });

  it('refuses a file that is not a usable trusted root', async () => {
    expect(await caught(async () => loadTrustedRoot({ file: await rootFile('{nope'), env: {}, offline: true }))).toMatchObject({ code: 'CANNOT_VERIFY_TRUSTED_ROOT_INVALID', message: expect.stringContaining('is not JSON') });
    expect(await caught(async () => loadTrustedRoot({ file: await rootFile({ mediaType: 'application/json' }), env: {}, offline: true }))).toMatchObject({ code: 'CANNOT_VERIFY_TRUSTED_ROOT_INVALID' });
    const empty = { ...lab.sigstore.trustedRoot, certificateAuthorities: [] };
    expect(await caught(async () => loadTrustedRoot({ file: await rootFile(empty), env: {}, offline: true }))).toMatchObject({ code: 'CANNOT_VERIFY_TRUSTED_ROOT_INVALID', message: expect.stringContaining('no certificate authority') });
  });
});
