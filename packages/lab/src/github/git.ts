import { createHash } from 'node:crypto';

export const SHA_RE = /^[0-9a-f]{40}$/;

/** `2024-05-01T12:00:00+02:00` → seconds since the epoch and git's `+0200`. */
export function gitDate(iso: string): { seconds: number; tz: string } {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not a date: ${iso}`);
  const m = /([+-])(\d{2}):?(\d{2})$/.exec(iso);
  const tz = m ? `${m[1]}${m[2]}${m[3]}` : '+0000';
  return { seconds: Math.floor(ms / 1000), tz };
}

/** The bytes of a git annotated tag object, as `git cat-file tag` prints them. */
export function tagObjectText(t: { object: string; type: string; tag: string; tagger: { name: string; email: string; date: string }; message: string }): string {
  const { seconds, tz } = gitDate(t.tagger.date);
  return `object ${t.object}\ntype ${t.type}\ntag ${t.tag}\ntagger ${t.tagger.name} <${t.tagger.email}> ${seconds} ${tz}\n\n${t.message}`;
}

/** Git's object id: sha1 over `<type> <length>\0<content>`. */
export function gitObjectSha(type: string, content: string): string {
  const body = Buffer.from(content, 'utf8');
  return createHash('sha1').update(`${type} ${body.length}\0`).update(body).digest('hex');
}

/** A stable stand-in commit id for a branch the lab has no ref for. */
export function syntheticCommit(owner: string, repo: string, commitish: string): string {
  return createHash('sha1').update(`release-lab commit\0${owner.toLowerCase()}/${repo.toLowerCase()}\0${commitish}`).digest('hex');
}
