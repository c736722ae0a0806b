import { createHash, randomBytes, randomFillSync } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { open, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGithub, type GithubLab } from '@mcp-release/lab';
import { caught, tempDir } from '../../../../../test/helpers/tmp.js';
import { createGithubReleaseClient, githubReleaseClientFromEnv, type GithubReleaseClient, type ReleaseProgress } from './client.js';
import { downloadDraft, ensureDraft, undraft, uploadAssets, type EnsureDraftInput, type ReleaseFile } from './release.js';

const OWNER = 'acme';
const COMMIT = 'c'.repeat(40);
const OTHER_COMMIT = 'd'.repeat(40);
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

let lab: GithubLab;
let repoCount = 0;

beforeAll(async () => {
  lab = await startGithub();
});
afterAll(() => lab?.stop());

interface Harness {
  repo: string;
  client: GithubReleaseClient;
  /** Pauses the retries asked for (none are waited). */
  sleeps: number[];
  events: ReleaseProgress[];
  octokit: Octokit;
}

/** A client for a fresh repository of the lab, whose retries record their pauses instead of waiting. */
function harness(on: GithubLab = lab, extra: { fetch?: typeof fetch; timeoutMs?: number } = {}): Harness {
  repoCount += 1;
  const repo = `widget-${repoCount}`;
  const sleeps: number[] = [];
  const events: ReleaseProgress[] = [];
  const client = createGithubReleaseClient({
    repository: `${OWNER}/${repo}`,
    token: on.token,
    baseUrl: on.url,
    retry: { delayMs: 10, sleep: async (ms) => void sleeps.push(ms) },
    onProgress: (e) => events.push(e),
    ...extra,
  });
  return { repo, client, sleeps, events, octokit: new Octokit({ baseUrl: on.url, auth: on.token, log: quiet }) };
}

/** Release files on disk: a few MB of random bytes, the checksum file, a script and a bundle. */
async function releaseFiles(): Promise<{ dir: string; files: ReleaseFile[]; bytes: Map<string, Buffer> }> {
  const dir = await tempDir('github-release-');
  const bytes = new Map<string, Buffer>([
    ['libvmaf.so', randomBytes(2 * 1024 * 1024 + 4321)],
    ['vmaf-mcp-1.0.0.tgz', randomBytes(70_000)],
    ['verify.sh', Buffer.from('#!/bin/sh\nsha256sum -c SHA256SUMS\n')],
    ['libvmaf.so.sigstore.json', Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}\n')],
  ]);
  bytes.set('SHA256SUMS', Buffer.from([...bytes].map(([n, b]) => `${sha256(b)}  ${n}\n`).join('')));
  const files: ReleaseFile[] = [];
  for (const [name, b] of bytes) {
    await writeFile(path.join(dir, name), b);
    files.push({ name, file: path.join(dir, name), size: b.length, sha256: sha256(b) });
  }
  return { dir, files, bytes };
}

function draftInput(files: ReleaseFile[], extra: Partial<EnsureDraftInput> = {}): EnsureDraftInput {
  return { tag: 'v1.0.0', commit: COMMIT, name: 'vmaf-mcp 1.0.0', body: 'notes', prerelease: false, expected: files.map(({ name, size, sha256: s }) => ({ name, size, sha256: s })), ...extra };
}

const releaseOf = (repo: string, id: number) => lab.state().releases.find((r) => r.repo === repo && r.id === id);
const assetPosts = (on: GithubLab = lab) => on.service.log.filter((r) => r.method === 'POST' && /\/releases\/\d+\/assets$/.test(r.path));

