/**
 * A 5 GiB artifact is hashed as a stream: peak RSS growth stays under 150 MB while hashFile
 * (sha256 and sha512 in one pass, from disk) and hashingPassThrough (sha256 of a stream on its way
 * somewhere else) each read all 5 GiB. This is a memory bound, not a timed test. The file is
 * sparse, so it costs no disk; on this kind of machine (2 cores, ~1.8 GB/s sha256 and ~1.1 GB/s
 * sha512 in Node) reading and hashing it takes about 20 s, well inside the test time limit.
 */
import { open, rm, stat, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashFile, hashingPassThrough } from '@mcp-release/manifest';

const SIZE = 5 * 1024 ** 3;
const MIB = 1024 * 1024;
const BOUND = 150 * 1000 * 1000;

let dir: string;
let file: string;
/** The sha256 of SIZE zero bytes as the pass-through stream computed it. */
let streamedSha256: string | undefined;

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'mcp-release-hostile-5g-'));
  file = path.join(dir, 'huge-model.bin');
  const handle = await open(file, 'w');
  try {
    await handle.truncate(SIZE);
  } finally {
    await handle.close();
  }
});

afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Runs `fn` while sampling RSS: the growth over the RSS before it, at its peak and after it. */
async function rssGrowth<T>(fn: () => Promise<T>): Promise<{ result: T; peak: number; after: number }> {
  const before = process.memoryUsage().rss;
  let max = before;
  const timer = setInterval(() => {
    max = Math.max(max, process.memoryUsage().rss);
  }, 25);
  try {
    const result = await fn();
    max = Math.max(max, process.memoryUsage().rss);
    return { result, peak: max - before, after: process.memoryUsage().rss - before };
  } finally {
    clearInterval(timer);
  }
}

describe('a 5 GiB artifact', () => {
  it('is a sparse file here (the test writes no 5 GiB to disk)', async () => {
    const st = await stat(file);
    expect(st.size).toBe(SIZE);
    expect(st.blocks * 512).toBeLessThan(MIB);
  });

  it('hashingPassThrough hashes 5 GiB flowing through it with bounded memory', async () => {
    const zeros = Buffer.alloc(MIB);
    const source = Readable.from(
      (function* chunks() {
        for (let sent = 0; sent < SIZE; sent += MIB) yield zeros;
      })(),
      { objectMode: false },
    );
    let received = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        received += chunk.length;
        done();
      },
    });
    const meter = hashingPassThrough();
    const { result, peak, after } = await rssGrowth(async () => {
      await pipeline(source, meter.stream, sink);
      return meter.result();
    });
    expect(result.size).toBe(SIZE);
    expect(received).toBe(SIZE);
    expect(peak, `peak RSS growth ${(peak / 1e6).toFixed(1)} MB`).toBeLessThan(BOUND);
    expect(after).toBeLessThan(BOUND);
    streamedSha256 = result.sha256;
  });

  it('hashFile streams it from disk with bounded memory, and agrees with the pass-through stream', async () => {
    let calls = 0;
    const { result, peak, after } = await rssGrowth(() => hashFile(file, { onProgress: () => (calls += 1) }));
    expect(result.size).toBe(SIZE);
    expect(result.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(result.sha512).toMatch(/^[0-9a-f]{128}$/);
    // two independent streams of the same 5 GiB of zeros give the same digest
    expect(result.sha256).toBe(streamedSha256);
    expect(calls).toBeGreaterThanOrEqual(SIZE / MIB);
    expect(peak, `peak RSS growth ${(peak / 1e6).toFixed(1)} MB`).toBeLessThan(BOUND);
    expect(after).toBeLessThan(BOUND);
  });
});
