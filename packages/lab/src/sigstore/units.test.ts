import { createHash, generateKeyPairSync, sign, verify } from 'node:crypto';
import { p256 } from '@noble/curves/nist.js';
import { ASN1Obj } from '@sigstore/core';
import * as asn1js from 'asn1js';
import { describe, expect, it } from 'vitest';
import { curveOf, verifyDigest } from './ecdsa.js';
import { MerkleTree } from './merkle.js';
import { loadMaterial } from './pki.js';
import { parseTimestampRequest, TimestampAuthority } from './tsa.js';

const sha256 = (...parts: Buffer[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};

/** MTH straight from RFC 6962 section 2.1, without caching. */
function naiveRoot(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha256();
  if (leaves.length === 1) return leaves[0] as Buffer;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha256(Buffer.from([1]), naiveRoot(leaves.slice(0, k)), naiveRoot(leaves.slice(k)));
}

/** Inclusion proof verification as RFC 9162 section 2.1.3.2 describes it. */
function verifyInclusion(index: number, size: number, leaf: Buffer, proof: Buffer[], root: Buffer): boolean {
  if (index >= size) return false;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of proof) {
    if (sn === 0) return false;
    if (fn % 2 === 1 || fn === sn) {
      r = sha256(Buffer.from([1]), p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn >>= 1;
          sn >>= 1;
        }
      }
    } else {
      r = sha256(Buffer.from([1]), r, p);
    }
    fn >>= 1;
    sn >>= 1;
  }
  return sn === 0 && r.equals(root);
}

describe('RFC 6962 Merkle tree', () => {
  it('computes the tree head and inclusion proofs for every leaf of trees of size 1 to 33', () => {
    const tree = new MerkleTree();
    const leaves: Buffer[] = [];
    expect(tree.root().equals(sha256())).toBe(true);
    for (let n = 1; n <= 33; n++) {
      const leaf = MerkleTree.leafHash(Buffer.from(`entry ${n}`));
      leaves.push(leaf);
      expect(tree.append(leaf)).toBe(n - 1);
      const root = tree.root();
      expect(root.equals(naiveRoot(leaves)), `root of ${n}`).toBe(true);
      for (let i = 0; i < n; i++) expect(verifyInclusion(i, n, leaves[i] as Buffer, tree.proof(i), root), `leaf ${i} of ${n}`).toBe(true);
    }
    // proofs against an older tree head
    expect(verifyInclusion(3, 10, leaves[3] as Buffer, tree.proof(3, 10), naiveRoot(leaves.slice(0, 10)))).toBe(true);
    expect(verifyInclusion(3, 10, leaves[4] as Buffer, tree.proof(3, 10), naiveRoot(leaves.slice(0, 10)))).toBe(false);
    expect(() => tree.proof(33)).toThrow(RangeError);
    expect(() => tree.root(34)).toThrow(RangeError);
  });
});

describe('ECDSA over a precomputed digest', () => {
  for (const [curve, hash] of [
    ['P-256', 'sha256'],
    ['P-384', 'sha384'],
    ['P-256', 'sha512'],
  ] as const) {
    it(`accepts node's ${curve}/${hash} signatures and refuses wrong digests, keys and encodings`, () => {
      const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: curve });
      for (let i = 0; i < 5; i++) {
        const data = Buffer.from(`message ${i}`);
        const digest = createHash(hash).update(data).digest();
        const signature = sign(hash, data, privateKey);
        expect(verifyDigest(publicKey, digest, signature)).toBe(true);
        expect(verifyDigest(publicKey, createHash(hash).update('other').digest(), signature)).toBe(false);
        expect(verifyDigest(generateKeyPairSync('ec', { namedCurve: curve }).publicKey, digest, signature)).toBe(false);
        expect(verifyDigest(publicKey, digest, Buffer.from('not der'))).toBe(false);
      }
    });
  }
});

describe('ECDSA over a precomputed digest: edge cases', () => {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const data = Buffer.from('edge cases');
  const digest = createHash('sha256').update(data).digest();
  const signature = sign('sha256', data, privateKey);

  it('accepts both s and n - s, as node:crypto and OpenSSL do', () => {
    const parsed = p256.Signature.fromBytes(signature, 'der');
    const flipped = new p256.Signature(parsed.r, p256.Point.Fn.ORDER - parsed.s).toBytes('der');
    expect(Buffer.from(flipped).equals(signature)).toBe(false);
    expect(verifyDigest(publicKey, digest, Buffer.from(flipped))).toBe(true);
  });

  it('refuses truncated, padded, empty and compact signatures, wrong-length digests and non-EC keys', () => {
    expect(verifyDigest(publicKey, digest, signature.subarray(0, signature.length - 1))).toBe(false);
    expect(verifyDigest(publicKey, digest, Buffer.concat([signature, Buffer.from([0])]))).toBe(false);
    expect(verifyDigest(publicKey, digest, Buffer.alloc(0))).toBe(false);
    expect(verifyDigest(publicKey, digest, Buffer.from(p256.Signature.fromBytes(signature, 'der').toBytes('compact')))).toBe(false);
    expect(verifyDigest(publicKey, digest.subarray(1), signature)).toBe(false);
    expect(verifyDigest(publicKey, Buffer.alloc(0), signature)).toBe(false);
    const ed = generateKeyPairSync('ed25519');
    expect(verifyDigest(ed.publicKey, digest, sign(null, data, ed.privateKey))).toBe(false);
    expect(curveOf(ed.publicKey)).toBeUndefined();
    expect(curveOf(publicKey)).toBe('P-256');
  });

  it('verifies P-521 and refuses a signature made on another curve', () => {
    const p521 = generateKeyPairSync('ec', { namedCurve: 'P-521' });
    const d512 = createHash('sha512').update(data).digest();
    const s521 = sign('sha512', data, p521.privateKey);
    expect(verifyDigest(p521.publicKey, d512, s521)).toBe(true);
    expect(verifyDigest(publicKey, d512, s521)).toBe(false);
    const p384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    expect(verifyDigest(p384.publicKey, digest, signature)).toBe(false);
  });
});

