import { writeFile } from 'node:fs/promises';
import { it } from 'vitest';
import { OidcService, startSigstore } from '@mcp-release/lab';
import { githubIdentity, ReleaseSigner } from '../sigstore/signing.js';

it('dump', async () => {
  const oidc = new OidcService();
  await oidc.start();
  const sigstore = await startSigstore({ oidcIssuer: oidc.issuer, jwksUri: `${oidc.issuer}/.well-known/jwks` });
  const env = { ACTIONS_ID_TOKEN_REQUEST_URL: oidc.requestUrl, ACTIONS_ID_TOKEN_REQUEST_TOKEN: oidc.requestToken };
  await writeFile('/tmp/scratch-a', 'hello');
  const signer = new ReleaseSigner({ fulcio: sigstore.urls.fulcio, rekor: sigstore.urls.rekor, tsa: sigstore.urls.tsa }, githubIdentity(env));
  const { bundle } = await signer.signFile('/tmp/scratch-a');
  const dsse = await signer.signStatement({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: 'a', digest: { sha256: 'ab'.repeat(32) } }], predicateType: 'x', predicate: {} });
  await writeFile('/tmp/scratch-bundle.json', JSON.stringify({ bundle, dsse, root: sigstore.trustedRoot }, null, 2));
  await sigstore.stop();
  await oidc.stop();
});