/** Puts other bytes under an asset's name on the draft, as a tamperer with the token could. */
async function swapAsset(h: Harness, releaseId: number, name: string, data: Buffer): Promise<void> {
  const asset = (await h.octokit.rest.repos.listReleaseAssets({ owner: OWNER, repo: h.repo, release_id: releaseId })).data.find((a) => a.name === name);
  if (asset) await h.octokit.rest.repos.deleteReleaseAsset({ owner: OWNER, repo: h.repo, asset_id: asset.id });
  const url = (await h.octokit.rest.repos.getRelease({ owner: OWNER, repo: h.repo, release_id: releaseId })).data.upload_url;
  await h.octokit.rest.repos.uploadReleaseAsset({ owner: OWNER, repo: h.repo, release_id: releaseId, url, name, data: data as unknown as string, headers: { 'content-type': 'application/octet-stream', 'content-length': data.length } });
}

async function tagAt(h: Harness, tag: string, sha: string, annotated = false): Promise<void> {
  let target = sha;
  if (annotated) target = (await h.octokit.rest.git.createTag({ owner: OWNER, repo: h.repo, tag, message: tag, object: sha, type: 'commit' })).data.sha;
  await h.octokit.rest.git.createRef({ owner: OWNER, repo: h.repo, ref: `refs/tags/${tag}`, sha: target });
}

