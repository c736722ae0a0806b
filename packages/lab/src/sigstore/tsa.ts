import { createHash, randomBytes, sign } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ASN1Obj } from '@sigstore/core';
import * as asn1js from 'asn1js';
import * as pkijs from 'pkijs';
import { readBody, sendJson, type LabService } from '../harness.js';
import { certificatePem, type Material } from './pki.js';

/**
 * An RFC 3161 timestamp authority at `POST /api/v1/timestamp`, as sigstore's timestamp-authority:
 * it takes the JSON request sigstore-js sends (`{artifactHash, hashAlgorithm, nonce?, certificates?,
 * tsaPolicyOID?}`) or a DER TimeStampReq (`application/timestamp-query`, as `openssl ts -query`
 * writes), and answers a DER TimeStampResp. genTime has whole seconds only.
 */

const OID = {
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  signingCertificateV2: '1.2.840.113549.1.9.16.2.47',
  ecdsaWithSha256: '1.2.840.10045.4.3.2',
  /** sigstore's timestamping policy */
  policy: '1.3.6.1.4.1.57264.2',
};

const HASHES: Record<string, { oid: string; length: number }> = {
  sha256: { oid: '2.16.840.1.101.3.4.2.1', length: 32 },
  sha384: { oid: '2.16.840.1.101.3.4.2.2', length: 48 },
  sha512: { oid: '2.16.840.1.101.3.4.2.3', length: 64 },
};

export interface TimestampRequest {
  hashOid: string;
  /** Whether the request's AlgorithmIdentifier had a NULL parameter (echoed in the token). */
  hashNull: boolean;
  hashedMessage: Buffer;
  /** The nonce's INTEGER contents, echoed as given. */
  nonce?: Buffer;
  policy: string;
  certReq: boolean;
}

class BadRequest extends Error {}

/** AlgorithmIdentifier with absent parameters, or NULL ones. */
const algorithm = (algorithmId: string, withNull: boolean): pkijs.AlgorithmIdentifier =>
  new pkijs.AlgorithmIdentifier({ algorithmId, ...(withNull ? { algorithmParams: new asn1js.Null() } : {}) });

const encode = (value: { toSchema(): asn1js.BaseBlock }): Buffer => Buffer.from(value.toSchema().toBER());

/** Parses sigstore's JSON request or a DER TimeStampReq. */
export function parseTimestampRequest(body: Buffer, contentType: string): TimestampRequest {
  if (contentType.includes('json') || body[0] === 0x7b) {
    let req: { artifactHash?: unknown; hashAlgorithm?: unknown; nonce?: unknown; certificates?: unknown; tsaPolicyOID?: unknown };
    try {
      req = JSON.parse(body.toString('utf8')) as typeof req;
    } catch (err) {
      throw new BadRequest(`the request is not JSON: ${(err as Error).message}`);
    }
    const name = typeof req.hashAlgorithm === 'string' ? req.hashAlgorithm.toLowerCase().replace('-', '') : 'sha256';
    const hash = HASHES[name];
    if (!hash) throw new BadRequest(`unsupported hash algorithm ${String(req.hashAlgorithm)}; use sha256, sha384 or sha512`);
    const hashedMessage = typeof req.artifactHash === 'string' ? Buffer.from(req.artifactHash, 'base64') : Buffer.alloc(0);
    if (hashedMessage.length !== hash.length) throw new BadRequest(`artifactHash must be the base64 of a ${hash.length}-byte ${name} digest`);
    let nonce: Buffer | undefined;
    if (req.nonce !== undefined && req.nonce !== null) {
      if (!/^\d+$/.test(String(req.nonce))) throw new BadRequest('nonce must be a non-negative integer');
      nonce = Buffer.from(asn1js.Integer.fromBigInt(BigInt(String(req.nonce))).valueBlock.valueHexView);
    }
    return { hashOid: hash.oid, hashNull: true, hashedMessage, ...(nonce ? { nonce } : {}), policy: typeof req.tsaPolicyOID === 'string' && req.tsaPolicyOID ? req.tsaPolicyOID : OID.policy, certReq: req.certificates === true };
  }
  let root: ASN1Obj;
  try {
    root = ASN1Obj.parseBuffer(body as Buffer<ArrayBuffer>);
  } catch (err) {
    throw new BadRequest(`the request is neither JSON nor a DER TimeStampReq: ${(err as Error).message}`);
  }
  const [version, imprint, ...rest] = root.subs;
  if (!version || !imprint || version.toInteger() !== 1n) throw new BadRequest('TimeStampReq version must be 1');
  const alg = imprint.subs[0];
  const hashed = imprint.subs[1];
  if (!alg || !hashed || !alg.subs[0]) throw new BadRequest('TimeStampReq has no messageImprint');
  const hashOid = alg.subs[0].toOID();
  const hash = Object.values(HASHES).find((h) => h.oid === hashOid);
  if (!hash) throw new BadRequest(`unsupported hash algorithm ${hashOid}`);
  if (hashed.value.length !== hash.length) throw new BadRequest(`hashedMessage has ${hashed.value.length} bytes, expected ${hash.length}`);
  const req: TimestampRequest = { hashOid, hashNull: alg.subs.length > 1, hashedMessage: Buffer.from(hashed.value), policy: OID.policy, certReq: false };
  for (const item of rest) {
    if (item.tag.isOID()) req.policy = item.toOID();
    else if (item.tag.isInteger()) req.nonce = Buffer.from(item.value);
    else if (item.tag.isBoolean()) req.certReq = item.toBoolean();
  }
  return req;
}

