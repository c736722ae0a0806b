import type { KeyObject } from 'node:crypto';
import { p256, p384, p521 } from '@noble/curves/nist.js';

/**
 * ECDSA verification over a digest that was computed elsewhere. Rekor's hashedrekord entries carry
 * only the artifact digest, and node:crypto can only verify ECDSA over the message itself, so the
 * lab's Rekor checks such signatures with @noble/curves (`prehash: false`).
 */

const CURVES = { 'P-256': p256, 'P-384': p384, 'P-521': p521 } as const;

/** The curve name of an EC public key, or undefined for other key types. */
export function curveOf(key: KeyObject): string | undefined {
  if (key.asymmetricKeyType !== 'ec') return undefined;
  const jwk = key.export({ format: 'jwk' });
  return jwk.crv;
}

/** Verifies a DER ECDSA signature over `digest` (already hashed) with an EC public key. */
export function verifyDigest(key: KeyObject, digest: Buffer, signature: Buffer): boolean {
  if (key.asymmetricKeyType !== 'ec') return false;
  const jwk = key.export({ format: 'jwk' });
  const curve = jwk.crv && Object.hasOwn(CURVES, jwk.crv) ? CURVES[jwk.crv as keyof typeof CURVES] : undefined;
  if (!curve || !jwk.x || !jwk.y) return false;
  // SEC 1 uncompressed point: 0x04 ‖ x ‖ y
  const point = Buffer.concat([Buffer.from([0x04]), Buffer.from(jwk.x, 'base64url'), Buffer.from(jwk.y, 'base64url')]);
  try {
    // node:crypto (like OpenSSL and Go) does not normalise s, so high-s signatures are valid here.
    return curve.verify(signature, digest, point, { prehash: false, format: 'der', lowS: false });
  } catch {
    return false;
  }
}
