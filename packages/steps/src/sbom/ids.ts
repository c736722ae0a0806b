import { createHash } from 'node:crypto';

/** The RFC 4122 namespace for URLs; document ids are name-based UUIDs (version 5) in it. */
const URL_NAMESPACE = Buffer.from('6ba7b8119dad11d180b400c04fd430c8', 'hex');

/**
 * A UUID derived from the content alone: version 5 of `urn:sha256:<digest of content>`. The same
 * document content always gets the same id, and any change gets another.
 */
export function contentUuid(content: string): string {
  const digest = createHash('sha256').update(content).digest('hex');
  const b = createHash('sha1').update(URL_NAMESPACE).update(`urn:sha256:${digest}`).digest().subarray(0, 16);
  b[6] = ((b[6] as number) & 0x0f) | 0x50;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/**
 * SPDX element ids: readable (`SPDXRef-npm-ajv-8.20.0`), limited to the characters SPDX allows,
 * and unique. Two keys that read the same get a digest of the key appended, so an id never
 * depends on anything but its own key and the keys before it in sorted order.
 */
export class SpdxIds {
  readonly #byKey = new Map<string, string>();
  readonly #taken = new Set<string>();

  id(key: string, readable: string): string {
    const known = this.#byKey.get(key);
    if (known) return known;
    let id = `SPDXRef-${readable.replace(/[^A-Za-z0-9.-]+/g, '-')}`;
    if (this.#taken.has(id)) id = `${id}-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;
    this.#byKey.set(key, id);
    this.#taken.add(id);
    return id;
  }
}

/** Code-point order, as the manifest and SHA256SUMS sort. */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Option values as text: `true`, `3`, `a,b` for arrays, JSON for anything else. */
export function optionText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value) && value.every((v) => typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean')) return value.map(String).join(',');
  return JSON.stringify(value);
}
