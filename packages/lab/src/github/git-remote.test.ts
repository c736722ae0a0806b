import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { request as httpsRequest } from 'node:https';
import { devNull, tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startLab } from '../lab.js';
import { startGithub, type GithubLab } from './index.js';

const run = promisify(execFile);
const owner = 'acme';
const repo = 'widget';

/** Everything git needs, and nothing from the machine's or the user's git configuration. */
function gitEnv(home: string, extra: Record<string, string | undefined> = {}): NodeJS.ProcessEnv {
  return {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    LANG: 'C',
    GIT_CONFIG_NOSYSTEM: '1',
    GIT_CONFIG_GLOBAL: devNull,
    GIT_TERMINAL_PROMPT: '0',
    GIT_AUTHOR_NAME: 'Release Lab',
    GIT_AUTHOR_EMAIL: 'lab@example.invalid',
    GIT_COMMITTER_NAME: 'Release Lab',
    GIT_COMMITTER_EMAIL: 'lab@example.invalid',
    ...extra,
  };
}

async function git(env: NodeJS.ProcessEnv, cwd: string, ...args: string[]): Promise<string> {
  return (await run('git', ['-C', cwd, ...args], { env, maxBuffer: 16 * 1024 * 1024 })).stdout.trim();
}

/** Runs git, expects it to fail, and returns what it printed. */
async function gitFails(env: NodeJS.ProcessEnv, cwd: string, ...args: string[]): Promise<string> {
  try {
    await run('git', ['-C', cwd, ...args], { env });
  } catch (err) {
    const e = err as { stderr?: string; stdout?: string };
    return `${e.stdout ?? ''}${e.stderr ?? ''}`;
  }
  throw new Error(`expected git ${args.join(' ')} to fail`);
}

