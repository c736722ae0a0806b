import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { Octokit } from '@octokit/rest';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGithub, type GithubLab } from './index.js';

const run = promisify(execFile);
const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
const owner = 'acme';
const repo = 'widget';

function onPath(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, cmd);
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

const sha256 = (b: Buffer | Uint8Array): string => createHash('sha256').update(b).digest('hex');

function octokitFor(lab: GithubLab, auth: string | undefined = lab.token): Octokit {
  return new Octokit({ baseUrl: lab.url, log: quiet, ...(auth ? { auth } : {}) });
}

/** Fixture files: a few MB of random bytes, every byte value, text, and an empty file. */
function fixtures(): Record<string, Buffer> {
  return {
    'widget-linux-x64.tar.gz': randomBytes(3 * 1024 * 1024 + 12_345),
    'bytes.bin': Buffer.from(Array.from({ length: 4096 }, (_v, i) => i % 256)),
    'SHA256SUMS.txt': Buffer.from('0000  widget-linux-x64.tar.gz\n'),
    'empty.txt': Buffer.alloc(0),
  };
}

interface ReleaseLike {
  id: number;
  upload_url: string;
}

function upload(o: Octokit, rel: ReleaseLike, name: string, data: Buffer, extra: { label?: string; signal?: AbortSignal } = {}) {
  return o.rest.repos.uploadReleaseAsset({
    owner,
    repo,
    release_id: rel.id,
    url: rel.upload_url,
    name,
    ...(extra.label ? { label: extra.label } : {}),
    data: data as unknown as string,
    headers: { 'content-type': 'application/octet-stream', 'content-length': data.length },
    ...(extra.signal ? { request: { signal: extra.signal } } : {}),
  });
}

async function statusOf(p: Promise<unknown>): Promise<{ status: number; data: Record<string, unknown> }> {
  try {
    await p;
  } catch (err) {
    const e = err as { status?: number; response?: { data?: unknown } };
    return { status: e.status ?? -1, data: (e.response?.data ?? {}) as Record<string, unknown> };
  }
  throw new Error('expected the request to fail');
}