describe('ensureDraft and uploadAssets', () => {
  it('makes a draft at the planned commit, uploads every file with its digest, and a re-run uploads nothing', async () => {
    const h = harness();
    const { files, bytes } = await releaseFiles();
    const made = await ensureDraft(h.client, draftInput(files));
    expect(made.state).toBe('created');
    expect(made.release).toMatchObject({ draft: true, tag: 'v1.0.0', targetCommitish: COMMIT, name: 'vmaf-mcp 1.0.0' });
    const before = assetPosts().length;
    const up = await uploadAssets(h.client, made.release, files);
    expect(up).toEqual({ uploaded: [...bytes.keys()].sort(), skipped: [], replaced: [], deleted: [] });
    expect(assetPosts().length - before).toBe(files.length);
    const state = releaseOf(h.repo, made.release.id);
    expect(state).toMatchObject({ draft: true, target_commitish: COMMIT, body: 'notes' });
    for (const a of state?.assets ?? []) {
      expect(a.digest, a.name).toBe(`sha256:${sha256(bytes.get(a.name) as Buffer)}`);
      expect((await readFile(a.path)).equals(bytes.get(a.name) as Buffer), a.name).toBe(true);
    }
    expect(state?.assets.find((a) => a.name === 'libvmaf.so.sigstore.json')?.content_type).toBe('application/json');
    expect(h.events.filter((e) => e.action === 'uploaded')).toHaveLength(files.length);

    const again = await ensureDraft(h.client, draftInput(files));
    expect(again).toMatchObject({ state: 'reused', release: { id: made.release.id } });
    const rerun = await uploadAssets(h.client, again.release, files);
    expect(rerun).toEqual({ uploaded: [], skipped: [...bytes.keys()].sort(), replaced: [], deleted: [] });
    expect(assetPosts().length - before).toBe(files.length);
    expect(lab.state().releases.filter((r) => r.repo === h.repo)).toHaveLength(1);
  });

  it('streams an upload with node fetch: what was sent is not kept in memory until the upload ends', async () => {
    // node's own fetch (as on a GitHub runner), against a GitHub stand-in whose upload folder is known
    const stateDir = await tempDir('github-stream-');
    const own = await startGithub({ stateDir });
    try {
      const h = harness(own);
      const file = path.join(await tempDir('github-release-'), 'libvmaf-big.so');
      const size = 64 * 1024 * 1024;
      const hash = createHash('sha256');
      const chunk = Buffer.alloc(1024 * 1024);
      const out = await open(file, 'w');
      for (let i = 0; i < size / chunk.length; i += 1) {
        randomFillSync(chunk);
        hash.update(chunk);
        await out.write(chunk);
      }
      await out.close();
      const digest = hash.digest('hex');
      const { release } = await ensureDraft(h.client, draftInput([]));

      // Once GitHub holds half of the file, only what is in flight should be in memory: after full
      // garbage collections, the buffers still alive are those something keeps (with fetch's
      // copy of the request, every byte sent so far: 32 MiB and more here).
      v8.setFlagsFromString('--expose-gc');
      const gc = runInNewContext('gc') as () => void;
      const parts = path.join(stateDir, 'github', 'assets');
      let kept: number | undefined;
      const base = process.memoryUsage().arrayBuffers;
      const sampler = setInterval(() => {
        if (kept !== undefined) return;
        for (const name of readdirSync(parts)) {
          if (!name.endsWith('.part') || (statSync(path.join(parts, name), { throwIfNoEntry: false })?.size ?? 0) < size / 2) continue;
          gc();
          gc(); // the second one finishes freeing the buffers the first found dead
          kept = process.memoryUsage().arrayBuffers - base;
        }
      }, 2);
      try {
        const up = await uploadAssets(h.client, release, [{ name: 'libvmaf-big.so', file, size, sha256: digest }]);
        expect(up.uploaded).toEqual(['libvmaf-big.so']);
      } finally {
        clearInterval(sampler);
      }
      expect(own.state().releases.find((r) => r.id === release.id)?.assets.map((a) => [a.name, a.size, a.digest])).toEqual([['libvmaf-big.so', size, `sha256:${digest}`]]);
      expect(kept, 'the upload finished before half of it was on disk; nothing was measured').toBeDefined();
      expect(kept).toBeLessThan(16 * 1024 * 1024);
    } finally {
      await own.stop();
    }
  });

  it('brings a reused draft up to date with the plan (commit, title, notes)', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const first = await ensureDraft(h.client, draftInput(files, { commit: OTHER_COMMIT, name: 'old' }));
    const second = await ensureDraft(h.client, draftInput(files, { prerelease: true }));
    expect(second.release.id).toBe(first.release.id);
    expect(releaseOf(h.repo, first.release.id)).toMatchObject({ target_commitish: COMMIT, name: 'vmaf-mcp 1.0.0', prerelease: true, draft: true });
  });

  it('stops at an asset with other bytes, naming it, and changes nothing; with replace it is replaced', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files);
    const idsBefore = releaseOf(h.repo, release.id)?.assets.map((a) => a.id);

    const changed = files.find((f) => f.name === 'vmaf-mcp-1.0.0.tgz') as ReleaseFile;
    const fresh = randomBytes(changed.size);
    await writeFile(changed.file, fresh);
    const next = files.map((f) => (f === changed ? { ...f, sha256: sha256(fresh) } : f));
    const err = await caught(() => uploadAssets(h.client, release, next));
    expect(err).toMatchObject({ code: 'RELEASE_ASSET_CONFLICT', message: expect.stringContaining('vmaf-mcp-1.0.0.tgz'), hint: expect.stringContaining('--replace') });
    expect(err.details).toEqual([expect.stringMatching(/^vmaf-mcp-1\.0\.0\.tgz: on the draft with other bytes/)]);
    expect(releaseOf(h.repo, release.id)?.assets.map((a) => a.id)).toEqual(idsBefore);

    const replaced = await uploadAssets(h.client, release, next, { replace: true });
    expect(replaced).toMatchObject({ uploaded: [], replaced: ['vmaf-mcp-1.0.0.tgz'], deleted: [] });
    expect(replaced.skipped).toHaveLength(files.length - 1);
    expect(releaseOf(h.repo, release.id)?.assets.find((a) => a.name === 'vmaf-mcp-1.0.0.tgz')?.digest).toBe(`sha256:${sha256(fresh)}`);
  });

  it('stops at an asset that is not a release file; with replace it is deleted', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files);
    await swapAsset(h, release.id, 'notes.txt', Buffer.from('who put me here?'));
    const err = await caught(() => uploadAssets(h.client, release, files));
    expect(err).toMatchObject({ code: 'RELEASE_ASSET_CONFLICT', details: ['notes.txt: on the draft but not a file of this release'] });
    expect(releaseOf(h.repo, release.id)?.assets.map((a) => a.name)).toContain('notes.txt');
    const out = await uploadAssets(h.client, release, files, { replace: true });
    expect(out).toMatchObject({ uploaded: [], replaced: [], deleted: ['notes.txt'] });
    expect(releaseOf(h.repo, release.id)?.assets.map((a) => a.name).sort()).toEqual(files.map((f) => f.name).sort());
  });

  it('refuses a file that changed on disk after it was recorded, and leaves no asset of it', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    const victim = files.find((f) => f.name === 'libvmaf.so') as ReleaseFile;
    await writeFile(victim.file, randomBytes(victim.size)); // same size, other bytes
    const err = await caught(() => uploadAssets(h.client, release, [victim]));
    expect(err).toMatchObject({ code: 'ARTIFACT_CHANGED', message: expect.stringContaining('libvmaf.so') });
    expect(releaseOf(h.repo, release.id)?.assets).toEqual([]);
    await writeFile(victim.file, 'shorter');
    expect(await caught(() => uploadAssets(h.client, release, [victim]))).toMatchObject({ code: 'ARTIFACT_CHANGED', message: expect.stringContaining('7 bytes on disk') });
    expect(releaseOf(h.repo, release.id)?.assets).toEqual([]);
  });

  it('refuses asset names GitHub cannot hold, before anything is uploaded', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    const bad = [...files, { ...(files[0] as ReleaseFile), name: 'linux/libvmaf.so' }];
    expect(await caught(() => uploadAssets(h.client, release, bad))).toMatchObject({ code: 'RELEASE_ASSET_NAME', message: expect.stringContaining('linux/libvmaf.so') });
    expect(await caught(() => uploadAssets(h.client, release, [...files, files[0] as ReleaseFile]))).toMatchObject({ code: 'RELEASE_ASSET_NAME' });
    expect(releaseOf(h.repo, release.id)?.assets).toEqual([]);
  });

  it('hashes an asset by downloading it when GitHub reports no digest', async () => {
    // an API without the digest field, as GitHub was before it reported one
    const noDigest: typeof fetch = async (input, init) => {
      const res = await fetch(input, init);
      if (!(res.headers.get('content-type') ?? '').includes('json')) return res;
      const text = (await res.text()).replace(/"digest":"sha256:[0-9a-f]{64}",?/g, '');
      return new Response(text, { status: res.status, headers: res.headers });
    };
    const h = harness(lab, { fetch: noDigest });
    const { files, bytes } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files);
    const downloads = () => releaseOf(h.repo, release.id)?.assets.map((a) => a.download_count);
    expect(downloads()).toEqual(files.map(() => 0));
    expect((await uploadAssets(h.client, release, files)).skipped).toHaveLength(files.length);
    // each asset was fetched once and hashed
    expect(downloads()).toEqual(files.map(() => 1));

    const name = 'verify.sh';
    // same size, other bytes: only the hash tells them apart
    await swapAsset(h, release.id, name, Buffer.alloc((bytes.get(name) as Buffer).length, 0x23));
    expect(await caught(() => uploadAssets(h.client, release, files))).toMatchObject({ code: 'RELEASE_ASSET_CONFLICT', details: [expect.stringMatching(/^verify\.sh: on the draft with other bytes/)] });
  });
});

