import { createHash } from 'node:crypto';

/**
 * An RFC 6962 Merkle tree over leaf hashes: tree heads (MTH) and audit paths (PATH) for any size
 * up to the current one. Complete power-of-two subtrees never change, so their hashes are cached.
 */

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

const LEAF = Buffer.from([0x00]);
const NODE = Buffer.from([0x01]);

/** The largest power of two smaller than n (n > 1). */
function split(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

export class MerkleTree {
  private readonly leaves: Buffer[] = [];
  private readonly cache = new Map<string, Buffer>();

  static leafHash(data: Buffer): Buffer {
    return sha256(LEAF, data);
  }

  get size(): number {
    return this.leaves.length;
  }

  /** Appends a leaf hash; returns its index. */
  append(leafHash: Buffer): number {
    this.leaves.push(leafHash);
    return this.leaves.length - 1;
  }

  /** MTH(D[0:size]). */
  root(size = this.size): Buffer {
    this.check(size);
    return this.hash(0, size);
  }

  /** PATH(index, D[0:size]), from the leaf upwards. */
  proof(index: number, size = this.size): Buffer[] {
    this.check(size);
    if (!Number.isInteger(index) || index < 0 || index >= size) throw new RangeError(`leaf ${index} is not in a tree of size ${size}`);
    return this.path(index, 0, size);
  }

  private check(size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > this.leaves.length) throw new RangeError(`tree size ${size} is not between 0 and ${this.leaves.length}`);
  }

  private hash(start: number, end: number): Buffer {
    const n = end - start;
    if (n === 0) return sha256();
    if (n === 1) return this.leaves[start] as Buffer;
    const complete = (n & (n - 1)) === 0;
    const key = `${start}:${n}`;
    if (complete) {
      const hit = this.cache.get(key);
      if (hit) return hit;
    }
    const k = split(n);
    const h = sha256(NODE, this.hash(start, start + k), this.hash(start + k, end));
    if (complete) this.cache.set(key, h);
    return h;
  }

  private path(m: number, start: number, end: number): Buffer[] {
    const n = end - start;
    if (n === 1) return [];
    const k = split(n);
    return m < k ? [...this.path(m, start, start + k), this.hash(start + k, end)] : [...this.path(m - k, start + k, end), this.hash(start, start + k)];
  }
}