const basic = (lab: GithubLab, user = 'x-access-token'): string => `Authorization: Basic ${Buffer.from(`${user}:${lab.token}`).toString('base64')}`;
/** `-c http.extraHeader=…`, the way actions/checkout hands git the token. */
const withToken = (header: string): string[] => ['-c', `http.extraHeader=${header}`];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** An HTTPS request that trusts the lab CA (node's fetch reads extra CAs only at start-up). */
function request(lab: GithubLab, ca: string, url: string, init: { method?: string; headers?: Record<string, string>; body?: Buffer } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url.startsWith('/') ? `${lab.url}${url}` : url, { method: init.method ?? 'GET', headers: init.headers ?? {}, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

async function api<T = Record<string, unknown>>(lab: GithubLab, ca: string, method: string, url: string, body?: unknown): Promise<{ status: number; data: T }> {
  const res = await request(lab, ca, url, {
    method,
    headers: { authorization: `Bearer ${lab.token}`, accept: 'application/vnd.github+json', 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: Buffer.from(JSON.stringify(body)) }),
  });
  return { status: res.status, data: (res.body.length ? JSON.parse(res.body.toString('utf8')) : {}) as T };
}

/** A local repository with `count` commits on main. */
async function sourceRepo(env: NodeJS.ProcessEnv, dir: string, count = 2): Promise<string> {
  await run('git', ['init', '-q', '-b', 'main', dir], { env });
  for (let i = 1; i <= count; i += 1) {
    await writeFile(path.join(dir, 'file.txt'), `line ${i}\n`);
    await git(env, dir, 'add', 'file.txt');
    await git(env, dir, 'commit', '-q', '-m', `commit ${i}`);
  }
  return git(env, dir, 'rev-parse', 'HEAD');
}

/** Refs of the remote as `git ls-remote` sees them, name → sha. */
async function remoteRefs(env: NodeJS.ProcessEnv, cwd: string, url: string): Promise<Record<string, string>> {
  const out = await git(env, cwd, 'ls-remote', url);
  return Object.fromEntries(
    out
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t').reverse() as [string, string]),
  );
}

describe('git over smart HTTP on the GitHub stand-in (TLS)', () => {
  let lab: GithubLab;
  let ca: string;
  let work: string;
  let env: NodeJS.ProcessEnv;
  let src: string;
  let seeded: string;
  let url: string;

  beforeAll(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'github-lab-git-'));
    lab = await startGithub({ tls: true });
    ca = await readFile(lab.caFile as string, 'utf8');
    env = gitEnv(work, { GIT_SSL_CAINFO: lab.caFile });
    src = path.join(work, 'src');
    seeded = await sourceRepo(env, src);
    const info = await lab.seedRepository(owner, repo, src, { branch: 'main' });
    expect(info).toEqual({ owner, repo, url: `${lab.url}/${owner}/${repo}.git`, path: expect.stringMatching(/acme[/\\]widget\.git$/), defaultBranch: 'main', head: seeded });
    url = lab.gitUrl(owner, repo);
  });
  afterAll(async () => {
    await lab.stop();
    await rm(work, { recursive: true, force: true });
  });

  it('clones and fetches anonymously over TLS; a refresh of the seed reaches `git fetch`', async () => {
    expect(url).toMatch(/^https:\/\/localhost:\d+\/acme\/widget\.git$/);
    const clone = path.join(work, 'clone-read');
    await run('git', ['clone', '-q', url, clone], { env });
    expect(await git(env, clone, 'rev-parse', 'HEAD')).toBe(seeded);
    expect(await git(env, clone, 'symbolic-ref', 'refs/remotes/origin/HEAD')).toBe('refs/remotes/origin/main');
    expect(await readFile(path.join(clone, 'file.txt'), 'utf8')).toBe('line 2\n');
    // GitHub also answers without the .git, and names are case-insensitive
    expect(await remoteRefs(env, work, `${lab.url}/ACME/Widget`)).toMatchObject({ HEAD: seeded, 'refs/heads/main': seeded });

    // the planned commit is an ancestor of the default branch after a fetch
    await writeFile(path.join(src, 'file.txt'), 'line 3\n');
    await git(env, src, 'commit', '-q', '-am', 'commit 3');
    const next = await git(env, src, 'rev-parse', 'HEAD');
    const refreshed = await lab.seedRepository(owner, repo, src);
    expect(refreshed.head).toBe(next);
    await git(env, clone, 'fetch', '-q', 'origin');
    expect(await git(env, clone, 'rev-parse', 'origin/main')).toBe(next);
    await git(env, clone, 'merge-base', '--is-ancestor', seeded, 'origin/main');
    await expect(git(env, clone, 'merge-base', '--is-ancestor', next, seeded)).rejects.toThrow();

    // without the lab CA, git does not trust the server
    const untrusted = await gitFails(gitEnv(work), work, 'ls-remote', url);
    expect(untrusted).toMatch(/certificate|SSL/i);
    // unknown repositories and the dumb protocol are refused
    expect(await gitFails(env, work, 'ls-remote', lab.gitUrl(owner, 'nothing-here'))).toMatch(/not found|404/i);
    const dumb = await request(lab, ca, `/${owner}/${repo}.git/info/refs`);
    expect(dumb.status).toBe(403);
  });

  it('takes a pushed branch and annotated tag with the token; the REST API reports them as git has them', async () => {
    const clone = path.join(work, 'clone-push');
    await run('git', ['clone', '-q', url, clone], { env });
    await git(env, clone, 'switch', '-q', '-c', 'feature');
    await git(env, clone, 'commit', '-q', '--allow-empty', '-m', 'feature work');
    const feature = await git(env, clone, 'rev-parse', 'HEAD');
    await git(env, clone, 'tag', '-a', 'v1.0.0', '-m', 'Widget 1.0.0');
    const tagSha = await git(env, clone, 'rev-parse', 'v1.0.0');
    expect(tagSha).not.toBe(feature);

    await git(env, clone, ...withToken(basic(lab)), 'push', '-q', 'origin', 'feature', 'v1.0.0');
    const remote = await remoteRefs(env, work, url);
    expect(remote).toMatchObject({ 'refs/heads/feature': feature, 'refs/tags/v1.0.0': tagSha, 'refs/tags/v1.0.0^{}': feature });

    // the tag through REST: the ref names the tag object, the tag object names the commit
    const ref = await api<{ ref: string; object: { sha: string; type: string } }>(lab, ca, 'GET', `/repos/${owner}/${repo}/git/ref/tags/v1.0.0`);
    expect(ref).toMatchObject({ status: 200, data: { ref: 'refs/tags/v1.0.0', object: { sha: tagSha, type: 'tag' } } });
    const tag = await api(lab, ca, 'GET', `/api/v3/repos/${owner}/${repo}/git/tags/${tagSha}`);
    expect(tag).toMatchObject({ status: 200, data: { sha: tagSha, tag: 'v1.0.0', message: 'Widget 1.0.0\n', object: { sha: feature, type: 'commit' }, tagger: { name: 'Release Lab', email: 'lab@example.invalid' } } });
    expect((tag.data.tagger as { date: string }).date).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    const branch = await api(lab, ca, 'GET', `/repos/${owner}/${repo}/git/ref/heads/feature`);
    expect(branch.data).toMatchObject({ object: { sha: feature, type: 'commit' } });
    const matching = await api<Array<{ ref: string }>>(lab, ca, 'GET', `/repos/${owner}/${repo}/git/matching-refs/tags/v1`);
    expect(matching.data.map((r) => r.ref)).toEqual(['refs/tags/v1.0.0']);
    const all = await api<Array<{ ref: string }>>(lab, ca, 'GET', `/repos/${owner}/${repo}/git/refs`);
    expect(all.data.map((r) => r.ref)).toEqual(['refs/heads/feature', 'refs/heads/main', 'refs/tags/v1.0.0']);
    expect((await api(lab, ca, 'GET', `/repos/${owner}/${repo}`)).data).toMatchObject({ full_name: 'acme/widget', default_branch: 'main', clone_url: url });

    // state(): the repository with its tags, their commits, and whether annotated
    const state = lab.state();
    expect(state.repositories.find((r) => r.repo === repo)?.tags).toEqual([{ name: 'v1.0.0', sha: tagSha, commit: feature, annotated: true }]);
    expect(state.refs).toContainEqual({ owner, repo, ref: 'refs/tags/v1.0.0', sha: tagSha });
    expect(state.tags).toContainEqual(expect.objectContaining({ owner, repo, sha: tagSha, tag: 'v1.0.0', object: { sha: feature, type: 'commit' } }));

    // a bearer token, and credentials in the URL (git answers the Basic challenge) push too
    await git(env, clone, 'commit', '-q', '--allow-empty', '-m', 'more');
    await git(env, clone, ...withToken(`Authorization: Bearer ${lab.token}`), 'push', '-q', 'origin', 'feature');
    await git(env, clone, 'commit', '-q', '--allow-empty', '-m', 'more still');
    const withCreds = url.replace('https://', `https://someone:${lab.token}@`);
    await git(env, clone, 'push', '-q', withCreds, 'feature');
    expect((await remoteRefs(env, work, url))['refs/heads/feature']).toBe(await git(env, clone, 'rev-parse', 'HEAD'));
  });

  it('refuses a push without the token (401, Basic realm="GitHub") or with a wrong one, and writes nothing', async () => {
    const clone = path.join(work, 'clone-anon');
    await run('git', ['clone', '-q', url, clone], { env });
    await git(env, clone, 'commit', '-q', '--allow-empty', '-m', 'not allowed');
    await git(env, clone, 'tag', '-a', 'v6.6.6', '-m', 'not allowed');
    const before = await remoteRefs(env, work, url);
    const stateBefore = lab.state();
    const logged = lab.service.log.length;

    const anonymous = await gitFails(env, clone, 'push', 'origin', 'main', 'v6.6.6');
    expect(anonymous).toMatch(/could not read Username|Authentication failed/);
    expect(lab.service.log.slice(logged)).toContainEqual({ method: 'GET', path: `/${owner}/${repo}.git/info/refs`, status: 401 });
    // a wrong token is challenged the same way; git then has nothing else to offer
    const wrongHeader = await gitFails(env, clone, ...withToken(`Authorization: Basic ${Buffer.from('x-access-token:not-the-token').toString('base64')}`), 'push', 'origin', 'main', 'v6.6.6');
    expect(wrongHeader).toMatch(/could not read Username/);
    const wrongUrl = await gitFails(env, clone, 'push', url.replace('https://', 'https://x-access-token:not-the-token@'), 'main', 'v6.6.6');
    expect(wrongUrl).toMatch(/Authentication failed/);
    expect(lab.service.log.slice(logged).filter((r) => r.status === 401).length).toBeGreaterThanOrEqual(4);

    // what git saw, first hand
    const advert = await request(lab, ca, `/${owner}/${repo}.git/info/refs?service=git-receive-pack`);
    expect(advert.status).toBe(401);
    expect(advert.headers['www-authenticate']).toBe('Basic realm="GitHub"');
    // a receive-pack request sent straight away, with a body, is refused before git runs
    const direct = await request(lab, ca, `/${owner}/${repo}.git/git-receive-pack`, { method: 'POST', headers: { 'content-type': 'application/x-git-receive-pack-request' }, body: Buffer.from(`00940000000000000000000000000000000000000000 ${before['refs/heads/main']} refs/heads/evil\0report-status\n0000`) });
    expect(direct.status).toBe(401);
    // reads stay open to anyone
    expect((await request(lab, ca, `/${owner}/${repo}.git/info/refs?service=git-upload-pack`)).status).toBe(200);

    expect(await remoteRefs(env, work, url)).toEqual(before);
    expect(lab.state()).toEqual(stateBefore);
  });

  it('writes refs and tag objects made through REST into the repository, where `git fetch` finds them', async () => {
    const head = (await lab.seedRepository(owner, repo, src)).head as string;
    const created = await api<{ sha: string; object: { sha: string } }>(lab, ca, 'POST', `/repos/${owner}/${repo}/git/tags`, {
      tag: 'v2.0.0',
      message: 'Widget 2.0.0',
      object: head,
      type: 'commit',
      tagger: { name: 'Release Lab', email: 'lab@example.invalid', date: '2024-05-01T12:00:00+02:00' },
    });
    expect(created.status).toBe(201);
    const ref = await api(lab, ca, 'POST', `/repos/${owner}/${repo}/git/refs`, { ref: 'refs/tags/v2.0.0', sha: created.data.sha });
    expect(ref).toMatchObject({ status: 201, data: { object: { sha: created.data.sha, type: 'tag' } } });

    const clone = path.join(work, 'clone-rest');
    await run('git', ['clone', '-q', url, clone], { env });
    expect(await git(env, clone, 'cat-file', '-t', 'v2.0.0')).toBe('tag');
    expect(await git(env, clone, 'rev-parse', 'v2.0.0')).toBe(created.data.sha);
    expect(await git(env, clone, 'rev-parse', 'v2.0.0^{commit}')).toBe(head);
    expect(await git(env, clone, 'for-each-ref', '--format=%(taggerdate:raw)', 'refs/tags/v2.0.0')).toBe('1714557600 +0200');

    // what git does not have is refused, and nothing is written
    const before = await remoteRefs(env, work, url);
    expect(await api(lab, ca, 'POST', `/repos/${owner}/${repo}/git/refs`, { ref: 'refs/heads/ghost', sha: 'f'.repeat(40) })).toMatchObject({ status: 422, data: { message: 'Object does not exist' } });
    expect(await api(lab, ca, 'POST', `/repos/${owner}/${repo}/git/tags`, { tag: 'ghost', message: 'm', object: 'f'.repeat(40), type: 'commit' })).toMatchObject({ status: 422, data: { message: 'Object does not exist' } });
    expect(await api(lab, ca, 'POST', `/repos/${owner}/${repo}/git/tags`, { tag: 'wrong-type', message: 'm', object: head, type: 'tree' })).toMatchObject({ status: 422, data: { errors: [{ field: 'type', code: 'invalid' }] } });
    expect(await api(lab, ca, 'POST', `/repos/${owner}/${repo}/git/refs`, { ref: 'refs/tags/v2.0.0', sha: head })).toMatchObject({ status: 422, data: { message: 'Reference already exists' } });
    // git keeps branches on commits
    expect((await api(lab, ca, 'POST', `/repos/${owner}/${repo}/git/refs`, { ref: 'refs/heads/on-a-tag', sha: created.data.sha })).status).toBe(422);
    expect(await remoteRefs(env, work, url)).toEqual(before);

    // moving a branch: fast-forward only unless forced; deleting goes through git too
    const parent = await git(env, src, 'rev-parse', 'HEAD~1');
    expect((await api(lab, ca, 'POST', `/repos/${owner}/${repo}/git/refs`, { ref: 'refs/heads/release', sha: parent })).status).toBe(201);
    expect((await api(lab, ca, 'PATCH', `/repos/${owner}/${repo}/git/refs/heads/release`, { sha: head })).data).toMatchObject({ object: { sha: head } });
    expect(await api(lab, ca, 'PATCH', `/repos/${owner}/${repo}/git/refs/heads/release`, { sha: parent })).toMatchObject({ status: 422, data: { message: 'Update is not a fast forward' } });
    expect((await remoteRefs(env, work, url))['refs/heads/release']).toBe(head);
    expect((await api(lab, ca, 'PATCH', `/repos/${owner}/${repo}/git/refs/heads/release`, { sha: parent, force: true })).status).toBe(200);
    expect((await remoteRefs(env, work, url))['refs/heads/release']).toBe(parent);
    expect((await api(lab, ca, 'DELETE', `/repos/${owner}/${repo}/git/refs/heads/release`)).status).toBe(204);
    expect(await remoteRefs(env, work, url)).not.toHaveProperty('refs/heads/release');
    expect(lab.state().refs.filter((r) => r.ref === 'refs/heads/release')).toEqual([]);
  });

  it('publishing a release keeps a pushed tag, tags the target in git otherwise, and refuses a target git lacks', async () => {
    const head = (await lab.seedRepository(owner, repo, src)).head as string;
    const pushedTag = (await remoteRefs(env, work, url))['refs/tags/v1.0.0'];
    const publish = async (tag: string, target: string): Promise<{ status: number; data: Record<string, unknown> }> => {
      const draft = await api<{ id: number }>(lab, ca, 'POST', `/repos/${owner}/${repo}/releases`, { tag_name: tag, target_commitish: target, draft: true });
      expect(draft.status).toBe(201);
      return api(lab, ca, 'PATCH', `/repos/${owner}/${repo}/releases/${draft.data.id}`, { draft: false, name: `Widget ${tag}` });
    };

    expect((await publish('v1.0.0', 'main')).data).toMatchObject({ draft: false, tag_name: 'v1.0.0' });
    expect((await remoteRefs(env, work, url))['refs/tags/v1.0.0']).toBe(pushedTag);

    expect((await publish('v3.0.0', 'main')).status).toBe(200);
    const remote = await remoteRefs(env, work, url);
    expect(remote['refs/tags/v3.0.0']).toBe(head);
    expect(lab.state().repositories.find((r) => r.repo === repo)?.tags).toContainEqual({ name: 'v3.0.0', sha: head, commit: head, annotated: false });

    const refused = await publish('v4.0.0', 'no-such-branch');
    expect(refused).toMatchObject({ status: 422, data: { message: 'Validation Failed', errors: [{ resource: 'Release', code: 'invalid', field: 'target_commitish' }] } });
    expect(lab.state().releases.find((r) => r.tag_name === 'v4.0.0')).toMatchObject({ draft: true, name: null, published_at: null });
    expect(await remoteRefs(env, work, url)).toEqual(remote);
    // a release made published at once is refused the same way, and not kept
    expect((await api(lab, ca, 'POST', `/repos/${owner}/${repo}/releases`, { tag_name: 'v5.0.0', target_commitish: 'f'.repeat(40) })).status).toBe(422);
    expect(lab.state().releases.some((r) => r.tag_name === 'v5.0.0')).toBe(false);
  });

  it('passes gzip request bodies to git (as git sends them for many wants), and a corrupt one yields no pack', async () => {
    // a real client: a fetch request over a kilobyte (here 30 "want" lines) is sent gzipped
    const reader = path.join(work, 'clone-gzip');
    await run('git', ['clone', '-q', url, reader], { env });
    const writer = path.join(work, 'clone-branches');
    await run('git', ['clone', '-q', url, writer], { env });
    for (let i = 0; i < 30; i += 1) {
      await git(env, writer, 'switch', '-q', '-c', `topic-${i}`, 'main');
      await git(env, writer, 'commit', '-q', '--allow-empty', '-m', `topic ${i}`);
    }
    await git(env, writer, ...withToken(basic(lab)), 'push', '-q', 'origin', 'refs/heads/topic-*:refs/heads/topic-*');
    const traced = await run('git', ['-C', reader, 'fetch', 'origin'], { env: { ...env, GIT_TRACE_CURL: '1', GIT_TRACE_CURL_NO_DATA: '1' } });
    expect(traced.stderr).toMatch(/Content-Encoding: gzip/i);
    expect(await git(env, reader, 'rev-parse', 'origin/topic-29')).toBe(await git(env, writer, 'rev-parse', 'topic-29'));
    const newest = await git(env, writer, 'rev-parse', 'topic-0');

    const wants = Buffer.from(`0032want ${newest}\n00000009done\n`);
    const post = (body: Buffer) =>
      request(lab, ca, `/${owner}/${repo}.git/git-upload-pack`, { method: 'POST', headers: { 'content-type': 'application/x-git-upload-pack-request', 'content-encoding': 'gzip', 'content-length': String(body.length) }, body });
    const ok = await post(gzipSync(wants));
    expect(ok.status).toBe(200);
    expect(ok.headers['content-type']).toBe('application/x-git-upload-pack-result');
    expect(ok.body.subarray(0, 8).toString()).toBe('0008NAK\n');
    expect(ok.body.includes(Buffer.from('PACK'))).toBe(true);
    const corrupt = await post(Buffer.from('not gzip at all'));
    expect(corrupt.body.includes(Buffer.from('PACK'))).toBe(false);
    // git's own refusals come back with the status its CGI headers name
    const wrongType = await request(lab, ca, `/${owner}/${repo}.git/git-upload-pack`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: wants });
    expect(wrongType.status).toBe(415);
  });

  it('a chaos 500 on git push makes `git push` fail with the remote unchanged; once spent, the push goes through', async () => {
    const clone = path.join(work, 'clone-chaos');
    await run('git', ['clone', '-q', url, clone], { env });
    await git(env, clone, 'commit', '-q', '--allow-empty', '-m', 'release commit');
    const commit = await git(env, clone, 'rev-parse', 'HEAD');
    await git(env, clone, 'tag', '-a', 'v7.0.0', '-m', 'Widget 7.0.0');
    const tagSha = await git(env, clone, 'rev-parse', 'v7.0.0');
    const before = await remoteRefs(env, work, url);
    const stateBefore = lab.state();

    // over the service's own chaos endpoint, only for pushes
    const rule = { route: '\\.git/git-receive-pack$', method: 'POST', count: 1, fault: { kind: 'status', status: 500 } };
    expect((await request(lab, ca, '/__lab/chaos', { method: 'POST', headers: { 'content-type': 'application/json' }, body: Buffer.from(JSON.stringify(rule)) })).status).toBe(201);
    // reads are not affected by the rule
    expect((await remoteRefs(env, work, url))['refs/heads/main']).toBe(before['refs/heads/main']);
    const failed = await gitFails(env, clone, ...withToken(basic(lab, 'release-bot')), 'push', 'origin', 'HEAD:main', 'v7.0.0');
    expect(failed).toMatch(/500/);
    expect(await remoteRefs(env, work, url)).toEqual(before);
    expect(lab.state()).toEqual(stateBefore);
    expect(lab.service.log.filter((r) => r.fault)).toContainEqual({ method: 'POST', path: `/${owner}/${repo}.git/git-receive-pack`, status: 500, fault: 'status' });

    // connection resets (curl retries one on a fresh connection) leave the remote unchanged too
    lab.service.chaos.add({ route: '\\.git/git-receive-pack$', method: 'POST', count: 5, fault: { kind: 'reset' } });
    await gitFails(env, clone, ...withToken(basic(lab)), 'push', 'origin', 'HEAD:main', 'v7.0.0');
    expect(await remoteRefs(env, work, url)).toEqual(before);
    expect(lab.service.log.filter((r) => r.status === 'reset').length).toBeGreaterThanOrEqual(1);

    expect((await request(lab, ca, '/__lab/chaos', { method: 'DELETE' })).status).toBe(200);
    expect(lab.service.chaos.pending()).toEqual([]);
    await git(env, clone, ...withToken(basic(lab)), 'push', '-q', 'origin', 'HEAD:main', 'v7.0.0');
    expect(await remoteRefs(env, work, url)).toMatchObject({ 'refs/heads/main': commit, 'refs/tags/v7.0.0': tagSha });
    expect(lab.state().repositories.find((r) => r.repo === repo)?.tags).toContainEqual({ name: 'v7.0.0', sha: tagSha, commit, annotated: true });
  });
});