describe('a release that is already published', () => {
  it('is a no-op when its assets are exactly the release files, and is never touched when they are not', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files);
    await tagAt(h, 'v1.0.0', COMMIT);
    expect((await undraft(h.client, { tag: 'v1.0.0', commit: COMMIT, prerelease: false, expected: draftInput(files).expected })).state).toBe('published');
    const published = structuredClone(releaseOf(h.repo, release.id));

    const again = await ensureDraft(h.client, draftInput(files));
    expect(again).toMatchObject({ state: 'already-published', release: { id: release.id, draft: false } });

    const other = draftInput(files);
    other.expected = other.expected.map((e) => (e.name === 'verify.sh' ? { ...e, sha256: 'f'.repeat(64) } : e));
    other.expected.push({ name: 'extra.txt', size: 1, sha256: 'e'.repeat(64) });
    const err = await caught(() => ensureDraft(h.client, other));
    expect(err).toMatchObject({ code: 'RELEASE_ALREADY_PUBLISHED', message: expect.stringContaining('2 difference(s)') });
    expect(err.details).toEqual([expect.stringMatching(/^verify\.sh: sha256/), 'extra.txt: missing on GitHub']);
    expect(await caught(() => uploadAssets(h.client, again.release, files, { replace: true }))).toMatchObject({ code: 'RELEASE_NOT_A_DRAFT' });
    expect(releaseOf(h.repo, release.id)).toEqual(published);
    expect(lab.state().releases.filter((r) => r.repo === h.repo)).toHaveLength(1);
  });
});