describe('ASN.1 encoding with asn1js', () => {
  it('round-trips through the ASN.1 parser sigstore uses', () => {
    const encoded = new asn1js.Sequence({
      value: [
        asn1js.Integer.fromBigInt(0),
        asn1js.Integer.fromBigInt(128),
        asn1js.Integer.fromBigInt(BigInt(`0x${Buffer.from([0x80, 1]).toString('hex')}`)),
        new asn1js.ObjectIdentifier({ value: '1.2.840.113549.1.9.16.1.4' }),
        new asn1js.GeneralizedTime({ valueDate: new Date('2026-01-02T03:04:05Z') }),
        new asn1js.UTCTime({ valueDate: new Date('2026-01-02T03:04:05Z') }),
        new asn1js.Boolean({ value: true }),
      ],
    }).toBER();
    const parsed = ASN1Obj.parseBuffer(Buffer.from(encoded));
    const [zero, big, fromBytes, oid, gen, utc, bool] = parsed.subs as ASN1Obj[];
    expect(zero?.toInteger()).toBe(0n);
    expect(big?.toInteger()).toBe(128n);
    expect(fromBytes?.toInteger()).toBe(0x8001n);
    expect(oid?.toOID()).toBe('1.2.840.113549.1.9.16.1.4');
    expect(gen?.value.toString('ascii')).toBe('20260102030405Z');
    expect(gen?.toDate().toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(utc?.toDate().toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(bool?.toBoolean()).toBe(true);
    expect(Buffer.from(new asn1js.OctetString({ valueHex: Buffer.alloc(300) }).toBER()).subarray(0, 4)).toEqual(Buffer.from([0x04, 0x82, 0x01, 0x2c]));
  });

  it('builds a DER TimeStampResp: whole-second genTime, echoed nonce, sorted signed attributes, primitive eContent', async () => {
    const material = await loadMaterial(undefined, new Date('2026-01-01T00:00:00Z'));
    const tsa = new TimestampAuthority({ material, clock: () => new Date('2026-01-02T03:04:05.678Z') });
    const hashed = createHash('sha256').update('token').digest();
    const req = parseTimestampRequest(Buffer.from(JSON.stringify({ artifactHash: hashed.toString('base64'), hashAlgorithm: 'SHA-256', nonce: '170141183460469231731687303715884105728', certificates: true })), 'application/json');
    const reply = tsa.timestamp(req);
    const resp = ASN1Obj.parseBuffer(reply as Buffer<ArrayBuffer>);
    expect(resp.toDER().equals(reply)).toBe(true);
    const [status, token] = resp.subs as ASN1Obj[];
    expect(status?.subs[0]?.toInteger()).toBe(0n);
    expect(token?.subs[0]?.toOID()).toBe('1.2.840.113549.1.7.2');
    const signedData = token?.subs[1]?.subs[0] as ASN1Obj;
    const [version, , encap, certs, signerInfos] = signedData.subs as ASN1Obj[];
    expect(version?.toInteger()).toBe(3n);
    expect(encap?.subs[0]?.toOID()).toBe('1.2.840.113549.1.9.16.1.4');
    const eContent = encap?.subs[1]?.subs[0] as ASN1Obj;
    expect(eContent.tag.constructed).toBe(false);
    expect(certs?.subs[0]?.toDER().equals(material.tsa.signer)).toBe(true);

    const tstInfo = ASN1Obj.parseBuffer(eContent.value as Buffer<ArrayBuffer>);
    const [, policy, imprint, serial, genTime, accuracy, nonce] = tstInfo.subs as ASN1Obj[];
    expect(policy?.toOID()).toBe('1.3.6.1.4.1.57264.2');
    expect(imprint?.subs[1]?.value.equals(hashed)).toBe(true);
    expect((serial?.value[0] ?? 0) & 0x80).toBe(0);
    expect(genTime?.value.toString('ascii')).toBe('20260102030405Z');
    expect(accuracy?.subs[0]?.toInteger()).toBe(1n);
    expect(nonce?.toInteger()).toBe(2n ** 127n);

    const signerInfo = signerInfos?.subs[0] as ASN1Obj;
    const signedAttrs = signerInfo.subs[3] as ASN1Obj;
    const encodings = signedAttrs.subs.map((a) => a.toDER());
    expect(encodings).toEqual([...encodings].sort(Buffer.compare));
    const asSet = Buffer.concat([Buffer.from([0x31]), signedAttrs.toDER().subarray(1)]);
    expect(verify('sha256', asSet, material.tsa.signerKey.publicKey, signerInfo.subs[5]?.value as Buffer)).toBe(true);
  });
});