describe('git repositories of the GitHub stand-in', () => {
  it('keeps repositories, pushed tags and branches across a restart', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'github-lab-git-state-'));
    const stateDir = path.join(work, 'state');
    try {
      const env = gitEnv(work);
      const src = path.join(work, 'src');
      const head = await sourceRepo(env, src, 1);
      const first = await startGithub({ stateDir, tls: true, token: 'lab-token-1' });
      const envTls = { ...env, GIT_SSL_CAINFO: first.caFile };
      await first.seedRepository(owner, repo, src, { branch: 'trunk' });
      await first.createRepository(owner, 'empty');
      await git(env, src, 'tag', '-a', 'v1.0.0', '-m', 'one');
      await git(envTls, src, ...withToken(basic(first)), 'push', '-q', first.gitUrl(owner, repo), 'v1.0.0');
      const before = first.state();
      await first.stop();

      const second = await startGithub({ stateDir, tls: true, token: 'lab-token-1' });
      try {
        expect(second.state()).toEqual(before);
        expect(second.state().repositories.map((r) => [r.repo, r.defaultBranch, r.branches.length])).toEqual([
          [repo, 'trunk', 1],
          ['empty', 'main', 0],
        ]);
        const envAgain = { ...env, GIT_SSL_CAINFO: second.caFile };
        const clone = path.join(work, 'clone');
        await run('git', ['clone', '-q', second.gitUrl(owner, repo), clone], { env: envAgain });
        expect(await git(envAgain, clone, 'rev-parse', 'HEAD')).toBe(head);
        expect(await git(envAgain, clone, 'rev-parse', 'v1.0.0^{commit}')).toBe(head);
        const ca = await readFile(second.caFile as string, 'utf8');
        expect((await request(second, ca, `/repos/${owner}/${repo}/git/ref/tags/v1.0.0`)).status).toBe(200);

        // the empty repository takes its first push
        const firstPush = path.join(work, 'first-push');
        await run('git', ['clone', '-q', second.gitUrl(owner, 'empty'), firstPush], { env: envAgain });
        await git(envAgain, firstPush, 'commit', '-q', '--allow-empty', '-m', 'first');
        await git(envAgain, firstPush, ...withToken(basic(second)), 'push', '-q', 'origin', 'HEAD:main');
        expect(second.state().repositories.find((r) => r.repo === 'empty')?.branches).toEqual([{ name: 'main', sha: await git(envAgain, firstPush, 'rev-parse', 'HEAD') }]);
      } finally {
        await second.stop();
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });

  it('in immutable-release mode, a push can neither move nor delete the tag of a published release (plain HTTP)', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'github-lab-git-immutable-'));
    const lab = await startGithub({ immutableReleases: true });
    try {
      const env = gitEnv(work);
      const src = path.join(work, 'src');
      const first = await sourceRepo(env, src, 1);
      await lab.seedRepository(owner, repo, src);
      const url = lab.gitUrl(owner, repo);
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/acme\/widget\.git$/);
      await git(env, src, 'tag', '-a', 'v1.0.0', '-m', 'one');
      await git(env, src, 'tag', '-a', 'v1.1.0-rc.1', '-m', 'draft only');
      await git(env, src, ...withToken(basic(lab)), 'push', '-q', url, 'v1.0.0', 'v1.1.0-rc.1');
      const rest = (method: string, p: string, body?: unknown) =>
        fetch(`${lab.url}${p}`, { method, headers: { authorization: `token ${lab.token}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
      expect((await rest('POST', `/repos/${owner}/${repo}/releases`, { tag_name: 'v1.0.0' })).status).toBe(201);
      expect((await rest('POST', `/repos/${owner}/${repo}/releases`, { tag_name: 'v1.1.0-rc.1', draft: true })).status).toBe(201);
      const before = await remoteRefs(env, work, url);

      await git(env, src, 'commit', '-q', '--allow-empty', '-m', 'later');
      await git(env, src, 'tag', '-f', '-a', 'v1.0.0', '-m', 'moved');
      const moved = await gitFails(env, src, ...withToken(basic(lab)), 'push', '--force', url, 'v1.0.0');
      expect(moved).toMatch(/immutable release/);
      const deleted = await gitFails(env, src, ...withToken(basic(lab)), 'push', url, ':refs/tags/v1.0.0');
      expect(deleted).toMatch(/immutable release/);
      expect((await rest('DELETE', `/repos/${owner}/${repo}/git/refs/tags/v1.0.0`)).status).toBe(422);
      expect(await remoteRefs(env, work, url)).toEqual(before);
      expect(lab.state().repositories[0]?.tags.find((t) => t.name === 'v1.0.0')?.commit).toBe(first);

      // a draft's tag, and branches, move as usual
      await git(env, src, 'tag', '-f', '-a', 'v1.1.0-rc.1', '-m', 'moved');
      await git(env, src, ...withToken(basic(lab)), 'push', '-q', '--force', url, 'v1.1.0-rc.1', 'HEAD:main');
      expect((await remoteRefs(env, work, url))['refs/heads/main']).toBe(await git(env, src, 'rev-parse', 'HEAD'));
    } finally {
      await lab.stop();
      await rm(work, { recursive: true, force: true });
    }
  });

  it('refuses to seed from a folder that is not a repository, or under a name GitHub would refuse, and leaves nothing', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'github-lab-git-bad-'));
    const lab = await startGithub({ stateDir: work });
    try {
      const plain = path.join(work, 'plain');
      await mkdir(plain);
      await expect(lab.seedRepository(owner, repo, plain)).rejects.toMatchObject({ code: 'LAB_GITHUB_SEED', hint: expect.stringMatching(/commit/) });
      const empty = path.join(work, 'no-commits');
      await run('git', ['init', '-q', empty], { env: gitEnv(work) });
      await expect(lab.seedRepository(owner, repo, empty)).rejects.toMatchObject({ code: 'LAB_GITHUB_SEED' });
      const good = path.join(work, 'good');
      await sourceRepo(gitEnv(work), good, 1);
      await expect(lab.seedRepository(owner, '../escape', good)).rejects.toMatchObject({ code: 'LAB_GITHUB_REPO_NAME' });
      await expect(lab.seedRepository('-bad', repo, good)).rejects.toMatchObject({ code: 'LAB_GITHUB_REPO_NAME' });
      await expect(lab.seedRepository(owner, repo, good, { branch: 'no..dots' })).rejects.toMatchObject({ code: 'LAB_GITHUB_REPO_NAME' });
      await expect(lab.seedRepository(owner, repo, good, { ref: 'no-such-ref' })).rejects.toMatchObject({ code: 'LAB_GITHUB_SEED' });
      expect(lab.state().repositories).toEqual([]);
      expect(existsSync(path.join(work, 'github', 'repos', owner))).toBe(false);
      expect(await readdir(path.join(work, 'github', 'repos'))).toEqual([]);
      // the REST API still treats the name as a repository without git
      expect((await fetch(`${lab.url}/repos/${owner}/${repo}`)).status).toBe(404);

      // with tags: true the local tags come along (a lightweight one here)
      const goodHead = await git(gitEnv(work), good, 'rev-parse', 'HEAD');
      await git(gitEnv(work), good, 'tag', 'v0.0.1');
      await lab.seedRepository(owner, repo, good, { tags: true });
      expect(lab.state().repositories[0]?.tags).toEqual([{ name: 'v0.0.1', sha: goodHead, commit: goodHead, annotated: false }]);
      expect((await fetch(`${lab.url}/repos/${owner}/${repo}/git/ref/tags/v0.0.1`).then((r) => r.json())) as unknown).toMatchObject({ object: { sha: goodHead, type: 'commit' } });
    } finally {
      await lab.stop();
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('startLab with a seeded repository', () => {
  it('serves the repository and puts its remote and the lab CA for git in the env', async () => {
    const work = await mkdtemp(path.join(tmpdir(), 'github-lab-seeded-'));
    try {
      const src = path.join(work, 'src');
      const head = await sourceRepo(gitEnv(work), src, 1);
      const lab = await startLab({ stateDir: path.join(work, 'lab'), trustedPublishers: [], seedRepository: { owner, repo, path: src, branch: 'main' } });
      try {
        expect(lab.env.MCP_RELEASE_GIT_REMOTE).toBe(lab.github.gitUrl(owner, repo));
        expect(lab.urls.gitRemote).toBe(lab.env.MCP_RELEASE_GIT_REMOTE);
        expect(lab.env.GIT_SSL_CAINFO).toBe(lab.github.caFile);
        // the entries it had before stay
        for (const k of ['GITHUB_API_URL', 'GITHUB_TOKEN', 'NODE_EXTRA_CA_CERTS', 'GH_HOST', 'MCP_RELEASE_TRUSTED_ROOT', 'ACTIONS_ID_TOKEN_REQUEST_URL']) expect(lab.env[k], k).toBeTruthy();
        const env = gitEnv(work, { GIT_SSL_CAINFO: lab.env.GIT_SSL_CAINFO });
        const refs = await remoteRefs(env, work, lab.env.MCP_RELEASE_GIT_REMOTE as string);
        expect(refs).toEqual({ HEAD: head, 'refs/heads/main': head });
        await git(env, src, 'tag', '-a', 'v0.1.0', '-m', 'first');
        // the token from the env, as a header in git's environment configuration (lowercase scheme)
        const header = `Authorization: basic ${Buffer.from(`x-access-token:${lab.env.GITHUB_TOKEN}`).toString('base64')}`;
        const pushEnv = { ...env, GIT_CONFIG_COUNT: '1', GIT_CONFIG_KEY_0: 'http.extraHeader', GIT_CONFIG_VALUE_0: header };
        await git(pushEnv, src, 'push', '-q', lab.env.MCP_RELEASE_GIT_REMOTE as string, 'v0.1.0');
        expect(lab.github.state().repositories[0]?.tags).toEqual([{ name: 'v0.1.0', sha: await git(env, src, 'rev-parse', 'v0.1.0'), commit: head, annotated: true }]);
      } finally {
        await lab.stop();
      }
      const plain = await startLab({ stateDir: path.join(work, 'lab2'), trustedPublishers: [], githubTls: false });
      try {
        expect(plain.env).not.toHaveProperty('MCP_RELEASE_GIT_REMOTE');
        expect(plain.env).not.toHaveProperty('GIT_SSL_CAINFO');
      } finally {
        await plain.stop();
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