describe('undraft', () => {
  it('refuses while the tag is missing or names another commit, then publishes at the planned commit', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files);
    const input = { tag: 'v1.0.0', commit: COMMIT, prerelease: false, expected: draftInput(files).expected };

    expect(await caught(() => undraft(h.client, input))).toMatchObject({ code: 'RELEASE_TAG_MISSING', hint: expect.stringContaining('git push origin v1.0.0') });
    expect(releaseOf(h.repo, release.id)?.draft).toBe(true);

    await tagAt(h, 'v1.0.0', OTHER_COMMIT, true);
    const moved = await caught(() => undraft(h.client, input));
    expect(moved).toMatchObject({ code: 'RELEASE_TAG_MISMATCH', message: expect.stringContaining(`commit ${OTHER_COMMIT}`) });
    expect(releaseOf(h.repo, release.id)?.draft).toBe(true);
    expect(await caught(() => undraft(h.client, { ...input, releaseId: release.id + 1000 }))).toMatchObject({ code: 'RELEASE_DRAFT_CHANGED' });

    // an annotated tag is peeled to its commit
    await h.octokit.rest.git.deleteRef({ owner: OWNER, repo: h.repo, ref: 'tags/v1.0.0' });
    await tagAt(h, 'v1.0.0', COMMIT, true);
    const out = await undraft(h.client, { ...input, releaseId: release.id });
    expect(out).toMatchObject({ state: 'published', release: { id: release.id, draft: false, prerelease: false } });
    expect(releaseOf(h.repo, release.id)).toMatchObject({ draft: false, make_latest: 'legacy' });
    expect((await h.octokit.rest.repos.getLatestRelease({ owner: OWNER, repo: h.repo })).data.id).toBe(release.id);
    expect((await undraft(h.client, input)).state).toBe('already-published');
  });

  it('refuses a draft that lacks a release file or holds another one', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files.slice(1));
    await tagAt(h, 'v1.0.0', COMMIT);
    const err = await caught(() => undraft(h.client, { tag: 'v1.0.0', commit: COMMIT, prerelease: false, expected: draftInput(files).expected }));
    expect(err).toMatchObject({ code: 'RELEASE_DRAFT_INCOMPLETE', details: [`${files[0]?.name}: missing on GitHub`] });
    expect(releaseOf(h.repo, release.id)?.draft).toBe(true);
    expect(await caught(() => undraft(harness().client, { tag: 'v1.0.0', commit: COMMIT, prerelease: false, expected: [] }))).toMatchObject({ code: 'RELEASE_DRAFT_MISSING' });
  });

  it('publishes a prerelease without making it the latest release', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files, { tag: 'v2.0.0-rc.1', prerelease: true }));
    await uploadAssets(h.client, release, files);
    await tagAt(h, 'v2.0.0-rc.1', COMMIT);
    await undraft(h.client, { tag: 'v2.0.0-rc.1', commit: COMMIT, prerelease: true, expected: draftInput(files).expected });
    expect(releaseOf(h.repo, release.id)).toMatchObject({ draft: false, prerelease: true, make_latest: 'false' });
    expect((await caught(() => h.octokit.rest.repos.getLatestRelease({ owner: OWNER, repo: h.repo })) as { status?: number }).status).toBe(404);
  });
});

