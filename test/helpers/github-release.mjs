// Creates a draft release with the given files, then publishes it, through octokit and the
// environment the lab prints (GITHUB_API_URL, GITHUB_TOKEN, NODE_EXTRA_CA_CERTS). Prints JSON.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Octokit } from '@octokit/rest';

const [owner, repo, tag, ...files] = process.argv.slice(2);
const octokit = new Octokit({ baseUrl: process.env.GITHUB_API_URL, auth: process.env.GITHUB_TOKEN });
const { data: release } = await octokit.repos.createRelease({ owner, repo, tag_name: tag, target_commitish: 'a'.repeat(40), draft: true });
for (const f of files) {
  // The upload goes to the release's own upload_url (on GitHub a separate host).
  await octokit.repos.uploadReleaseAsset({ url: release.upload_url, owner, repo, release_id: release.id, name: path.basename(f), data: readFileSync(f), headers: { 'content-type': 'application/octet-stream' } });
}
const { data: published } = await octokit.repos.updateRelease({ owner, repo, release_id: release.id, draft: false });
process.stdout.write(`${JSON.stringify({ id: published.id, draft: published.draft, assets: published.assets.map((a) => a.name) })}\n`);
