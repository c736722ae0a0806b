import { hashingPassThrough } from '@mcp-release/manifest';
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LabError } from '../errors.js';
import { readBody, sendJson, type Handler, type LabService } from '../harness.js';
import { gitObjectSha, SHA_RE, syntheticCommit, tagObjectText } from './git.js';
import type { Repositories } from './repos.js';
import { now, repoKey, sameRepo, type AssetRecord, type RefRecord, type ReleaseRecord, type Store, type TagRecord } from './store.js';

export interface ApiContext {
  service: LabService;
  store: Store;
  /** Repositories with a bare git repository: their refs and tags are read from and written to it. */
  repos: Repositories;
  token: string;
  immutableReleases: boolean;
}

/** A ref with the type of the object it names. */
type TypedRef = RefRecord & { type: string };

/** git's "no object": as the old value of update-ref, the ref must not exist yet. */
const ZERO_SHA = '0'.repeat(40);

/** One API request: what a handler needs to answer in GitHub's shapes. */
interface Call {
  req: IncomingMessage;
  res: ServerResponse;
  params: Record<string, string>;
  url: URL;
  /** Base of API URLs in answers: the service URL, plus `/api/v3` when the request came that way. */
  api: string;
  /** Base of web URLs (html_url, browser_download_url). */
  web: string;
  authed: boolean;
}

const DOCS = 'https://docs.github.com/rest';
const DOC = {
  releases: `${DOCS}/releases/releases`,
  createRelease: `${DOCS}/releases/releases#create-a-release`,
  updateRelease: `${DOCS}/releases/releases#update-a-release`,
  assets: `${DOCS}/releases/assets`,
  uploadAsset: `${DOCS}/releases/assets#upload-a-release-asset`,
  refs: `${DOCS}/git/refs`,
  createRef: `${DOCS}/git/refs#create-a-reference`,
  tags: `${DOCS}/git/tags`,
  graphql: 'https://docs.github.com/graphql',
};

/** An answer other than success; the route wrapper turns it into GitHub's error body. */
class GithubAnswer extends LabError {
  readonly status: number;
  readonly body: Record<string, unknown>;

  constructor(status: number, message: string, extra: { errors?: unknown[]; doc?: string } = {}) {
    super('LAB_GITHUB_ANSWER', message);
    this.status = status;
    this.body = { message, ...(extra.errors ? { errors: extra.errors } : {}), documentation_url: extra.doc ?? DOCS, status: String(status) };
  }
}

const notFound = (doc = DOCS): GithubAnswer => new GithubAnswer(404, 'Not Found', { doc });
const validation = (doc: string, ...errors: Array<Record<string, unknown>>): GithubAnswer => new GithubAnswer(422, 'Validation Failed', { errors, doc });

/** Rate-limit bookkeeping: one hourly window per caller and resource, reported in headers only. */
class RateLimits {
  private readonly windows = new Map<string, { reset: number; used: number }>();

  private window(key: string): { reset: number; used: number } {
    const nowS = Math.floor(Date.now() / 1000);
    let w = this.windows.get(key);
    if (!w || w.reset <= nowS) {
      w = { reset: nowS + 3600, used: 0 };
      this.windows.set(key, w);
    }
    return w;
  }

  headers(who: string, limit: number, resource: string, count: boolean): Record<string, string> {
    const w = this.window(`${who}\0${resource}`);
    if (count) w.used += 1;
    return {
      'x-ratelimit-limit': String(limit),
      'x-ratelimit-remaining': String(Math.max(0, limit - w.used)),
      'x-ratelimit-reset': String(w.reset),
      'x-ratelimit-used': String(w.used),
      'x-ratelimit-resource': resource,
    };
  }

  snapshot(who: string, limit: number, resource: string): { limit: number; remaining: number; reset: number; used: number; resource: string } {
    const w = this.window(`${who}\0${resource}`);
    return { limit, remaining: Math.max(0, limit - w.used), reset: w.reset, used: w.used, resource };
  }
}

function sameSecret(given: string, token: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** `ok` for the lab token (as `token X`, `Bearer X` or basic auth's password), `bad` for any other credentials. */
export function credentials(req: IncomingMessage, token: string): 'ok' | 'anonymous' | 'bad' {
  const header = req.headers.authorization;
  if (!header) return 'anonymous';
  const m = /^(?:token|bearer)\s+(\S+)\s*$/i.exec(header);
  if (m) return sameSecret(m[1] as string, token) ? 'ok' : 'bad';
  const basic = /^basic\s+(\S+)\s*$/i.exec(header);
  if (basic) {
    const decoded = Buffer.from(basic[1] as string, 'base64').toString('utf8');
    return sameSecret(decoded.slice(decoded.indexOf(':') + 1), token) ? 'ok' : 'bad';
  }
  return 'bad';
}

/** Reads and discards what is left of a request body, so the client sees the answer rather than a broken pipe. */
export async function drain(req: IncomingMessage): Promise<void> {
  if (req.readableEnded || req.destroyed) return;
  await pipeline(req, new Writable({ write: (_chunk, _enc, done) => done() })).catch(() => undefined);
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  let raw: Buffer;
  try {
    raw = await readBody(req, 1024 * 1024);
  } catch (err) {
    if (err instanceof LabError && err.code === 'LAB_BODY_TOO_LARGE') throw new GithubAnswer(413, 'Request body too large');
    throw err;
  }
  if (raw.length === 0) return {};
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // answered below
  }
  throw new GithubAnswer(400, 'Problems parsing JSON');
}

/** GitHub's answer to a JSON field of the wrong type. */
function typed<T>(body: Record<string, unknown>, field: string, type: 'string' | 'boolean', doc: string): T | undefined {
  const v = body[field];
  if (v === undefined) return undefined;
  if (v === null && type === 'string') return undefined;
  if (typeof v !== type) throw new GithubAnswer(422, `Invalid request.\n\nFor 'properties/${field}', ${JSON.stringify(v)} is not a ${type}.`, { doc });
  return v as T;
}

/** Control characters (and the space, when `space`) anywhere in `s`. */
function hasControl(s: string, space: boolean): boolean {
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    if (code < 0x20 || code === 0x7f || (space && code === 0x20)) return true;
  }
  return false;
}