describe('downloadDraft', () => {
  it('gets every asset of a draft byte-identical, through the API with the token, into an empty folder only', async () => {
    const h = harness();
    const { files, bytes } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files);
    const dir = path.join(await tempDir(), 'draft');
    const got = await downloadDraft(h.client, release.id, dir);
    expect(got.assets.map((a) => a.name).sort()).toEqual([...bytes.keys()].sort());
    expect((await readdir(dir)).sort()).toEqual([...bytes.keys()].sort());
    for (const [name, b] of bytes) {
      expect((await readFile(path.join(dir, name))).equals(b), name).toBe(true);
      expect(got.assets.find((a) => a.name === name)?.sha256).toBe(sha256(b));
    }
    expect(await caught(() => downloadDraft(h.client, release.id, dir))).toMatchObject({ code: 'RELEASE_DOWNLOAD_FOLDER_NOT_EMPTY' });
    // without the token the draft is not there
    const anonymous = createGithubReleaseClient({ repository: `${OWNER}/${h.repo}`, token: 'not-the-token', baseUrl: lab.url, retry: { sleep: async () => undefined } });
    const elsewhere = path.join(await tempDir(), 'x');
    expect(await caught(() => downloadDraft(anonymous, release.id, elsewhere))).toMatchObject({ code: 'GITHUB_API_FAILED', message: expect.stringContaining('HTTP 401'), hint: expect.stringContaining('GITHUB_TOKEN') });
  });
});