/** A small HTTPS client that trusts the lab CA (node's fetch reads extra CAs only at start-up). */
function tlsFetch(url: string, ca: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: init.method ?? 'GET', headers: init.headers ?? {}, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

describe('GitHub stand-in with octokit (HTTP)', () => {
  let lab: GithubLab;
  let o: Octokit;
  beforeAll(async () => {
    lab = await startGithub();
    o = octokitFor(lab);
  });
  afterAll(() => lab.stop());

  it('creates a draft, takes assets, refuses a duplicate name, publishes, and serves every byte back', async () => {
    const files = fixtures();
    const created = await o.rest.repos.createRelease({ owner, repo, tag_name: 'v1.0.0', name: 'Widget 1.0.0', body: 'notes', draft: true, target_commitish: 'main' });
    expect(created.status).toBe(201);
    const rel = created.data;
    expect(rel).toMatchObject({ tag_name: 'v1.0.0', draft: true, prerelease: false, published_at: null, immutable: false, name: 'Widget 1.0.0', body: 'notes' });
    expect(rel.upload_url).toBe(`${lab.url}/repos/${owner}/${repo}/releases/${rel.id}/assets{?name,label}`);
    expect(rel.html_url).toMatch(/\/releases\/tag\/untagged-[0-9a-f]+$/);

    for (const [name, data] of Object.entries(files)) {
      const up = await upload(o, rel, name, data, { label: name === 'bytes.bin' ? 'All byte values' : undefined });
      expect(up.status).toBe(201);
      expect(up.data).toMatchObject({ name, size: data.length, state: 'uploaded', content_type: 'application/octet-stream', download_count: 0 });
      expect((up.data as { digest?: string }).digest).toBe(`sha256:${sha256(data)}`);
    }
    const dup = await statusOf(upload(o, rel, 'widget-linux-x64.tar.gz', Buffer.from('other bytes')));
    expect(dup.status).toBe(422);
    expect(dup.data).toMatchObject({ message: 'Validation Failed', errors: [{ resource: 'ReleaseAsset', code: 'already_exists', field: 'name' }] });

    // drafts: listed for the token holder, hidden from anonymous callers and from get-by-tag
    expect((await o.rest.repos.listReleases({ owner, repo })).data.map((r) => r.id)).toContain(rel.id);
    expect((await octokitFor(lab, '').rest.repos.listReleases({ owner, repo })).data).toEqual([]);
    expect((await statusOf(o.rest.repos.getReleaseByTag({ owner, repo, tag: 'v1.0.0' }))).status).toBe(404);
    expect((await statusOf(o.rest.git.getRef({ owner, repo, ref: 'tags/v1.0.0' }))).status).toBe(404);
    expect((await o.rest.repos.getRelease({ owner, repo, release_id: rel.id })).data.assets).toHaveLength(4);

    const published = await o.rest.repos.updateRelease({ owner, repo, release_id: rel.id, draft: false });
    expect(published.data.draft).toBe(false);
    expect(published.data.published_at).toBeTypeOf('string');
    expect(published.data.html_url).toBe(`${lab.url}/${owner}/${repo}/releases/tag/v1.0.0`);
    const tagRef = await o.rest.git.getRef({ owner, repo, ref: 'tags/v1.0.0' });
    expect(tagRef.data.object.sha).toMatch(/^[0-9a-f]{40}$/);
    expect((await o.rest.repos.getLatestRelease({ owner, repo })).data.id).toBe(rel.id);

    const again = await statusOf(o.rest.repos.createRelease({ owner, repo, tag_name: 'v1.0.0' }));
    expect(again.status).toBe(422);
    expect(again.data).toMatchObject({ message: 'Validation Failed', errors: [{ resource: 'Release', code: 'already_exists', field: 'tag_name' }] });

    const byTag = await o.rest.repos.getReleaseByTag({ owner, repo, tag: 'v1.0.0' });
    expect(byTag.data.assets.map((a) => a.name).sort()).toEqual(Object.keys(files).sort());
    const ghe = new Octokit({ baseUrl: `${lab.url}/api/v3`, auth: lab.token, log: quiet });
    for (const asset of byTag.data.assets) {
      const want = files[asset.name] as Buffer;
      expect(asset.browser_download_url).toBe(`${lab.url}/${owner}/${repo}/releases/download/v1.0.0/${asset.name}`);
      for (const client of [o, ghe]) {
        const got = await client.rest.repos.getReleaseAsset({ owner, repo, asset_id: asset.id, headers: { accept: 'application/octet-stream' } });
        expect(Buffer.from(got.data as unknown as ArrayBuffer).equals(want), asset.name).toBe(true);
      }
      const web = await fetch(asset.browser_download_url);
      expect(web.status).toBe(200);
      expect(Buffer.from(await web.arrayBuffer()).equals(want), asset.name).toBe(true);
      const json = await o.rest.repos.getReleaseAsset({ owner, repo, asset_id: asset.id });
      expect(json.data).toMatchObject({ id: asset.id, name: asset.name, size: want.length, download_count: 3 });
    }

    const state = lab.state().releases.find((r) => r.id === rel.id);
    expect(state).toMatchObject({ tag_name: 'v1.0.0', draft: false });
    for (const a of state?.assets ?? []) {
      const want = files[a.name] as Buffer;
      expect(a.digest).toBe(`sha256:${sha256(want)}`);
      expect((await readFile(a.path)).equals(want)).toBe(true);
    }
    expect(lab.state().refs).toContainEqual({ owner, repo, ref: 'refs/tags/v1.0.0', sha: tagRef.data.object.sha });
  });

  it('streams an upload of unknown length to disk, and deletes assets and releases', async () => {
    const rel = (await o.rest.repos.createRelease({ owner, repo: 'streamed', tag_name: 'v0.1.0', draft: true })).data;
    const chunk = randomBytes(256 * 1024);
    const hash = createHash('sha256');
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent === 32) return controller.close();
        hash.update(chunk);
        controller.enqueue(chunk);
        sent += 1;
      },
    });
    const res = await fetch(`${lab.url}/repos/${owner}/streamed/releases/${rel.id}/assets?name=big.bin`, {
      method: 'POST',
      headers: { authorization: `Bearer ${lab.token}`, 'content-type': 'application/zip' },
      body,
      duplex: 'half',
    } as RequestInit);
    expect(res.status).toBe(201);
    const asset = (await res.json()) as { id: number; size: number; digest: string; content_type: string; label: string };
    expect(asset).toMatchObject({ size: 32 * chunk.length, digest: `sha256:${hash.digest('hex')}`, content_type: 'application/zip', label: '' });

    const listed = await o.rest.repos.listReleaseAssets({ owner, repo: 'streamed', release_id: rel.id });
    expect(listed.data.map((a) => a.id)).toEqual([asset.id]);
    const file = lab.state().releases.find((r) => r.id === rel.id)?.assets[0]?.path as string;
    expect(existsSync(file)).toBe(true);
    expect((await o.rest.repos.deleteReleaseAsset({ owner, repo: 'streamed', asset_id: asset.id })).status).toBe(204);
    expect(existsSync(file)).toBe(false);
    expect((await statusOf(o.rest.repos.getReleaseAsset({ owner, repo: 'streamed', asset_id: asset.id }))).status).toBe(404);
    expect((await o.rest.repos.deleteRelease({ owner, repo: 'streamed', release_id: rel.id })).status).toBe(204);
    expect((await statusOf(o.rest.repos.getRelease({ owner, repo: 'streamed', release_id: rel.id }))).status).toBe(404);
  });

  it('pages release lists with a Link header, as octokit.paginate expects', async () => {
    for (const tag of ['p1', 'p2', 'p3', 'p4', 'p5']) await o.rest.repos.createRelease({ owner, repo: 'paged', tag_name: tag });
    const first = await o.rest.repos.listReleases({ owner, repo: 'paged', per_page: 2 });
    expect(first.data).toHaveLength(2);
    expect(first.headers.link).toMatch(/rel="next"/);
    const all = await o.paginate(o.rest.repos.listReleases, { owner, repo: 'paged', per_page: 2 });
    expect(all.map((r) => r.tag_name)).toEqual(['p5', 'p4', 'p3', 'p2', 'p1']);
  });

  it('creates refs and annotated tag objects whose sha is the one git computes', async () => {
    const git = onPath('git');
    const date = '2024-05-01T12:00:00+02:00';
    let commit = 'a'.repeat(40);
    let gitTagSha: string | undefined;
    if (git) {
      const dir = await mkdtemp(path.join(tmpdir(), 'github-lab-git-'));
      const env = { PATH: process.env.PATH ?? '', HOME: dir, GIT_AUTHOR_NAME: 'Release Lab', GIT_AUTHOR_EMAIL: 'lab@example.invalid', GIT_COMMITTER_NAME: 'Release Lab', GIT_COMMITTER_EMAIL: 'lab@example.invalid', GIT_AUTHOR_DATE: date, GIT_COMMITTER_DATE: date };
      try {
        await run(git, ['init', '-q', dir], { env });
        await run(git, ['-C', dir, 'commit', '-q', '--allow-empty', '-m', 'first'], { env });
        await run(git, ['-C', dir, 'tag', '-a', 'v2.0.0', '-m', 'Widget 2.0.0'], { env });
        commit = (await run(git, ['-C', dir, 'rev-parse', 'HEAD'], { env })).stdout.trim();
        gitTagSha = (await run(git, ['-C', dir, 'rev-parse', 'v2.0.0'], { env })).stdout.trim();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    }
    const tag = await o.rest.git.createTag({ owner, repo, tag: 'v2.0.0', message: 'Widget 2.0.0', object: commit, type: 'commit', tagger: { name: 'Release Lab', email: 'lab@example.invalid', date } });
    expect(tag.status).toBe(201);
    expect(tag.data).toMatchObject({ tag: 'v2.0.0', message: 'Widget 2.0.0\n', object: { sha: commit, type: 'commit' }, verification: { verified: false } });
    if (gitTagSha) expect(tag.data.sha).toBe(gitTagSha);
    expect((await o.rest.git.getTag({ owner, repo, tag_sha: tag.data.sha })).data.sha).toBe(tag.data.sha);

    const ref = await o.rest.git.createRef({ owner, repo, ref: 'refs/tags/v2.0.0', sha: tag.data.sha });
    expect(ref.status).toBe(201);
    expect(ref.data).toMatchObject({ ref: 'refs/tags/v2.0.0', object: { sha: tag.data.sha, type: 'tag' } });
    const dup = await statusOf(o.rest.git.createRef({ owner, repo, ref: 'refs/tags/v2.0.0', sha: commit }));
    expect(dup).toMatchObject({ status: 422, data: { message: 'Reference already exists' } });
    expect((await o.rest.git.getRef({ owner, repo, ref: 'tags/v2.0.0' })).data.object.sha).toBe(tag.data.sha);
    expect((await o.request('GET /repos/{owner}/{repo}/git/refs/{ref}', { owner, repo, ref: 'tags/v2.0.0' })).data).toMatchObject({ ref: 'refs/tags/v2.0.0' });
    expect((await o.rest.git.listMatchingRefs({ owner, repo, ref: 'tags/v2' })).data.map((r) => r.ref)).toEqual(['refs/tags/v2.0.0']);

    await o.rest.git.createRef({ owner, repo, ref: 'refs/heads/main', sha: commit });
    expect((await o.rest.git.updateRef({ owner, repo, ref: 'heads/main', sha: 'b'.repeat(40), force: true })).data.object.sha).toBe('b'.repeat(40));
    // a release published from a branch the lab knows is tagged at that branch's commit
    await o.rest.repos.createRelease({ owner, repo, tag_name: 'v2.1.0', target_commitish: 'main' });
    expect((await o.rest.git.getRef({ owner, repo, ref: 'tags/v2.1.0' })).data.object.sha).toBe('b'.repeat(40));

    expect((await o.rest.git.deleteRef({ owner, repo, ref: 'tags/v2.0.0' })).status).toBe(204);
    expect((await statusOf(o.rest.git.getRef({ owner, repo, ref: 'tags/v2.0.0' }))).status).toBe(404);
    expect(await statusOf(o.rest.git.deleteRef({ owner, repo, ref: 'tags/v2.0.0' }))).toMatchObject({ status: 422, data: { message: 'Reference does not exist' } });
  });

  it('answers 404, 401 and 422 in GitHub shapes, and sends rate-limit headers', async () => {
    const missing = await statusOf(o.rest.repos.getRelease({ owner, repo, release_id: 999_999 }));
    expect(missing.status).toBe(404);
    expect(missing.data).toMatchObject({ message: 'Not Found', documentation_url: expect.stringMatching(/^https:\/\/docs\.github\.com\//) });
    expect((await statusOf(o.request('GET /repos/{owner}/{repo}/pulls', { owner, repo }))).status).toBe(404);

    const bad = await statusOf(octokitFor(lab, 'not-the-token').rest.repos.listReleases({ owner, repo }));
    expect(bad).toMatchObject({ status: 401, data: { message: 'Bad credentials' } });
    const anonymousWrite = await statusOf(octokitFor(lab, '').rest.repos.createRelease({ owner, repo, tag_name: 'v9' }));
    expect(anonymousWrite).toMatchObject({ status: 401, data: { message: 'Requires authentication' } });
    for (const scheme of ['token', 'Bearer']) {
      expect((await fetch(`${lab.url}/repos/${owner}/${repo}/releases`, { headers: { authorization: `${scheme} ${lab.token}` } })).status).toBe(200);
    }
    const invalid = await statusOf(o.rest.repos.createRelease({ owner, repo, tag_name: 'v3', draft: 'yes' as unknown as boolean }));
    expect(invalid.status).toBe(422);
    expect((await statusOf(o.rest.repos.createRelease({ owner, repo, tag_name: 'bad tag' }))).status).toBe(422);

    const first = await o.rest.repos.listReleases({ owner, repo });
    const second = await o.rest.repos.listReleases({ owner, repo });
    for (const h of ['x-ratelimit-limit', 'x-ratelimit-remaining', 'x-ratelimit-reset', 'x-ratelimit-used', 'x-ratelimit-resource']) expect(first.headers[h], h).toBeDefined();
    expect(first.headers['x-ratelimit-limit']).toBe('5000');
    expect(first.headers['x-ratelimit-resource']).toBe('core');
    expect(Number(second.headers['x-ratelimit-remaining'])).toBe(Number(first.headers['x-ratelimit-remaining']) - 1);
    expect(Number(second.headers['x-ratelimit-used'])).toBe(Number(first.headers['x-ratelimit-used']) + 1);
    expect(Number(first.headers['x-ratelimit-reset'])).toBeGreaterThan(Date.now() / 1000);
    const anon = await fetch(`${lab.url}/repos/${owner}/${repo}/releases`);
    expect(anon.headers.get('x-ratelimit-limit')).toBe('60');

    for (const p of ['/no/such/thing', '/api/v3/no/such/thing']) {
      const res = await fetch(`${lab.url}${p}`, { method: 'POST', headers: { authorization: `token ${lab.token}` }, body: '{}' });
      expect(res.status).toBe(404);
      expect(res.headers.get('x-ratelimit-remaining')).not.toBeNull();
      expect(await res.json()).toMatchObject({ message: 'Not Found' });
    }
  });

  it('answers the one GraphQL query gh sends, and only that one', async () => {
    const ask = (query: string, variables: Record<string, string>, auth = `bearer ${lab.token}`) =>
      fetch(`${lab.url}/api/graphql`, { method: 'POST', headers: { authorization: auth, 'content-type': 'application/json' }, body: JSON.stringify({ query, variables }) });
    const query = 'query RepositoryReleaseByTag($name:String!$owner:String!$tagName:String!){repository(owner: $owner, name: $name){release(tagName: $tagName){databaseId,isDraft}}}';
    const draft = (await octokitFor(lab).rest.repos.createRelease({ owner, repo: 'gql', tag_name: 'v5.0.0', draft: true })).data;
    const res = await ask(query, { owner, name: 'gql', tagName: 'v5.0.0' });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-ratelimit-resource')).toBe('graphql');
    expect(await res.json()).toEqual({ data: { repository: { release: { databaseId: draft.id, isDraft: true } } } });
    expect(await (await ask(query, { owner, name: 'gql', tagName: 'v0' })).json()).toEqual({ data: { repository: { release: null } } });
    expect((await ask(query, { owner, name: 'gql', tagName: 'v5.0.0' }, '')).status).toBe(401);
    const other = (await (await ask('{ viewer { login } }', {})).json()) as { errors?: unknown[] };
    expect(other.errors).toHaveLength(1);
    expect(() => lab.ghEnv()).toThrow(/tls/i);
  });
});

describe('GitHub stand-in in immutable-release mode', () => {
  let lab: GithubLab;
  beforeAll(async () => {
    lab = await startGithub({ immutableReleases: true });
  });
  afterAll(() => lab.stop());

  it('takes assets while a draft, then refuses asset and tag changes once published', async () => {
    const o = octokitFor(lab);
    const rel = (await o.rest.repos.createRelease({ owner, repo, tag_name: 'v1.0.0', draft: true })).data;
    const first = await upload(o, rel, 'a.txt', Buffer.from('a'));
    expect(first.status).toBe(201);
    const published = await o.rest.repos.updateRelease({ owner, repo, release_id: rel.id, draft: false });
    expect(published.data).toMatchObject({ draft: false, immutable: true });

    const refused = await statusOf(upload(o, rel, 'b.txt', Buffer.from('b')));
    expect(refused.status).toBe(422);
    expect(refused.data.message).toMatch(/immutable/);
    expect((await statusOf(o.rest.repos.deleteReleaseAsset({ owner, repo, asset_id: first.data.id }))).status).toBe(422);
    expect((await statusOf(o.rest.repos.updateReleaseAsset({ owner, repo, asset_id: first.data.id, name: 'c.txt' }))).status).toBe(422);
    expect((await statusOf(o.rest.repos.updateRelease({ owner, repo, release_id: rel.id, draft: true }))).status).toBe(422);
    expect((await statusOf(o.rest.git.deleteRef({ owner, repo, ref: 'tags/v1.0.0' }))).status).toBe(422);
    // the notes stay editable
    expect((await o.rest.repos.updateRelease({ owner, repo, release_id: rel.id, body: 'edited' })).data.body).toBe('edited');
    expect(lab.state().releases[0]?.assets.map((a) => a.name)).toEqual(['a.txt']);
  });
});

describe('GitHub stand-in under chaos', () => {
  let lab: GithubLab;
  beforeAll(async () => {
    lab = await startGithub();
  });
  afterAll(() => lab.stop());

  it('each fault kind reaches octokit on release create and on asset upload, and leaves no partial state', async () => {
    const o = octokitFor(lab);
    const create = (tag: string, signal?: AbortSignal) => o.rest.repos.createRelease({ owner, repo, tag_name: tag, draft: true, ...(signal ? { request: { signal } } : {}) });
    const createRoute = '/repos/[^/]+/[^/]+/releases$';

    lab.service.chaos.add({ route: createRoute, method: 'POST', count: 1, fault: { kind: 'status', status: 503 } });
    expect((await statusOf(create('v1'))).status).toBe(503);
    lab.service.chaos.add({ route: createRoute, method: 'POST', count: 1, fault: { kind: 'status', status: 403, body: '{"message":"Resource not accessible by integration"}' } });
    expect(await statusOf(create('v1'))).toMatchObject({ status: 403, data: { message: 'Resource not accessible by integration' } });
    lab.service.chaos.add({ route: createRoute, method: 'POST', count: 1, fault: { kind: 'reset' } });
    await expect(create('v1')).rejects.toThrow();
    lab.service.chaos.add({ route: createRoute, method: 'POST', count: 1, fault: { kind: 'timeout' } });
    await expect(create('v1', AbortSignal.timeout(300))).rejects.toThrow(/abort|timeout/i);
    expect(lab.state().releases).toEqual([]);

    const rel = (await create('v1')).data;
    const uploadRoute = '/releases/\\d+/assets$';
    const data = randomBytes(64 * 1024);
    lab.service.chaos.add({ route: uploadRoute, method: 'POST', count: 1, fault: { kind: 'status', status: 502 } });
    expect((await statusOf(upload(o, rel, 'x.bin', data))).status).toBe(502);
    lab.service.chaos.add({ route: uploadRoute, method: 'POST', count: 1, fault: { kind: 'status', status: 400 } });
    expect((await statusOf(upload(o, rel, 'x.bin', data))).status).toBe(400);
    lab.service.chaos.add({ route: uploadRoute, method: 'POST', count: 1, fault: { kind: 'reset' } });
    await expect(upload(o, rel, 'x.bin', data)).rejects.toThrow();
    lab.service.chaos.add({ route: uploadRoute, method: 'POST', count: 1, fault: { kind: 'timeout' } });
    await expect(upload(o, rel, 'x.bin', data, { signal: AbortSignal.timeout(300) })).rejects.toThrow(/abort|timeout/i);
    expect(lab.state().releases[0]?.assets).toEqual([]);

    // a retry after the faults goes through, and the faults are in the request log
    const ok = await upload(o, rel, 'x.bin', data);
    expect(ok.data.size).toBe(data.length);
    expect(lab.service.log.filter((r) => r.fault).map((r) => r.status)).toEqual([503, 403, 'reset', 'timeout', 502, 400, 'reset', 'timeout']);
    expect(lab.service.chaos.pending()).toEqual([]);
  });
});

const gh = onPath('gh');

describe('gh against the stand-in over TLS', () => {
  let lab: GithubLab;
  const files = fixtures();
  let work: string;
  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'github-lab-gh-'));
    lab = await startGithub({ tls: true });
    const ca = await readFile(lab.caFile as string, 'utf8');
    const headers = { authorization: `token ${lab.token}`, 'content-type': 'application/json' };
    const created = await tlsFetch(`${lab.url}/repos/${owner}/${repo}/releases`, ca, { method: 'POST', headers, body: Buffer.from(JSON.stringify({ tag_name: 'v3.0.0', draft: true })) });
    expect(created.status).toBe(201);
    const rel = JSON.parse(created.body.toString()) as ReleaseLike;
    for (const [name, data] of Object.entries(files)) {
      const url = rel.upload_url.replace('{?name,label}', `?name=${encodeURIComponent(name)}`);
      const up = await tlsFetch(url, ca, { method: 'POST', headers: { authorization: `Bearer ${lab.token}`, 'content-type': 'application/octet-stream', 'content-length': String(data.length) }, body: data });
      expect(up.status).toBe(201);
    }
    const patched = await tlsFetch(`${lab.url}/repos/${owner}/${repo}/releases/${rel.id}`, ca, { method: 'PATCH', headers, body: Buffer.from('{"draft":false}') });
    expect(patched.status).toBe(200);
    const draft = JSON.parse((await tlsFetch(`${lab.url}/api/v3/repos/${owner}/${repo}/releases`, ca, { method: 'POST', headers, body: Buffer.from(JSON.stringify({ tag_name: 'v3.1.0-rc.1', draft: true, prerelease: true })) })).body.toString()) as ReleaseLike;
    const notes = await tlsFetch(draft.upload_url.replace('{?name,label}', '?name=notes.txt'), ca, { method: 'POST', headers: { authorization: `token ${lab.token}`, 'content-type': 'text/plain' }, body: Buffer.from('draft notes\n') });
    expect(notes.status).toBe(201);
  });
  afterAll(async () => {
    await lab.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('advertises https://localhost with a certificate valid for localhost and 127.0.0.1', async () => {
    expect(lab.url).toMatch(/^https:\/\/localhost:\d+$/);
    const ca = await readFile(lab.caFile as string, 'utf8');
    for (const host of ['localhost', '127.0.0.1']) {
      const res = await tlsFetch(`https://${host}:${lab.service.port}/api/v3/repos/${owner}/${repo}/releases/tags/v3.0.0`, ca);
      expect(res.status).toBe(200);
    }
    await expect(tlsFetch(`${lab.url}/repos/${owner}/${repo}/releases`, '')).rejects.toThrow();
  });

  it.skipIf(!gh)('`gh release download` gets every asset byte-identical with ghEnv() as its whole environment', async () => {
    const env = lab.ghEnv();
    expect(Object.keys(env).sort()).toEqual(['GH_CONFIG_DIR', 'GH_ENTERPRISE_TOKEN', 'GH_HOST', 'GH_NO_UPDATE_NOTIFIER', 'GH_PROMPT_DISABLED', 'GH_TOKEN', 'NO_COLOR', 'SSL_CERT_FILE']);
    const all = path.join(work, 'all');
    await run(gh as string, ['release', 'download', 'v3.0.0', '-R', lab.ghRepo(owner, repo), '-D', all], { env });
    expect((await readdir(all)).sort()).toEqual(Object.keys(files).sort());
    for (const [name, data] of Object.entries(files)) expect((await readFile(path.join(all, name))).equals(data), name).toBe(true);
    // every asset was fetched once, through the API (the request log is written when a response
    // finishes, which may come after gh exits; the download count is set before the bytes go out)
    const counts = () => Object.fromEntries((lab.state().releases.find((r) => r.tag_name === 'v3.0.0')?.assets ?? []).map((a) => [a.name, a.download_count]));
    expect(counts()).toEqual(Object.fromEntries(Object.keys(files).map((n) => [n, 1])));

    const some = path.join(work, 'some');
    await run(gh as string, ['release', 'download', 'v3.0.0', '-R', lab.ghRepo(owner, repo), '-D', some, '--pattern', '*.tar.gz', '--pattern', '*.txt'], { env });
    expect((await readdir(some)).sort()).toEqual(['SHA256SUMS.txt', 'empty.txt', 'widget-linux-x64.tar.gz']);
    expect((await readFile(path.join(some, 'widget-linux-x64.tar.gz'))).equals(files['widget-linux-x64.tar.gz'] as Buffer)).toBe(true);

    // without a tag, gh takes the latest release
    const latest = path.join(work, 'latest');
    await run(gh as string, ['release', 'download', '-R', lab.ghRepo(owner, repo), '-D', latest, '--pattern', 'bytes.bin'], { env });
    expect((await readFile(path.join(latest, 'bytes.bin'))).equals(files['bytes.bin'] as Buffer)).toBe(true);

    // a draft: gh finds it through GraphQL, then reads it by id
    const draftDir = path.join(work, 'draft');
    await run(gh as string, ['release', 'download', 'v3.1.0-rc.1', '-R', lab.ghRepo(owner, repo), '-D', draftDir], { env });
    expect((await readdir(draftDir)).sort()).toEqual(['notes.txt']);
    expect(await readFile(path.join(draftDir, 'notes.txt'), 'utf8')).toBe('draft notes\n');

    // a wrong token is refused
    const refused = run(gh as string, ['release', 'download', 'v3.0.0', '-R', lab.ghRepo(owner, repo), '-D', path.join(work, 'refused')], { env: { ...env, GH_TOKEN: 'wrong', GH_ENTERPRISE_TOKEN: 'wrong' } });
    await expect(refused).rejects.toThrow(/401|Bad credentials/);
  });
});

