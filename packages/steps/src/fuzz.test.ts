/**
 * Property tests of the release policy reader (parsePolicy): any text is a policy the schema
 * accepts, or the coded POLICY_INVALID naming what is wrong; never a TypeError, a RangeError or a
 * hang (alias bombs and deep nesting included).
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from '../../../test/helpers/tmp.js';
import { hostileValue, mutatedJson, mutatedText, resultOrCoded } from '../../../test/hostile/fuzz.js';
import { parsePolicy, type Policy } from './policy.js';

const own = readFileSync(path.join(REPO_ROOT, 'policies', 'release-policy.yaml'), 'utf8');
const ownValue = parse(own) as unknown;
const YAML_SYNTAX = [':', ': ', '- ', '\n', '\n  ', '[', ']', '{', '}', ',', '&a ', '*a', '|', '>-', "'", '"', '#', '? ', '!!str ', '!!binary ', '!custom ', '%YAML 1.2\n', '---\n', '...\n', '<<: *a\n', '\t', '\0', '\ufeff'];

/** An accepted policy is stable: written back as YAML, it is read as the same policy. */
function checkAccepted(policy: Policy): void {
  expect(policy.version).toBe(1);
  expect(Array.isArray(policy.packages)).toBe(true);
  expect(parsePolicy(stringify(policy), 'again')).toEqual(policy);
}

describe('release policy reader (property tests)', () => {
  // The YAML library reports unknown tags and directives as process warnings; here they are expected.
  beforeAll(() => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
  });
  afterAll(() => {
    vi.restoreAllMocks();
  });

  it("the repository's own policy with values replaced, keys deleted and entries duplicated", () => {
    let accepted = 0;
    fc.assert(
      fc.property(mutatedJson(ownValue, 3), (value) => {
        const policy = resultOrCoded(() => parsePolicy(stringify(value) ?? '', 'fuzz.yaml'), /^POLICY_INVALID$/);
        if (policy) {
          accepted += 1;
          checkAccepted(policy);
        }
      }),
      { numRuns: 600 },
    );
    expect(accepted).toBeGreaterThan(0);
  });

  it('damaged YAML text, YAML syntax spliced in, and arbitrary strings', () => {
    fc.assert(
      fc.property(fc.oneof(mutatedText(own, YAML_SYNTAX), fc.string({ unit: fc.constantFrom(...YAML_SYNTAX, 'version', 'packages', 'path', '1'), maxLength: 60 }), hostileValue.map((v) => stringify(v) ?? ''), fc.string({ maxLength: 60 })), (text) => {
        const policy = resultOrCoded(() => parsePolicy(text, 'fuzz.yaml'), /^POLICY_INVALID$/);
        if (policy) checkAccepted(policy);
      }),
      { numRuns: 800 },
    );
  });

  it('an alias bomb, deep nesting and a huge document are refused with the coded error', () => {
    const bomb = ['version: 1', 'packages: [{path: a}]', 'a: &a ["x","x","x","x","x","x","x","x","x"]', ...Array.from({ length: 9 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [${Array(9).fill(`*${String.fromCharCode(97 + i)}`).join(',')}]`)].join('\n');
    for (const text of [bomb, `version: 1\npackages: ${'['.repeat(100_000)}`, `version: 1\npackages:\n${'  - path: a\n'.repeat(50_000)}extra: 1\n`]) {
      let err: unknown;
      try {
        parsePolicy(text, 'hostile.yaml');
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: 'POLICY_INVALID', hint: expect.stringContaining('hostile.yaml') });
    }
  });
});