describe('under chaos', () => {
  it('retries an upload answered 500 once, and a listing answered 502 once, with growing pauses', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    lab.service.chaos.add({ route: `/repos/${OWNER}/${h.repo}/releases/\\d+/assets$`, method: 'POST', count: 1, fault: { kind: 'status', status: 500 } });
    lab.service.chaos.add({ route: `/repos/${OWNER}/${h.repo}/releases/\\d+/assets$`, method: 'GET', count: 1, fault: { kind: 'status', status: 502 } });
    const out = await uploadAssets(h.client, release, files, { concurrency: 1 });
    expect(out.uploaded).toHaveLength(files.length);
    expect(lab.service.chaos.pending()).toEqual([]);
    expect(h.sleeps).toEqual([10, 10]);
    expect(h.events.filter((e) => e.action === 'retrying').map((e) => e.message)).toEqual([expect.stringContaining('HTTP 502'), expect.stringContaining('HTTP 500')]);
    expect(releaseOf(h.repo, release.id)?.assets.map((a) => a.name).sort()).toEqual(files.map((f) => f.name).sort());
  });

  it('retries a connection reset during an upload, and a download answered 503', async () => {
    const h = harness();
    const { files, bytes } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    lab.service.chaos.add({ route: `/repos/${OWNER}/${h.repo}/releases/\\d+/assets$`, method: 'POST', count: 1, fault: { kind: 'reset' } });
    await uploadAssets(h.client, release, files, { concurrency: 1 });
    expect(h.sleeps).toEqual([10]);
    lab.service.chaos.add({ route: `/repos/${OWNER}/${h.repo}/releases/assets/\\d+$`, method: 'GET', count: 1, fault: { kind: 'status', status: 503 } });
    const dir = path.join(await tempDir(), 'draft');
    await downloadDraft(h.client, release.id, dir);
    expect(h.sleeps).toEqual([10, 10]);
    for (const [name, b] of bytes) expect((await readFile(path.join(dir, name))).equals(b), name).toBe(true);
  });

  it('never retries 404 or 422, and gives up after the bounded retries', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    const upload = `/repos/${OWNER}/${h.repo}/releases/\\d+/assets$`;
    lab.service.chaos.add({ route: upload, method: 'POST', count: 1, fault: { kind: 'status', status: 404, body: '{"message":"Not Found"}', headers: { 'content-type': 'application/json' } } });
    const notFound = await caught(() => uploadAssets(h.client, release, files.slice(0, 1)));
    expect(notFound).toMatchObject({ code: 'GITHUB_API_FAILED', message: expect.stringContaining('HTTP 404'), hint: expect.stringContaining(`${OWNER}/${h.repo}`) });
    lab.service.chaos.add({ route: upload, method: 'POST', count: 1, fault: { kind: 'status', status: 422, body: '{"message":"Validation Failed","errors":[{"code":"invalid"}]}', headers: { 'content-type': 'application/json' } } });
    const invalid = await caught(() => uploadAssets(h.client, release, files.slice(0, 1)));
    expect(invalid).toMatchObject({ code: 'GITHUB_API_FAILED', message: expect.stringContaining('HTTP 422 Validation Failed'), details: ['{"code":"invalid"}'] });
    expect(h.sleeps).toEqual([]);
    expect(releaseOf(h.repo, release.id)?.assets).toEqual([]);

    lab.service.chaos.add({ route: `/repos/${OWNER}/${h.repo}/releases$`, method: 'POST', count: 1, fault: { kind: 'status', status: 422 } });
    expect(await caught(() => ensureDraft(h.client, draftInput(files, { tag: 'v9.9.9' })))).toMatchObject({ code: 'GITHUB_API_FAILED', message: expect.stringContaining('HTTP 422') });
    expect(h.sleeps).toEqual([]);

    lab.service.chaos.add({ route: upload, method: 'POST', count: 4, fault: { kind: 'status', status: 503 } });
    expect(await caught(() => uploadAssets(h.client, release, files.slice(0, 1)))).toMatchObject({ code: 'GITHUB_API_FAILED', message: expect.stringContaining('HTTP 503') });
    expect(h.sleeps).toEqual([10, 20, 40]);
    expect(lab.service.chaos.pending()).toEqual([]);
    expect(releaseOf(h.repo, release.id)?.assets).toEqual([]);
  });

  it('gives up on a call that hangs after the time limit, and retries it', async () => {
    const h = harness(lab, { timeoutMs: 300 });
    lab.service.chaos.add({ route: `/repos/${OWNER}/${h.repo}/releases$`, method: 'GET', count: 1, fault: { kind: 'timeout' } });
    const made = await ensureDraft(h.client, draftInput([]));
    expect(made.state).toBe('created');
    expect(h.sleeps).toEqual([10]);
    expect(h.events.find((e) => e.action === 'retrying')?.message).toMatch(/list the releases .* failed/);
  });

  it('makes one draft when the create answer is lost and the create is retried', async () => {
    const h = harness();
    const { files } = await releaseFiles();
    // the first create fails on the way out; the second attempt looks for a draft before making one
    lab.service.chaos.add({ route: `/repos/${OWNER}/${h.repo}/releases$`, method: 'POST', count: 1, fault: { kind: 'status', status: 500 } });
    const made = await ensureDraft(h.client, draftInput(files));
    expect(made.state).toBe('created');
    expect(h.sleeps).toEqual([10]);
    expect(lab.state().releases.filter((r) => r.repo === h.repo)).toHaveLength(1);
  });
});