export class TimestampAuthority {
  constructor(private readonly options: { material: Material; clock: () => Date }) {}

  /** A DER TimeStampResp (status granted) for this request. */
  timestamp(req: TimestampRequest): Buffer {
    const { tsa } = this.options.material;
    const genTime = new Date(Math.floor(this.options.clock().getTime() / 1000) * 1000);
    const tstInfo = new pkijs.TSTInfo({
      version: 1,
      policy: req.policy,
      messageImprint: new pkijs.MessageImprint({
        hashAlgorithm: algorithm(req.hashOid, req.hashNull),
        hashedMessage: new asn1js.OctetString({ valueHex: req.hashedMessage }),
      }),
      serialNumber: asn1js.Integer.fromBigInt(BigInt(`0x${randomBytes(16).toString('hex')}`)),
      genTime,
      accuracy: new pkijs.Accuracy({ seconds: 1 }),
      ...(req.nonce ? { nonce: new asn1js.Integer({ valueHex: req.nonce }) } : {}),
    });
    const content = encode(tstInfo);
    const cert = pkijs.Certificate.fromBER(tsa.signer);
    // ESS SigningCertificateV2 (RFC 5035): SEQUENCE { certs SEQUENCE OF ESSCertIDv2 }, hash sha256 (the default, so omitted)
    const essCertIdV2 = new asn1js.Sequence({
      value: [
        new asn1js.OctetString({ valueHex: createHash('sha256').update(tsa.signer).digest() }),
        new pkijs.IssuerSerial({
          issuer: new pkijs.GeneralNames({ names: [new pkijs.GeneralName({ type: 4, value: cert.issuer })] }),
          serialNumber: cert.serialNumber,
        }).toSchema(),
      ],
    });
    const attribute = (type: string, value: asn1js.BaseBlock): pkijs.Attribute => new pkijs.Attribute({ type, values: [value] });
    // DER orders a SET OF by the encodings of its elements (X.690 11.6); OpenSSL re-encodes the
    // signed attributes that way before checking the signature.
    const attributes = [
      attribute(OID.contentType, new asn1js.ObjectIdentifier({ value: pkijs.id_eContentType_TSTInfo })),
      attribute(OID.signingTime, new asn1js.UTCTime({ valueDate: genTime })),
      attribute(OID.messageDigest, new asn1js.OctetString({ valueHex: createHash('sha256').update(content).digest() })),
      attribute(OID.signingCertificateV2, new asn1js.Sequence({ value: [new asn1js.Sequence({ value: [essCertIdV2] })] })),
    ].sort((a, b) => Buffer.compare(encode(a), encode(b)));
    // The signature covers the attributes as a SET OF; the SignerInfo carries them as [0] IMPLICIT.
    const signed = Buffer.from(new asn1js.Set({ value: attributes.map((a) => a.toSchema()) }).toBER());
    const signerInfo = new pkijs.SignerInfo({
      version: 1,
      sid: new pkijs.IssuerAndSerialNumber({ issuer: cert.issuer, serialNumber: cert.serialNumber }),
      digestAlgorithm: algorithm(pkijs.id_sha256, false),
      signedAttrs: new pkijs.SignedAndUnsignedAttributes({ type: 0, attributes }),
      signatureAlgorithm: algorithm(OID.ecdsaWithSha256, false),
      signature: new asn1js.OctetString({ valueHex: sign('sha256', signed, tsa.signerKey.privateKey) }),
    });
    // Given to the constructor, pkijs would re-wrap eContent as a constructed (BER) OCTET STRING;
    // assigned afterwards it stays the primitive one DER asks for.
    const encapContentInfo = new pkijs.EncapsulatedContentInfo({ eContentType: pkijs.id_eContentType_TSTInfo });
    encapContentInfo.eContent = new asn1js.OctetString({ valueHex: content });
    const signedData = new pkijs.SignedData({
      version: 3,
      digestAlgorithms: [algorithm(pkijs.id_sha256, false)],
      encapContentInfo,
      ...(req.certReq ? { certificates: [cert] } : {}),
      signerInfos: [signerInfo],
    });
    const response = new pkijs.TimeStampResp({
      status: new pkijs.PKIStatusInfo({ status: pkijs.PKIStatus.granted }),
      timeStampToken: new pkijs.ContentInfo({ contentType: pkijs.ContentInfo.SIGNED_DATA, content: signedData.toSchema() }),
    });
    return encode(response);
  }

  routes(service: LabService): void {
    service.route('POST', '/api/v1/timestamp', async (req: IncomingMessage, res: ServerResponse) => {
      let request: TimestampRequest;
      try {
        request = parseTimestampRequest(await readBody(req, 1024 * 1024), req.headers['content-type'] ?? '');
      } catch (err) {
        if (!(err instanceof BadRequest)) throw err;
        sendJson(res, 400, { code: 400, message: `error parsing timestamp request: ${err.message}` });
        return;
      }
      const reply = this.timestamp(request);
      res.writeHead(201, { 'content-type': 'application/timestamp-reply', 'content-length': reply.length });
      res.end(reply);
    });
    service.route('GET', '/api/v1/timestamp/certchain', (_req, res) => {
      const { tsa } = this.options.material;
      const pem = certificatePem(tsa.signer) + certificatePem(tsa.root);
      res.writeHead(200, { 'content-type': 'application/pem-certificate-chain', 'content-length': Buffer.byteLength(pem) });
      res.end(pem);
    });
  }
}