describe('GitHub stand-in with a state folder', () => {
  it('drops an upload the client abandons: no asset, no partial file', async () => {
    const stateDir = await mkdtemp(path.join(tmpdir(), 'github-lab-abort-'));
    const lab = await startGithub({ stateDir });
    try {
      const rel = (await octokitFor(lab).rest.repos.createRelease({ owner, repo, tag_name: 'v1', draft: true })).data;
      const abort = new AbortController();
      let sent = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(controller) {
          sent += 1;
          if (sent < 8) controller.enqueue(randomBytes(64 * 1024));
          else {
            abort.abort();
            controller.error(new Error('the client gave up'));
          }
        },
      });
      const url = rel.upload_url.replace('{?name,label}', '?name=cut.bin');
      await expect(fetch(url, { method: 'POST', headers: { authorization: `token ${lab.token}` }, body, duplex: 'half', signal: abort.signal } as RequestInit)).rejects.toThrow();
      await vi.waitFor(() => expect(lab.service.log.some((r) => r.method === 'POST' && r.path.endsWith('/assets'))).toBe(true));
      expect(lab.state().releases[0]?.assets).toEqual([]);
      expect(await readdir(path.join(stateDir, 'github', 'assets'))).toEqual([]);
      // the name is still free
      expect((await upload(octokitFor(lab), rel, 'cut.bin', Buffer.from('whole'))).status).toBe(201);
    } finally {
      await lab.stop();
      await rm(stateDir, { recursive: true, force: true });
    }
  });


  it('keeps releases, assets, refs and its TLS CA across a restart', async () => {
    const stateDir = await mkdtemp(path.join(tmpdir(), 'github-lab-state-'));
    try {
      const files = fixtures();
      const first = await startGithub({ stateDir, token: 'lab-token-1' });
      const o1 = octokitFor(first);
      const rel = (await o1.rest.repos.createRelease({ owner, repo, tag_name: 'v4.0.0', draft: true })).data;
      for (const [name, data] of Object.entries(files)) await upload(o1, rel, name, data);
      await o1.rest.repos.updateRelease({ owner, repo, release_id: rel.id, draft: false });
      const before = first.state();
      await first.stop();

      const second = await startGithub({ stateDir, token: 'lab-token-1' });
      try {
        expect(second.state()).toEqual(before);
        const o2 = octokitFor(second);
        const byTag = await o2.rest.repos.getReleaseByTag({ owner, repo, tag: 'v4.0.0' });
        expect(byTag.data.id).toBe(rel.id);
        for (const asset of byTag.data.assets) {
          const got = await o2.rest.repos.getReleaseAsset({ owner, repo, asset_id: asset.id, headers: { accept: 'application/octet-stream' } });
          expect(Buffer.from(got.data as unknown as ArrayBuffer).equals(files[asset.name] as Buffer), asset.name).toBe(true);
        }
        // ids keep counting up after a restart
        const next = (await o2.rest.repos.createRelease({ owner, repo, tag_name: 'v4.0.1', draft: true })).data;
        expect(next.id).toBeGreaterThan(Math.max(rel.id, ...byTag.data.assets.map((a) => a.id)));
      } finally {
        await second.stop();
      }

      const tls1 = await startGithub({ stateDir, tls: true });
      const ca1 = await readFile(tls1.caFile as string, 'utf8');
      await tls1.stop();
      const tls2 = await startGithub({ stateDir, tls: true });
      try {
        expect(await readFile(tls2.caFile as string, 'utf8')).toBe(ca1);
        expect((await tlsFetch(`${tls2.url}/repos/${owner}/${repo}/releases/tags/v4.0.0`, ca1)).status).toBe(200);
      } finally {
        await tls2.stop();
      }
    } finally {
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