describe('immutable releases', () => {
  let immutable: GithubLab;
  beforeAll(async () => {
    immutable = await startGithub({ immutableReleases: true });
  });
  afterAll(() => immutable?.stop());

  it('takes every asset while a draft, publishes it immutable, and a re-run is a no-op', async () => {
    const h = harness(immutable);
    const { files } = await releaseFiles();
    const { release } = await ensureDraft(h.client, draftInput(files));
    await uploadAssets(h.client, release, files);
    await tagAt(h, 'v1.0.0', COMMIT);
    const out = await undraft(h.client, { tag: 'v1.0.0', commit: COMMIT, prerelease: false, expected: draftInput(files).expected, releaseId: release.id });
    expect(out).toMatchObject({ state: 'published', release: { immutable: true, draft: false } });
    const rel = immutable.state().releases.find((r) => r.id === release.id);
    expect(rel?.assets.map((a) => a.name).sort()).toEqual(files.map((f) => f.name).sort());
    expect((await ensureDraft(h.client, draftInput(files))).state).toBe('already-published');
    expect((await undraft(h.client, { tag: 'v1.0.0', commit: COMMIT, prerelease: false, expected: draftInput(files).expected })).state).toBe('already-published');
    expect(await caught(() => uploadAssets(h.client, out.release, files, { replace: true }))).toMatchObject({ code: 'RELEASE_NOT_A_DRAFT' });
  });
});

describe('the client from the environment', () => {
  it('talks to the GitHub stand-in over TLS with the CA the environment names, and not without it', async () => {
    const tls = await startGithub({ tls: true });
    try {
      const caFile = tls.caFile as string;
      const env = { GITHUB_API_URL: tls.url, GITHUB_TOKEN: tls.token, NODE_EXTRA_CA_CERTS: caFile };
      const client = await githubReleaseClientFromEnv(env, `${OWNER}/tls`, { retry: { sleep: async () => undefined } });
      const { files, bytes } = await releaseFiles();
      const { release } = await ensureDraft(client, draftInput(files));
      expect(release.url).toMatch(/^https:\/\/localhost:\d+\//);
      expect((await uploadAssets(client, release, files)).uploaded).toHaveLength(files.length);
      const dir = path.join(await tempDir(), 'draft');
      await downloadDraft(client, release.id, dir);
      for (const [name, b] of bytes) expect((await readFile(path.join(dir, name))).equals(b), name).toBe(true);

      const untrusting = await githubReleaseClientFromEnv({ GITHUB_API_URL: tls.url, GITHUB_TOKEN: tls.token }, `${OWNER}/tls`, { retry: { sleep: async () => undefined } });
      const before = tls.service.log.length;
      const err = await caught(() => ensureDraft(untrusting, draftInput(files)));
      expect(err).toMatchObject({ code: 'GITHUB_API_FAILED', hint: expect.stringContaining('NODE_EXTRA_CA_CERTS') });
      expect(tls.service.log.length).toBe(before); // refused at the handshake, and not retried

      expect(await caught(() => githubReleaseClientFromEnv({ ...env, NODE_EXTRA_CA_CERTS: path.join(path.dirname(caFile), 'missing.pem') }, `${OWNER}/tls`))).toMatchObject({ code: 'GITHUB_CA_UNREADABLE' });
    } finally {
      await tls.stop();
    }
  });

  it('names what is missing: the token, a usable repository', async () => {
    expect(await caught(() => githubReleaseClientFromEnv({ GITHUB_API_URL: lab.url }, `${OWNER}/x`))).toMatchObject({ code: 'GITHUB_TOKEN_MISSING', hint: expect.stringContaining('contents: write') });
    expect(await caught(() => githubReleaseClientFromEnv({ GITHUB_TOKEN: 't' }, 'not a repository'))).toMatchObject({ code: 'GITHUB_REPOSITORY_INVALID' });
    const wrongToken = createGithubReleaseClient({ repository: `${OWNER}/x`, token: 'wrong', baseUrl: lab.url });
    expect(await caught(() => ensureDraft(wrongToken, draftInput([])))).toMatchObject({ code: 'GITHUB_API_FAILED', message: expect.stringContaining('HTTP 401 Bad credentials') });
  });
});