/** git's rules for a reference name part (check-ref-format), enough to refuse what GitHub refuses. */
function validRefName(name: string): boolean {
  if (!name || name.length > 255 || name.startsWith('/') || name.endsWith('/') || name.endsWith('.') || name.endsWith('.lock')) return false;
  if (name.includes('..') || name.includes('//') || name.includes('@{') || name === '@') return false;
  if (hasControl(name, true) || /[~^:?*[\\]/.test(name)) return false;
  return name.split('/').every((part) => part.length > 0 && !part.startsWith('.'));
}

function validAssetName(name: string): boolean {
  return name.length > 0 && name.length <= 255 && name !== '.' && name !== '..' && !hasControl(name, false) && !/[/\\]/.test(name);
}

const enc = (s: string): string => s.split('/').map(encodeURIComponent).join('/');

function nodeId(prefix: string, value: string | number): string {
  return `${prefix}_kwLAB${Buffer.from(String(value)).toString('base64url')}`;
}

export const LAB_USER = 'release-lab';

function userJson(c: Call): Record<string, unknown> {
  return {
    login: LAB_USER,
    id: 1,
    node_id: nodeId('U', 1),
    avatar_url: `${c.web}/avatars/u/1`,
    gravatar_id: '',
    url: `${c.api}/users/${LAB_USER}`,
    html_url: `${c.web}/${LAB_USER}`,
    type: 'User',
    user_view_type: 'public',
    site_admin: false,
  };
}

function tagPart(rel: ReleaseRecord): string {
  return rel.draft ? rel.untagged : rel.tag_name;
}

function assetJson(c: Call, rel: ReleaseRecord, a: AssetRecord): Record<string, unknown> {
  return {
    url: `${c.api}/repos/${rel.owner}/${rel.repo}/releases/assets/${a.id}`,
    id: a.id,
    node_id: nodeId('RA', a.id),
    name: a.name,
    label: a.label,
    uploader: userJson(c),
    content_type: a.content_type,
    state: 'uploaded',
    size: a.size,
    digest: a.digest,
    download_count: a.download_count,
    created_at: a.created_at,
    updated_at: a.updated_at,
    browser_download_url: `${c.web}/${rel.owner}/${rel.repo}/releases/download/${enc(tagPart(rel))}/${encodeURIComponent(a.name)}`,
  };
}

function releaseJson(c: Call, rel: ReleaseRecord): Record<string, unknown> {
  const repoApi = `${c.api}/repos/${rel.owner}/${rel.repo}`;
  return {
    url: `${repoApi}/releases/${rel.id}`,
    assets_url: `${repoApi}/releases/${rel.id}/assets`,
    upload_url: `${repoApi}/releases/${rel.id}/assets{?name,label}`,
    html_url: `${c.web}/${rel.owner}/${rel.repo}/releases/tag/${enc(tagPart(rel))}`,
    id: rel.id,
    author: userJson(c),
    node_id: nodeId('RE', rel.id),
    tag_name: rel.tag_name,
    target_commitish: rel.target_commitish,
    name: rel.name,
    draft: rel.draft,
    immutable: rel.immutable,
    prerelease: rel.prerelease,
    created_at: rel.created_at,
    updated_at: rel.updated_at,
    published_at: rel.published_at,
    assets: rel.assets.map((a) => assetJson(c, rel, a)),
    tarball_url: rel.draft ? null : `${repoApi}/tarball/${enc(rel.tag_name)}`,
    zipball_url: rel.draft ? null : `${repoApi}/zipball/${enc(rel.tag_name)}`,
    body: rel.body,
  };
}

function refJson(c: Call, r: TypedRef): Record<string, unknown> {
  return {
    ref: r.ref,
    node_id: nodeId('REF', `${r.owner}/${r.repo}:${r.ref}`),
    url: `${c.api}/repos/${r.owner}/${r.repo}/git/${enc(r.ref)}`,
    object: { sha: r.sha, type: r.type, url: `${c.api}/repos/${r.owner}/${r.repo}/git/${r.type}s/${r.sha}` },
  };
}

function tagJson(c: Call, t: TagRecord): Record<string, unknown> {
  const objectKind = t.object.type === 'tag' ? 'tags' : `${t.object.type}s`;
  return {
    node_id: nodeId('TAG', t.sha),
    tag: t.tag,
    sha: t.sha,
    url: `${c.api}/repos/${t.owner}/${t.repo}/git/tags/${t.sha}`,
    message: t.message,
    tagger: t.tagger,
    object: { sha: t.object.sha, type: t.object.type, url: `${c.api}/repos/${t.owner}/${t.repo}/git/${objectKind}/${t.object.sha}` },
    verification: { verified: false, reason: 'unsigned', signature: null, payload: null, verified_at: null },
  };
}

/** Slices a list for `?per_page=&page=` and sets GitHub's `Link` header. */
function paginate<T>(c: Call, items: T[]): T[] {
  const per = Math.min(100, Math.max(1, Number.parseInt(c.url.searchParams.get('per_page') ?? '', 10) || 30));
  const page = Math.max(1, Number.parseInt(c.url.searchParams.get('page') ?? '', 10) || 1);
  const last = Math.max(1, Math.ceil(items.length / per));
  const link = (p: number, rel: string): string => {
    const u = new URL(`${c.web}${c.url.pathname}${c.url.search}`);
    u.searchParams.set('per_page', String(per));
    u.searchParams.set('page', String(p));
    return `<${u.toString()}>; rel="${rel}"`;
  };
  const links: string[] = [];
  if (page > 1) links.push(link(Math.min(page - 1, last), 'prev'));
  if (page < last) links.push(link(page + 1, 'next'), link(last, 'last'));
  if (page > 1) links.push(link(1, 'first'));
  if (links.length) c.res.setHeader('link', links.join(', '));
  return items.slice((page - 1) * per, page * per);
}

interface RouteOptions {
  /** Needs the lab token (a write). */
  write?: boolean;
  /** Counted against the `core` limit (default), `graphql`, or not at all. */
  resource?: 'core' | 'graphql' | false;
  /** Path prefixes to serve at; default the root and `/api/v3`. */
  prefixes?: string[];
}

/** The most path segments a rest-of-path parameter (`:name+`) takes. */
const REST_DEPTH = 16;

/** The GitHub REST routes a release needs, on `ctx.service`. */
export function registerGithubApi(ctx: ApiContext): void {
  const { service, store } = ctx;
  const limits = new RateLimits();

  /**
   * `service.route`, plus a rest-of-path parameter written `:name+` at the end of a pattern (tags
   * and refs may hold slashes). Such a route is registered once per depth, up to REST_DEPTH
   * segments, with plain parameters only, and the parts are joined again: it does not depend on
   * how the harness treats wildcards.
   */
  function route(method: string, pattern: string, handler: Handler): void {
    const m = /:(\w+)\+$/.exec(pattern);
    if (!m) {
      service.route(method, pattern, handler);
      return;
    }
    const key = m[1] as string;
    for (let depth = 1; depth <= REST_DEPTH; depth += 1) {
      const parts = Array.from({ length: depth }, (_v, i) => `${key}__${i}`);
      service.route(method, `${pattern.slice(0, m.index)}${parts.map((p) => `:${p}`).join('/')}`, (req, res, params, url) => {
        const joined: Record<string, string> = {};
        for (const [k, v] of Object.entries(params)) if (!k.startsWith(`${key}__`)) joined[k] = v;
        joined[key] = parts.map((p) => params[p]).join('/');
        return handler(req, res, joined, url);
      });
    }
  }

  function api(method: string, pattern: string, handler: (c: Call) => Promise<void> | void, options: RouteOptions = {}): void {
    for (const prefix of options.prefixes ?? ['', '/api/v3']) {
      route(method, `${prefix}${pattern}`, async (req, res, params, url) => {
        const who = credentials(req, ctx.token);
        const resource = options.resource ?? 'core';
        const rate = limits.headers(who === 'ok' ? 'token' : 'anonymous', who === 'ok' ? 5000 : 60, resource || 'core', resource !== false);
        for (const [k, v] of Object.entries(rate)) res.setHeader(k, v);
        res.setHeader('x-github-media-type', 'github.v3; format=json');
        res.setHeader('x-github-api-version-selected', '2022-11-28');
        res.setHeader('x-github-request-id', randomBytes(8).toString('hex').toUpperCase());
        const c: Call = { req, res, params, url, api: `${service.url}${prefix}`, web: service.url, authed: who === 'ok' };
        try {
          if (who === 'bad') throw new GithubAnswer(401, 'Bad credentials');
          if (options.write && who !== 'ok') throw new GithubAnswer(401, 'Requires authentication');
          await handler(c);
        } catch (err) {
          if (!(err instanceof GithubAnswer) || res.headersSent) throw err;
          await drain(req);
          sendJson(res, err.status, err.body);
        }
      });
    }
  }

  const releasesOf = (owner: string, repo: string): ReleaseRecord[] => store.releases.filter((r) => sameRepo(r, owner, repo));
  const refOf = (owner: string, repo: string, ref: string): RefRecord | undefined => store.refs.find((r) => sameRepo(r, owner, repo) && r.ref === ref);

  /**
   * The refs of a repository, typed. A repository with a bare git repository (seeded or created
   * through the lab) is read from git; the others from the refs made through this API.
   */
  async function typedRefs(owner: string, repo: string): Promise<TypedRef[]> {
    const backed = ctx.repos.find(owner, repo);
    if (backed) return (await ctx.repos.refs(owner, repo)).map((r) => ({ owner: backed.owner, repo: backed.repo, ...r }));
    return store.refs.filter((r) => sameRepo(r, owner, repo)).map((r) => ({ ...r, type: store.tags.some((t) => sameRepo(t, owner, repo) && t.sha === r.sha) ? 'tag' : 'commit' }));
  }

  async function typedRef(owner: string, repo: string, ref: string): Promise<TypedRef | undefined> {
    return (await typedRefs(owner, repo)).find((r) => r.ref === ref);
  }

  function release(c: Call): ReleaseRecord {
    const { owner = '', repo = '', id = '' } = c.params;
    const rel = /^\d+$/.test(id) ? releasesOf(owner, repo).find((r) => r.id === Number(id)) : undefined;
    if (!rel || (rel.draft && !c.authed)) throw notFound(DOC.releases);
    return rel;
  }

  function asset(c: Call): { rel: ReleaseRecord; asset: AssetRecord } {
    const { owner = '', repo = '', asset_id: id = '' } = c.params;
    if (!/^\d+$/.test(id)) throw notFound(DOC.assets);
    for (const rel of releasesOf(owner, repo)) {
      const a = rel.assets.find((x) => x.id === Number(id));
      if (a && (!rel.draft || c.authed)) return { rel, asset: a };
    }
    throw notFound(DOC.assets);
  }

  function lockedRelease(rel: ReleaseRecord): boolean {
    return rel.immutable && !rel.draft;
  }

  /** The commit a release's target names: a sha as is, a known branch or tag, or a stand-in commit. */
  function resolveCommitish(owner: string, repo: string, commitish: string): string {
    if (SHA_RE.test(commitish)) return commitish;
    const ref = refOf(owner, repo, `refs/heads/${commitish}`) ?? refOf(owner, repo, `refs/tags/${commitish}`);
    return ref ? ref.sha : syntheticCommit(owner, repo, commitish);
  }

  /**
   * Makes sure the tag of a release being published exists, as GitHub does on publishing: a tag
   * already there (pushed with git, or made through this API) is used as it is; otherwise a
   * lightweight tag is made at the release's target. In a repository with a bare git repository,
   * the tag is written there, and a target that names no commit of it is refused (nothing written).
   */
  async function ensureTagRef(rel: { owner: string; repo: string; tag_name: string; target_commitish: string }, doc: string): Promise<void> {
    const ref = `refs/tags/${rel.tag_name}`;
    if (!ctx.repos.find(rel.owner, rel.repo)) {
      if (!refOf(rel.owner, rel.repo, ref)) store.refs.push({ owner: rel.owner, repo: rel.repo, ref, sha: resolveCommitish(rel.owner, rel.repo, rel.target_commitish) });
      return;
    }
    if (await typedRef(rel.owner, rel.repo, ref)) return;
    const commit = await ctx.repos.resolveCommit(rel.owner, rel.repo, rel.target_commitish);
    if (!commit) throw validation(doc, { resource: 'Release', code: 'invalid', field: 'target_commitish' });
    // a tag pushed meanwhile wins, as it would on GitHub
    if (!(await ctx.repos.updateRef(rel.owner, rel.repo, ref, commit, ZERO_SHA)) && !(await typedRef(rel.owner, rel.repo, ref))) {
      throw new GithubAnswer(422, `Could not create the tag ${rel.tag_name}.`, { doc });
    }
  }

  /** Tells a git repository which tags a push may not move or delete: those of immutable releases. */
  async function protectTags(owner: string, repo: string): Promise<void> {
    if (!ctx.immutableReleases || !ctx.repos.find(owner, repo)) return;
    await ctx.repos.protect(owner, repo, releasesOf(owner, repo).filter(lockedRelease).map((r) => `refs/tags/${r.tag_name}`));
  }

  /** Marks a release published; its tag must exist already (ensureTagRef). */
  function publish(rel: ReleaseRecord): void {
    rel.draft = false;
    rel.published_at = now();
    if (ctx.immutableReleases) rel.immutable = true;
    if (!rel.prerelease && rel.make_latest !== 'false') store.latest[repoKey(rel.owner, rel.repo)] = rel.id;
  }

  function makeLatest(body: Record<string, unknown>, doc: string): 'true' | 'false' | 'legacy' | undefined {
    const v = typed<string>(body, 'make_latest', 'string', doc);
    if (v === undefined) return undefined;
    if (v !== 'true' && v !== 'false' && v !== 'legacy') throw validation(doc, { resource: 'Release', code: 'invalid', field: 'make_latest' });
    return v;
  }

  function tagTaken(rel: { owner: string; repo: string; id?: number }, tag: string): boolean {
    return releasesOf(rel.owner, rel.repo).some((r) => r.id !== rel.id && r.tag_name === tag);
  }

  // --- releases ---------------------------------------------------------------------------------

  api(
    'POST',
    '/repos/:owner/:repo/releases',
    async (c) => {
      const { owner = '', repo = '' } = c.params;
      const body = await jsonBody(c.req);
      const tag = typed<string>(body, 'tag_name', 'string', DOC.createRelease);
      if (!tag) throw validation(DOC.createRelease, { resource: 'Release', code: 'missing_field', field: 'tag_name' });
      if (!validRefName(tag)) throw validation(DOC.createRelease, { resource: 'Release', code: 'invalid', field: 'tag_name' });
      const target = typed<string>(body, 'target_commitish', 'string', DOC.createRelease) || 'main';
      const name = typed<string>(body, 'name', 'string', DOC.createRelease) ?? null;
      const text = typed<string>(body, 'body', 'string', DOC.createRelease) ?? null;
      const draft = typed<boolean>(body, 'draft', 'boolean', DOC.createRelease) ?? false;
      const prerelease = typed<boolean>(body, 'prerelease', 'boolean', DOC.createRelease) ?? false;
      const latest = makeLatest(body, DOC.createRelease) ?? 'true';
      if (tagTaken({ owner, repo }, tag)) throw validation(DOC.createRelease, { resource: 'Release', code: 'already_exists', field: 'tag_name' });
      const stamp = now();
      const rel: ReleaseRecord = {
        id: store.nextId(),
        owner,
        repo,
        tag_name: tag,
        target_commitish: target,
        name,
        body: text,
        draft: true,
        prerelease,
        immutable: false,
        untagged: store.untaggedName(),
        make_latest: latest,
        created_at: stamp,
        updated_at: stamp,
        published_at: null,
        assets: [],
      };
      if (!draft) {
        await ensureTagRef(rel, DOC.createRelease);
        publish(rel);
      }
      store.releases.push(rel);
      await store.save();
      await protectTags(owner, repo);
      const json = releaseJson(c, rel);
      sendJson(c.res, 201, json, { location: json.url as string });
    },
    { write: true },
  );

  api('GET', '/repos/:owner/:repo/releases', (c) => {
    const { owner = '', repo = '' } = c.params;
    const visible = releasesOf(owner, repo)
      .filter((r) => c.authed || !r.draft)
      .sort((a, b) => b.created_at.localeCompare(a.created_at) || b.id - a.id);
    sendJson(c.res, 200, paginate(c, visible).map((r) => releaseJson(c, r)));
  });

  api('GET', '/repos/:owner/:repo/releases/latest', (c) => {
    const { owner = '', repo = '' } = c.params;
    const published = releasesOf(owner, repo).filter((r) => !r.draft && !r.prerelease);
    const marked = published.find((r) => r.id === store.latest[repoKey(owner, repo)]);
    const rel = marked ?? published.sort((a, b) => (b.published_at ?? '').localeCompare(a.published_at ?? '') || b.id - a.id)[0];
    if (!rel) throw notFound(DOC.releases);
    sendJson(c.res, 200, releaseJson(c, rel));
  });

  api('GET', '/repos/:owner/:repo/releases/tags/:tag+', (c) => {
    const { owner = '', repo = '', tag = '' } = c.params;
    // as on GitHub, a draft is not found by its tag
    const rel = releasesOf(owner, repo).find((r) => !r.draft && r.tag_name === tag);
    if (!rel) throw notFound(DOC.releases);
    sendJson(c.res, 200, releaseJson(c, rel));
  });

  // --- assets (before /releases/:id, whose pattern would also match) ------------------------------

  api('GET', '/repos/:owner/:repo/releases/assets/:asset_id', async (c) => {
    const { rel, asset: a } = asset(c);
    const accept = c.req.headers.accept ?? '';
    if (!/application\/octet-stream/i.test(accept)) {
      sendJson(c.res, 200, assetJson(c, rel, a));
      return;
    }
    await sendAsset(c.res, rel, a);
  });

  api(
    'PATCH',
    '/repos/:owner/:repo/releases/assets/:asset_id',
    async (c) => {
      const { rel, asset: a } = asset(c);
      const body = await jsonBody(c.req);
      const doc = `${DOCS}/releases/assets#update-a-release-asset`;
      const name = typed<string>(body, 'name', 'string', doc);
      const label = typed<string>(body, 'label', 'string', doc);
      if (lockedRelease(rel)) throw new GithubAnswer(422, 'Cannot modify an asset of an immutable release.', { doc });
      if (name !== undefined && name !== a.name) {
        if (!validAssetName(name)) throw validation(doc, { resource: 'ReleaseAsset', code: 'invalid', field: 'name' });
        if (rel.assets.some((x) => x.name === name)) throw validation(doc, { resource: 'ReleaseAsset', code: 'already_exists', field: 'name' });
        a.name = name;
      }
      if (label !== undefined) a.label = label;
      a.updated_at = now();
      await store.save();
      sendJson(c.res, 200, assetJson(c, rel, a));
    },
    { write: true },
  );

  api(
    'DELETE',
    '/repos/:owner/:repo/releases/assets/:asset_id',
    async (c) => {
      const { rel, asset: a } = asset(c);
      if (lockedRelease(rel)) throw new GithubAnswer(422, 'Cannot delete an asset of an immutable release.', { doc: `${DOCS}/releases/assets#delete-a-release-asset` });
      rel.assets = rel.assets.filter((x) => x.id !== a.id);
      await store.save();
      await rm(store.assetFile(a.id), { force: true });
      c.res.writeHead(204).end();
    },
    { write: true },
  );

  api('GET', '/repos/:owner/:repo/releases/:id/assets', (c) => {
    const rel = release(c);
    sendJson(c.res, 200, paginate(c, [...rel.assets]).map((a) => assetJson(c, rel, a)));
  });

  api(
    'POST',
    '/repos/:owner/:repo/releases/:id/assets',
    async (c) => {
      const rel = release(c);
      const name = c.url.searchParams.get('name');
      const label = c.url.searchParams.get('label') ?? '';
      if (!name) throw validation(DOC.uploadAsset, { resource: 'ReleaseAsset', code: 'missing_field', field: 'name' });
      if (!validAssetName(name)) throw validation(DOC.uploadAsset, { resource: 'ReleaseAsset', code: 'invalid', field: 'name' });
      const refuse = (): void => {
        if (lockedRelease(rel)) throw new GithubAnswer(422, 'Cannot upload assets to an immutable release.', { doc: DOC.uploadAsset });
        if (rel.assets.some((a) => a.name === name)) throw validation(DOC.uploadAsset, { resource: 'ReleaseAsset', code: 'already_exists', field: 'name' });
      };
      refuse();
      const id = store.nextId();
      const part = store.partFile(id);
      const meter = hashingPassThrough();
      try {
        // streamed to disk: the body is never held in memory whole
        await pipeline(c.req, meter.stream, createWriteStream(part, { flags: 'wx' }));
        // the release may have changed while the bytes came in
        if (!store.releases.includes(rel)) throw notFound(DOC.releases);
        refuse();
        await rename(part, store.assetFile(id));
      } catch (err) {
        await rm(part, { force: true });
        throw err;
      }
      const stamp = now();
      const a: AssetRecord = {
        id,
        name,
        label,
        content_type: (c.req.headers['content-type'] ?? 'application/octet-stream').trim() || 'application/octet-stream',
        size: meter.result().size,
        digest: `sha256:${meter.result().sha256}`,
        download_count: 0,
        created_at: stamp,
        updated_at: stamp,
      };
      rel.assets.push(a);
      await store.save();
      sendJson(c.res, 201, assetJson(c, rel, a));
    },
    { write: true },
  );

  api('GET', '/repos/:owner/:repo/releases/:id', (c) => {
    sendJson(c.res, 200, releaseJson(c, release(c)));
  });

  api(
    'PATCH',
    '/repos/:owner/:repo/releases/:id',
    async (c) => {
      const rel = release(c);
      const body = await jsonBody(c.req);
      const doc = DOC.updateRelease;
      const tag = typed<string>(body, 'tag_name', 'string', doc);
      const target = typed<string>(body, 'target_commitish', 'string', doc);
      const name = typed<string>(body, 'name', 'string', doc);
      const text = typed<string>(body, 'body', 'string', doc);
      const draft = typed<boolean>(body, 'draft', 'boolean', doc);
      const prerelease = typed<boolean>(body, 'prerelease', 'boolean', doc);
      const latest = makeLatest(body, doc);
      if (lockedRelease(rel)) {
        if ((tag !== undefined && tag !== rel.tag_name) || (target !== undefined && target !== rel.target_commitish) || draft === true) {
          throw new GithubAnswer(422, 'Cannot change the tag, target or draft state of an immutable release.', { doc });
        }
      }
      const retag = tag !== undefined && tag !== rel.tag_name;
      if (retag) {
        if (!validRefName(tag)) throw validation(doc, { resource: 'Release', code: 'invalid', field: 'tag_name' });
        if (tagTaken(rel, tag)) throw validation(doc, { resource: 'Release', code: 'already_exists', field: 'tag_name' });
      }
      // the tag is made before anything changes, so a refused target leaves the release as it was
      if ((retag && !rel.draft) || (draft === false && rel.draft)) await ensureTagRef({ owner: rel.owner, repo: rel.repo, tag_name: tag ?? rel.tag_name, target_commitish: target || rel.target_commitish }, doc);
      if (retag) rel.tag_name = tag;
      if (target) rel.target_commitish = target;
      if ('name' in body) rel.name = name ?? null;
      if ('body' in body) rel.body = text ?? null;
      if (prerelease !== undefined) rel.prerelease = prerelease;
      if (latest !== undefined) rel.make_latest = latest;
      if (draft === false && rel.draft) publish(rel);
      else if (draft === true && !rel.draft) {
        rel.draft = true;
        rel.published_at = null;
      }
      if (latest === 'true' && !rel.draft && !rel.prerelease) store.latest[repoKey(rel.owner, rel.repo)] = rel.id;
      rel.updated_at = now();
      await store.save();
      await protectTags(rel.owner, rel.repo);
      sendJson(c.res, 200, releaseJson(c, rel));
    },
    { write: true },
  );

  api(
    'DELETE',
    '/repos/:owner/:repo/releases/:id',
    async (c) => {
      const rel = release(c);
      store.releases.splice(store.releases.indexOf(rel), 1);
      const key = repoKey(rel.owner, rel.repo);
      if (store.latest[key] === rel.id) delete store.latest[key];
      await store.save();
      await protectTags(rel.owner, rel.repo);
      for (const a of rel.assets) await rm(store.assetFile(a.id), { force: true });
      c.res.writeHead(204).end();
    },
    { write: true },
  );

  // --- git refs and tag objects -----------------------------------------------------------------
  // For a repository with a bare git repository, git is the one source of truth: refs are read
  // with for-each-ref and written with update-ref (compare-and-swap), tag objects are made with
  // mktag and read with cat-file. A tag pushed with git is what this API reports, and a ref made
  // here is what `git fetch` gets.

  function immutableTag(owner: string, repo: string, ref: string): boolean {
    return ref.startsWith('refs/tags/') && releasesOf(owner, repo).some((r) => lockedRelease(r) && `refs/tags/${r.tag_name}` === ref);
  }

  async function createdRef(c: Call, owner: string, repo: string, ref: string): Promise<void> {
    const json = refJson(c, (await typedRef(owner, repo, ref)) as TypedRef);
    sendJson(c.res, 201, json, { location: json.url as string });
  }

  api(
    'POST',
    '/repos/:owner/:repo/git/refs',
    async (c) => {
      const { owner = '', repo = '' } = c.params;
      const body = await jsonBody(c.req);
      const ref = typed<string>(body, 'ref', 'string', DOC.createRef);
      const sha = typed<string>(body, 'sha', 'string', DOC.createRef);
      if (!ref || !ref.startsWith('refs/') || ref.split('/').length < 3 || !validRefName(ref)) {
        throw new GithubAnswer(422, "Reference name must start with 'refs/' and have at least two slashes.", { doc: DOC.createRef });
      }
      if (!sha || !SHA_RE.test(sha)) throw new GithubAnswer(422, 'Object does not exist', { doc: DOC.createRef });
      if (await typedRef(owner, repo, ref)) throw new GithubAnswer(422, 'Reference already exists', { doc: DOC.createRef });
      if (ctx.repos.find(owner, repo)) {
        if (!(await ctx.repos.objectType(owner, repo, sha))) throw new GithubAnswer(422, 'Object does not exist', { doc: DOC.createRef });
        if (!(await ctx.repos.updateRef(owner, repo, ref, sha, ZERO_SHA))) {
          if (await typedRef(owner, repo, ref)) throw new GithubAnswer(422, 'Reference already exists', { doc: DOC.createRef });
          // git refuses, e.g., a branch that would name a tag object
          throw new GithubAnswer(422, `Reference cannot be created: ${ref} may not point at ${sha}`, { doc: DOC.createRef });
        }
        await createdRef(c, owner, repo, ref);
        return;
      }
      store.refs.push({ owner, repo, ref, sha });
      await store.save();
      await createdRef(c, owner, repo, ref);
    },
    { write: true },
  );

  api('GET', '/repos/:owner/:repo/git/ref/:ref+', async (c) => {
    const { owner = '', repo = '', ref = '' } = c.params;
    const r = await typedRef(owner, repo, `refs/${ref}`);
    if (!r) throw notFound(DOC.refs);
    sendJson(c.res, 200, refJson(c, r));
  });

  const sortedRefs = async (owner: string, repo: string, prefix: string): Promise<TypedRef[]> =>
    (await typedRefs(owner, repo)).filter((r) => r.ref.startsWith(prefix)).sort((a, b) => a.ref.localeCompare(b.ref));

  api('GET', '/repos/:owner/:repo/git/refs', async (c) => {
    const { owner = '', repo = '' } = c.params;
    sendJson(c.res, 200, paginate(c, await sortedRefs(owner, repo, 'refs/')).map((r) => refJson(c, r)));
  });

  api('GET', '/repos/:owner/:repo/git/matching-refs/:ref+', async (c) => {
    const { owner = '', repo = '', ref = '' } = c.params;
    sendJson(c.res, 200, paginate(c, await sortedRefs(owner, repo, `refs/${ref}`)).map((r) => refJson(c, r)));
  });

  // the older form: one ref when the name is exact, the refs under it when it is a folder
  api('GET', '/repos/:owner/:repo/git/refs/:ref+', async (c) => {
    const { owner = '', repo = '', ref = '' } = c.params;
    const exact = await typedRef(owner, repo, `refs/${ref}`);
    if (exact) {
      sendJson(c.res, 200, refJson(c, exact));
      return;
    }
    const under = await sortedRefs(owner, repo, `refs/${ref.replace(/\/$/, '')}/`);
    if (!under.length) throw notFound(DOC.refs);
    sendJson(c.res, 200, under.map((r) => refJson(c, r)));
  });

  api(
    'PATCH',
    '/repos/:owner/:repo/git/refs/:ref+',
    async (c) => {
      const { owner = '', repo = '', ref = '' } = c.params;
      const body = await jsonBody(c.req);
      const doc = `${DOCS}/git/refs#update-a-reference`;
      const sha = typed<string>(body, 'sha', 'string', doc);
      const force = typed<boolean>(body, 'force', 'boolean', doc) ?? false;
      const r = await typedRef(owner, repo, `refs/${ref}`);
      if (!r) throw new GithubAnswer(422, 'Reference does not exist', { doc });
      if (!sha || !SHA_RE.test(sha)) throw new GithubAnswer(422, 'Object does not exist', { doc });
      if (immutableTag(owner, repo, r.ref) && sha !== r.sha) throw new GithubAnswer(422, 'Cannot move the tag of an immutable release.', { doc });
      if (ctx.repos.find(owner, repo)) {
        const type = await ctx.repos.objectType(owner, repo, sha);
        if (!type) throw new GithubAnswer(422, 'Object does not exist', { doc });
        if (!force && r.type === 'commit' && type === 'commit' && !(await ctx.repos.isAncestor(owner, repo, r.sha, sha))) {
          throw new GithubAnswer(422, 'Update is not a fast forward', { doc });
        }
        // compare-and-swap: a push that moved the ref meanwhile makes this fail rather than be lost
        if (!(await ctx.repos.updateRef(owner, repo, r.ref, sha, r.sha))) throw new GithubAnswer(422, `Reference cannot be updated: ${r.ref} moved or may not point at ${sha}`, { doc });
        sendJson(c.res, 200, refJson(c, (await typedRef(owner, repo, r.ref)) as TypedRef));
        return;
      }
      const stored = refOf(owner, repo, r.ref) as RefRecord;
      stored.sha = sha;
      await store.save();
      sendJson(c.res, 200, refJson(c, (await typedRef(owner, repo, r.ref)) as TypedRef));
    },
    { write: true },
  );

  api(
    'DELETE',
    '/repos/:owner/:repo/git/refs/:ref+',
    async (c) => {
      const { owner = '', repo = '', ref = '' } = c.params;
      const doc = `${DOCS}/git/refs#delete-a-reference`;
      const r = await typedRef(owner, repo, `refs/${ref}`);
      if (!r) throw new GithubAnswer(422, 'Reference does not exist', { doc });
      if (immutableTag(owner, repo, r.ref)) throw new GithubAnswer(422, 'Cannot delete the tag of an immutable release.', { doc });
      if (ctx.repos.find(owner, repo)) {
        if (!(await ctx.repos.updateRef(owner, repo, r.ref, undefined, r.sha))) throw new GithubAnswer(422, `Reference cannot be deleted: ${r.ref} moved meanwhile`, { doc });
      } else {
        store.refs.splice(store.refs.indexOf(refOf(owner, repo, r.ref) as RefRecord), 1);
        await store.save();
      }
      c.res.writeHead(204).end();
    },
    { write: true },
  );

  api(
    'POST',
    '/repos/:owner/:repo/git/tags',
    async (c) => {
      const { owner = '', repo = '' } = c.params;
      const doc = `${DOCS}/git/tags#create-a-tag-object`;
      const body = await jsonBody(c.req);
      const tag = typed<string>(body, 'tag', 'string', doc);
      const message = typed<string>(body, 'message', 'string', doc);
      const object = typed<string>(body, 'object', 'string', doc);
      const type = typed<string>(body, 'type', 'string', doc);
      for (const [field, v] of Object.entries({ tag, message, object, type })) {
        if (v === undefined) throw validation(doc, { resource: 'Tag', code: 'missing_field', field });
      }
      if (!validRefName(tag as string)) throw validation(doc, { resource: 'Tag', code: 'invalid', field: 'tag' });
      if (!['commit', 'tree', 'blob', 'tag'].includes(type as string)) throw validation(doc, { resource: 'Tag', code: 'invalid', field: 'type' });
      if (!SHA_RE.test(object as string)) throw new GithubAnswer(422, 'Object does not exist', { doc });
      const rawTagger = body.tagger;
      if (rawTagger !== undefined && (typeof rawTagger !== 'object' || rawTagger === null || Array.isArray(rawTagger))) {
        throw new GithubAnswer(422, `Invalid request.\n\nFor 'properties/tagger', ${JSON.stringify(rawTagger)} is not an object.`, { doc });
      }
      const given = (rawTagger ?? {}) as Record<string, unknown>;
      const tagger = {
        name: typeof given.name === 'string' && given.name ? given.name : 'Release Lab',
        email: typeof given.email === 'string' && given.email ? given.email : `${LAB_USER}@users.noreply.localhost`,
        date: typeof given.date === 'string' && given.date ? given.date : now(),
      };
      if (Number.isNaN(Date.parse(tagger.date))) throw validation(doc, { resource: 'Tag', code: 'invalid', field: 'tagger.date' });
      if (/[<>\n]/.test(tagger.name) || /[<>\n]/.test(tagger.email)) throw validation(doc, { resource: 'Tag', code: 'invalid', field: 'tagger' });
      // like GitHub, the stored message ends with a newline
      const text = (message as string).endsWith('\n') ? (message as string) : `${message as string}\n`;
      const objectText = tagObjectText({ object: object as string, type: type as string, tag: tag as string, tagger, message: text });
      const backed = ctx.repos.find(owner, repo);
      if (backed) {
        const actual = await ctx.repos.objectType(owner, repo, object as string);
        if (!actual) throw new GithubAnswer(422, 'Object does not exist', { doc });
        if (actual !== type) throw validation(doc, { resource: 'Tag', code: 'invalid', field: 'type' });
        const written = (await ctx.repos.tagObject(owner, repo, await ctx.repos.writeTag(owner, repo, objectText))) as TagRecord;
        const json = tagJson(c, { ...written, owner: backed.owner, repo: backed.repo });
        sendJson(c.res, 201, json, { location: json.url as string });
        return;
      }
      const sha = gitObjectSha('tag', objectText);
      let t = store.tags.find((x) => sameRepo(x, owner, repo) && x.sha === sha);
      if (!t) {
        t = { owner, repo, sha, tag: tag as string, message: text, object: { sha: object as string, type: type as string }, tagger };
        store.tags.push(t);
        await store.save();
      }
      const json = tagJson(c, t);
      sendJson(c.res, 201, json, { location: json.url as string });
    },
    { write: true },
  );

  api('GET', '/repos/:owner/:repo/git/tags/:sha', async (c) => {
    const { owner = '', repo = '', sha = '' } = c.params;
    const backed = ctx.repos.find(owner, repo);
    const t = backed ? await ctx.repos.tagObject(owner, repo, sha.toLowerCase()) : store.tags.find((x) => sameRepo(x, owner, repo) && x.sha === sha.toLowerCase());
    if (!t) throw notFound(DOC.tags);
    sendJson(c.res, 200, tagJson(c, backed ? { ...t, owner: backed.owner, repo: backed.repo } : t));
  });

  // --- repositories with git (seeded or created through the lab) ------------------------------

  api('GET', '/repos/:owner/:repo', (c) => {
    const { owner = '', repo = '' } = c.params;
    const r = ctx.repos.find(owner, repo);
    if (!r) throw notFound(`${DOCS}/repos/repos#get-a-repository`);
    const id = store.repositories.indexOf(r) + 1;
    const web = `${c.web}/${r.owner}/${r.repo}`;
    sendJson(c.res, 200, {
      id,
      node_id: nodeId('R', id),
      name: r.repo,
      full_name: `${r.owner}/${r.repo}`,
      owner: { ...userJson(c), login: r.owner, url: `${c.api}/users/${r.owner}`, html_url: `${c.web}/${r.owner}` },
      private: false,
      visibility: 'public',
      fork: false,
      archived: false,
      disabled: false,
      html_url: web,
      url: `${c.api}/repos/${r.owner}/${r.repo}`,
      clone_url: `${web}.git`,
      default_branch: r.default_branch,
      created_at: r.created_at,
      ...(c.authed ? { permissions: { admin: true, maintain: true, push: true, triage: true, pull: true } } : {}),
    });
  });

  // --- downloads, the rest, and what the stand-in does not serve --------------------------------

  async function sendAsset(res: ServerResponse, rel: ReleaseRecord, a: AssetRecord): Promise<void> {
    a.download_count += 1;
    await store.save();
    const ascii = a.name.replace(/[^\x20-\x7e]|["\\]/g, '_');
    res.writeHead(200, {
      'content-type': 'application/octet-stream',
      'content-length': String(a.size),
      'content-disposition': `attachment; filename="${ascii}"; filename*=UTF-8''${encodeURIComponent(a.name)}`,
      'last-modified': new Date(a.updated_at).toUTCString(),
    });
    await pipeline(createReadStream(store.assetFile(a.id)), res);
  }

  // browser_download_url: the web host, no API rate limit; drafts only for the token holder
  route('GET', '/:owner/:repo/releases/download/:path+', async (req, res, params) => {
    const { owner = '', repo = '', path = '' } = params;
    const cut = path.lastIndexOf('/');
    const tag = path.slice(0, cut);
    const name = path.slice(cut + 1);
    const authed = credentials(req, ctx.token) === 'ok';
    const rel = releasesOf(owner, repo).find((r) => (!r.draft && r.tag_name === tag) || (r.draft && authed && r.untagged === tag));
    const a = cut > 0 ? rel?.assets.find((x) => x.name === name) : undefined;
    if (!rel || !a) {
      res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not Found');
      return;
    }
    await sendAsset(res, rel, a);
  });

  api(
    'GET',
    '/rate_limit',
    (c) => {
      const who = c.authed ? 'token' : 'anonymous';
      const limit = c.authed ? 5000 : 60;
      const core = limits.snapshot(who, limit, 'core');
      const graphql = limits.snapshot(who, c.authed ? 5000 : 0, 'graphql');
      const { resource: _core, ...rate } = core;
      sendJson(c.res, 200, { resources: { core: rate, graphql: (({ resource: _g, ...g }) => g)(graphql) }, rate });
    },
    { resource: false },
  );

  api('GET', '/user', (c) => {
    if (!c.authed) throw new GithubAnswer(401, 'Requires authentication', { doc: `${DOCS}/users/users#get-the-authenticated-user` });
    sendJson(c.res, 200, userJson(c));
  });

  /**
   * GraphQL: only the query gh runs next to its REST lookup of a release by tag
   * (`repository(owner:, name:) { release(tagName:) { databaseId isDraft } }`), which is how gh
   * finds draft releases. gh races the two lookups and takes the first answer that is not "not
   * found", so an HTTP error here would break gh whenever it came first.
   */
  async function graphql(c: Call): Promise<void> {
    if (!c.authed) throw new GithubAnswer(401, 'This endpoint requires you to be authenticated.', { doc: `${DOC.graphql}/guides/forming-calls-with-graphql#authenticating-with-graphql` });
    const body = await jsonBody(c.req);
    const query = typeof body.query === 'string' ? body.query : '';
    const vars = (body.variables && typeof body.variables === 'object' ? body.variables : {}) as Record<string, unknown>;
    const arg = '(\\$\\w+|"[^"]*")';
    const m = new RegExp(`repository\\s*\\(\\s*owner\\s*:\\s*${arg}\\s*,?\\s*name\\s*:\\s*${arg}\\s*\\)\\s*\\{\\s*release\\s*\\(\\s*tagName\\s*:\\s*${arg}\\s*\\)\\s*\\{([^{}]*)\\}\\s*\\}`).exec(query);
    if (!m) {
      sendJson(c.res, 200, { data: null, errors: [{ type: 'UNSUPPORTED', message: 'The release lab answers only the repository.release(tagName:) query (the one gh uses to find draft releases).' }] });
      return;
    }
    const value = (token: string): string => (token.startsWith('$') ? String(vars[token.slice(1)] ?? '') : token.slice(1, -1));
    const [owner, repo, tag] = [value(m[1] as string), value(m[2] as string), value(m[3] as string)];
    const fields = (m[4] as string).split(/[\s,]+/).filter(Boolean);
    const candidates = releasesOf(owner, repo).filter((r) => r.tag_name === tag);
    const rel = candidates.find((r) => !r.draft) ?? candidates.find((r) => r.draft);
    const pick: Record<string, (r: ReleaseRecord) => unknown> = {
      databaseId: (r) => r.id,
      id: (r) => nodeId('RE', r.id),
      isDraft: (r) => r.draft,
      isPrerelease: (r) => r.prerelease,
      tagName: (r) => r.tag_name,
      name: (r) => r.name,
      createdAt: (r) => r.created_at,
      publishedAt: (r) => r.published_at,
      url: (r) => `${c.web}/${r.owner}/${r.repo}/releases/tag/${enc(tagPart(r))}`,
    };
    const unknown = fields.find((f) => !pick[f]);
    if (unknown) {
      sendJson(c.res, 200, { errors: [{ path: ['query', 'repository', 'release', unknown], extensions: { code: 'undefinedField', typeName: 'Release', fieldName: unknown }, message: `Field '${unknown}' doesn't exist on type 'Release'` }] });
      return;
    }
    const release = rel ? Object.fromEntries(fields.map((f) => [f, (pick[f] as (r: ReleaseRecord) => unknown)(rel)])) : null;
    sendJson(c.res, 200, { data: { repository: { release } } });
  }
  for (const p of ['/api/graphql', '/graphql']) api('POST', p, graphql, { resource: 'graphql', prefixes: [''] });

  for (const method of ['GET', 'POST', 'PATCH', 'PUT', 'DELETE']) {
    api(method, '/', () => Promise.reject(notFound()), { prefixes: [''] });
    api(method, '/:rest+', () => Promise.reject(notFound()), { prefixes: [''] });
  }
}
