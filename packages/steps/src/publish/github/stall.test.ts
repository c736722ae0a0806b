import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startGithub, type GithubLab } from '@mcp-release/lab';
import { caught, tempDir } from '../../../../../test/helpers/tmp.js';
import { createGithubReleaseClient, type GithubReleaseClient } from './client.js';
import { downloadDraft, ensureDraft, uploadAssets, type ReleaseFile } from './release.js';
import { stallGuard } from './stall.js';

describe('stallGuard', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('aborts with a TimeoutError naming the call when nothing moves for its limit', async () => {
    vi.useFakeTimers();
    const guard = stallGuard(1000, 'the upload of a.tgz');
    vi.advanceTimersByTime(999);
    expect(guard.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(guard.signal.aborted).toBe(true);
    expect(guard.signal.reason).toMatchObject({ name: 'TimeoutError', message: 'the upload of a.tgz made no progress for 1.0 s' });
  });

  it('is kept alive by every chunk through its meter and by the end of the stream, and never fires once stopped', async () => {
    vi.useFakeTimers();
    const guard = stallGuard(1000, 'the download of b');
    const meter = guard.meter();
    const seen: Buffer[] = [];
    meter.on('data', (c: Buffer) => seen.push(c));
    for (let i = 0; i < 5; i += 1) {
      vi.advanceTimersByTime(900);
      meter.write(Buffer.from([i]));
    }
    expect(guard.signal.aborted).toBe(false);
    vi.advanceTimersByTime(900);
    meter.end();
    await vi.advanceTimersByTimeAsync(900);
    expect(guard.signal.aborted).toBe(false);
    expect(Buffer.concat(seen)).toEqual(Buffer.from([0, 1, 2, 3, 4]));
    await vi.advanceTimersByTimeAsync(100);
    expect(guard.signal.aborted).toBe(true);

    const stopped = stallGuard(1000, 'c');
    stopped.stop();
    stopped.meter().write(Buffer.from('x'));
    vi.advanceTimersByTime(5000);
    expect(stopped.signal.aborted).toBe(false);
  });

  it('aborts a stream piped through its meter when the source stalls', async () => {
    const guard = stallGuard(100, 'the download of d');
    // one chunk, then a source that never ends
    const stalled = new Readable({ read() {} });
    stalled.push(Buffer.from('first'));
    const sink = new Writable({ write: (_c, _e, done) => done() });
    const aborted = new Promise((resolve) => guard.signal.addEventListener('abort', resolve));
    const piped = pipeline(stalled, guard.meter(), sink, { signal: guard.signal });
    await aborted;
    await expect(piped).rejects.toMatchObject({ name: 'AbortError' });
    guard.stop();
  });
});

describe('uploads and downloads that stall', () => {
  let lab: GithubLab;
  let repos = 0;
  beforeAll(async () => {
    lab = await startGithub();
  });
  afterAll(() => lab?.stop());

  /** A client with a 300 ms stall limit, whose retries record their pauses instead of waiting. */
  function client(): { client: GithubReleaseClient; repo: string; sleeps: number[] } {
    repos += 1;
    const repo = `stall-${repos}`;
    const sleeps: number[] = [];
    return { repo, sleeps, client: createGithubReleaseClient({ repository: `acme/${repo}`, token: lab.token, baseUrl: lab.url, timeoutMs: 300, retry: { delayMs: 10, sleep: async (ms) => void sleeps.push(ms) } }) };
  }

  async function files(): Promise<ReleaseFile[]> {
    const dir = await tempDir('github-stall-');
    const out: ReleaseFile[] = [];
    for (const [name, bytes] of [['big.bin', randomBytes(3 * 1024 * 1024)], ['SHA256SUMS', Buffer.from('x  big.bin\n')]] as const) {
      await writeFile(path.join(dir, name), bytes);
      out.push({ name, file: path.join(dir, name), size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    }
    return out;
  }

  it('retries an upload that is never answered, and a download that is never answered, and ends with every byte intact', async () => {
    const h = client();
    const list = await files();
    const { release } = await ensureDraft(h.client, { tag: 'v1.0.0', commit: 'c'.repeat(40), name: 'v1.0.0', body: '', prerelease: false, expected: list });
    lab.service.chaos.add({ route: `/repos/acme/${h.repo}/releases/\\d+/assets$`, method: 'POST', count: 1, fault: { kind: 'timeout' } });
    const up = await uploadAssets(h.client, release, list, { concurrency: 1 });
    expect(up.uploaded.sort()).toEqual(['SHA256SUMS', 'big.bin']);
    expect(h.sleeps).toEqual([10]);
    expect(lab.service.chaos.pending()).toEqual([]);
    const assets = lab.state().releases.find((r) => r.id === release.id)?.assets ?? [];
    expect(assets.map((a) => [a.name, a.digest]).sort()).toEqual(list.map((f) => [f.name, `sha256:${f.sha256}`]).sort());

    lab.service.chaos.add({ route: `/repos/acme/${h.repo}/releases/assets/\\d+$`, method: 'GET', count: 1, fault: { kind: 'timeout' } });
    const dir = path.join(await tempDir('github-stall-'), 'draft');
    await downloadDraft(h.client, release.id, dir);
    expect(h.sleeps).toEqual([10, 10]);
    for (const f of list) expect((await readFile(path.join(dir, f.name))).equals(await readFile(f.file)), f.name).toBe(true);
  });

  it('gives up on an upload that is never answered after the bounded retries, saying so, and leaves no asset', async () => {
    const h = client();
    const list = (await files()).slice(0, 1);
    const { release } = await ensureDraft(h.client, { tag: 'v1.0.0', commit: 'c'.repeat(40), name: 'v1.0.0', body: '', prerelease: false, expected: list });
    lab.service.chaos.add({ route: `/repos/acme/${h.repo}/releases/\\d+/assets$`, method: 'POST', count: 4, fault: { kind: 'timeout' } });
    const err = await caught(() => uploadAssets(h.client, release, list));
    expect(err).toMatchObject({ code: 'GITHUB_API_FAILED', message: expect.stringContaining('the upload of big.bin made no progress for 300 ms') });
    expect(h.sleeps).toEqual([10, 20, 40]);
    expect(lab.service.chaos.pending()).toEqual([]);
    expect(lab.state().releases.find((r) => r.id === release.id)?.assets).toEqual([]);
  });
});
