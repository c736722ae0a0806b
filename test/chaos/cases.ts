import type { Fault, FaultRule } from '@mcp-release/lab';

/**
 * The campaign's cases, declared up front: where the fault goes (or where the release is killed),
 * and what must come of it.
 *
 * - `completes`: the release exits 0 on its own (a retry got through);
 * - `nothing-public`: the release fails with the declared coded diagnosis, and nothing a consumer
 *   sees has changed (the registry has only the bootstrap version, no release is published, no
 *   tag); `mcp-release resume` then finishes it once the fault is gone;
 * - `resume-completes`: the release fails with the declared diagnosis (or is killed) leaving part of
 *   the release public, or at least a release folder to continue; `mcp-release resume --manifest`
 *   finishes it once the fault is gone.
 */
export type Outcome = 'completes' | 'resume-completes' | 'nothing-public';

/** A lab service by the name `lab.services` gives it. */
export type ServiceName = 'oidc' | 'fulcio' | 'rekor' | 'tsa' | 'registry' | 'github';

export interface FaultSpec {
  service: ServiceName;
  rule: FaultRule;
  /** Armed only when this step's ✔ line appears (a fault for a later phase of the release). */
  armAfter?: string;
}

export type KillSpec =
  /** SIGKILL as soon as the step's ✔ line appears. */
  | { kind: 'after-step'; step: string }
  /** SIGKILL once the case's first fault has been taken `hits` times, `waitMs` later (a held request is in flight). */
  | { kind: 'during-fault'; hits: number; waitMs: number };

export interface Diagnosis {
  /** The code of the `error CODE: …` line. */
  code: string;
  /** What its message must say besides. */
  message?: RegExp;
}

export interface ChaosCase {
  id: string;
  /** The service and endpoint, or the step. */
  target: string;
  /** The fault, in a few words. */
  fault: string;
  expected: Outcome;
  /** Required when the release is expected to fail on its own. */
  diagnosis?: Diagnosis;
  faults: FaultSpec[];
  kill?: KillSpec;
  /** Random bytes shipped in the package, so that its tarball takes a while to upload. */
  bigBytes?: number;
}

interface Target {
  key: string;
  label: string;
  service: ServiceName;
  route: string;
  method: string;
  armAfter?: string;
  /** When the fault keeps failing the endpoint: the diagnosis, and what is public by then. */
  repeated: { diagnosis: Diagnosis; expected: Outcome };
  /** A 4xx answer, never retried. */
  refusal: { status: number; body?: string; diagnosis: Diagnosis; expected: Outcome };
}

const OWNER_REPO = 'acme/widget';
const API = `^(/api/v3)?/repos/${OWNER_REPO}`;

/** Every service the release talks to, at the endpoint a fault there hurts most. */
export const TARGETS: readonly Target[] = [
  {
    key: 'oidc',
    label: 'OIDC token endpoint (signing)',
    service: 'oidc',
    route: '^/token$',
    method: 'GET',
    repeated: { diagnosis: { code: 'OIDC_TOKEN_FAILED', message: /after \d+ attempts/ }, expected: 'nothing-public' },
    refusal: { status: 401, body: '{"message":"Bad credentials"}', diagnosis: { code: 'OIDC_TOKEN_REFUSED', message: /HTTP 401/ }, expected: 'nothing-public' },
  },
  {
    key: 'oidc-npm',
    label: 'OIDC token endpoint (npm audience)',
    service: 'oidc',
    route: '^/token$',
    method: 'GET',
    armAfter: 'verify-draft',
    repeated: { diagnosis: { code: 'NPM_OIDC_TOKEN_UNAVAILABLE', message: /no ID token after \d+ attempts/ }, expected: 'nothing-public' },
    refusal: { status: 401, body: '{"message":"Bad credentials"}', diagnosis: { code: 'NPM_OIDC_TOKEN_REFUSED', message: /HTTP 401/ }, expected: 'nothing-public' },
  },
  {
    key: 'fulcio',
    label: 'Fulcio signingCert',
    service: 'fulcio',
    route: '^/api/v2/signingCert$',
    method: 'POST',
    repeated: { diagnosis: { code: 'SIGSTORE_CERTIFICATE_FAILED', message: /Fulcio/ }, expected: 'nothing-public' },
    refusal: { status: 400, body: '{"code":400,"message":"There was an error processing the identity token"}', diagnosis: { code: 'SIGSTORE_CERTIFICATE_FAILED', message: /Fulcio/ }, expected: 'nothing-public' },
  },
  {
    key: 'rekor',
    label: 'Rekor log entries',
    service: 'rekor',
    route: '^/api/v1/log/entries$',
    method: 'POST',
    repeated: { diagnosis: { code: 'SIGSTORE_WITNESS_FAILED', message: /Rekor/ }, expected: 'nothing-public' },
    refusal: { status: 400, body: '{"code":400,"message":"error processing entry"}', diagnosis: { code: 'SIGSTORE_WITNESS_FAILED', message: /Rekor/ }, expected: 'nothing-public' },
  },
  {
    key: 'tsa',
    label: 'TSA timestamp',
    service: 'tsa',
    route: '^/api/v1/timestamp$',
    method: 'POST',
    repeated: { diagnosis: { code: 'SIGSTORE_WITNESS_FAILED', message: /timestamp authority/ }, expected: 'nothing-public' },
    refusal: { status: 400, body: '{"code":400,"message":"invalid timestamp request"}', diagnosis: { code: 'SIGSTORE_WITNESS_FAILED', message: /timestamp authority/ }, expected: 'nothing-public' },
  },
  {
    key: 'exchange',
    label: 'registry OIDC exchange',
    service: 'registry',
    route: '^/-/npm/v1/oidc/token/exchange/package/',
    method: 'POST',
    repeated: { diagnosis: { code: 'NPM_OIDC_EXCHANGE_UNAVAILABLE', message: /failed \d+ times/ }, expected: 'nothing-public' },
    refusal: {
      status: 403,
      body: '{"error":"the token\'s environment is not the bound one","message":"the token\'s environment is not the bound one","code":"wrong-environment"}',
      diagnosis: { code: 'NPM_OIDC_WRONG_ENVIRONMENT', message: /environment/ },
      expected: 'nothing-public',
    },
  },
  {
    key: 'publish',
    label: 'registry publish PUT',
    service: 'registry',
    route: '^/acme-widget$',
    method: 'PUT',
    repeated: { diagnosis: { code: 'NPM_PUBLISH_UNAVAILABLE', message: /\d+ attempts/ }, expected: 'nothing-public' },
    refusal: { status: 403, body: '{"error":"Forbidden"}', diagnosis: { code: 'NPM_PUBLISH_FORBIDDEN', message: /403/ }, expected: 'nothing-public' },
  },
  {
    key: 'release-create',
    label: 'GitHub release create',
    service: 'github',
    route: `${API}/releases$`,
    method: 'POST',
    repeated: { diagnosis: { code: 'GITHUB_API_FAILED', message: /create the draft release.*HTTP 503/ }, expected: 'nothing-public' },
    refusal: { status: 422, body: '{"message":"Validation Failed","errors":[{"resource":"Release","code":"custom","message":"refused by the chaos campaign"}]}', diagnosis: { code: 'GITHUB_API_FAILED', message: /create the draft release.*HTTP 422/ }, expected: 'nothing-public' },
  },
  {
    key: 'upload',
    label: 'GitHub asset upload',
    service: 'github',
    route: `${API}/releases/\\d+/assets$`,
    method: 'POST',
    repeated: { diagnosis: { code: 'GITHUB_API_FAILED', message: /upload the release asset.*HTTP 503/ }, expected: 'nothing-public' },
    refusal: { status: 422, body: '{"message":"Validation Failed","errors":[{"resource":"ReleaseAsset","code":"custom","message":"refused by the chaos campaign"}]}', diagnosis: { code: 'GITHUB_API_FAILED', message: /upload the release asset.*HTTP 422/ }, expected: 'nothing-public' },
  },
  {
    key: 'undraft',
    label: 'GitHub undraft PATCH',
    service: 'github',
    route: `${API}/releases/\\d+$`,
    method: 'PATCH',
    repeated: { diagnosis: { code: 'GITHUB_API_FAILED', message: /publish the draft release.*HTTP 503/ }, expected: 'resume-completes' },
    refusal: { status: 422, body: '{"message":"Validation Failed","errors":[{"resource":"Release","code":"custom","message":"refused by the chaos campaign"}]}', diagnosis: { code: 'GITHUB_API_FAILED', message: /publish the draft release.*HTTP 422/ }, expected: 'resume-completes' },
  },
  {
    key: 'git-push',
    label: 'git push (receive-pack)',
    service: 'github',
    route: `^/${OWNER_REPO}\\.git/git-receive-pack$`,
    method: 'POST',
    repeated: { diagnosis: { code: 'TAG_PUSH_FAILED', message: /after \d+ attempts/ }, expected: 'resume-completes' },
    refusal: { status: 403, body: 'Forbidden\n', diagnosis: { code: 'TAG_PUSH_DENIED', message: /refused the push/ }, expected: 'resume-completes' },
  },
];

/** Until cleared: more requests than any retry policy makes. */
export const REPEATED = 10_000;
export const SLOW_MS = 4_000;

function fault(t: Target, f: Fault, count: number): FaultSpec {
  return { service: t.service, rule: { route: t.route, method: t.method, count, fault: f }, ...(t.armAfter ? { armAfter: t.armAfter } : {}) };
}

/** The six faults at one target. */
export function faultCases(t: Target): ChaosCase[] {
  const base = { target: t.label };
  return [
    { ...base, id: `${t.key}-5xx-once`, fault: '503 once', expected: 'completes', faults: [fault(t, { kind: 'status', status: 503 }, 1)] },
    { ...base, id: `${t.key}-5xx-repeated`, fault: '503 until cleared', expected: t.repeated.expected, diagnosis: t.repeated.diagnosis, faults: [fault(t, { kind: 'status', status: 503 }, REPEATED)] },
    { ...base, id: `${t.key}-reset`, fault: 'connection reset once', expected: 'completes', faults: [fault(t, { kind: 'reset' }, 1)] },
    { ...base, id: `${t.key}-timeout`, fault: 'no answer once', expected: 'completes', faults: [fault(t, { kind: 'timeout' }, 1)] },
    { ...base, id: `${t.key}-slow`, fault: `${SLOW_MS / 1000} s delay, twice`, expected: 'completes', faults: [fault(t, { kind: 'delay', ms: SLOW_MS }, 2)] },
    {
      ...base,
      id: `${t.key}-4xx`,
      fault: `${t.refusal.status} once (no retry)`,
      expected: t.refusal.expected,
      diagnosis: t.refusal.diagnosis,
      faults: [fault(t, { kind: 'status', status: t.refusal.status, ...(t.refusal.body ? { body: t.refusal.body } : {}) }, 1)],
    },
  ];
}

/**
 * The steps of the widget's release (`release --no-native`) that finish with a ✔ line, in order:
 * a SIGKILL right after each. Steps that are skipped for the widget (no native part, no MCP server,
 * no golden scores to gate) have no boundary of their own, and after the last one
 * (verify-published) there is nothing left to resume.
 */
export const KILL_STEPS = [
  'plan',
  'build-npm',
  'sbom',
  'verify-script',
  'checksums',
  'sign',
  'provenance',
  'verify',
  'release-draft',
  'verify-draft',
  'publish-npm',
  'wait-registry',
  'push-tag',
  'undraft',
] as const;

export function killCases(): ChaosCase[] {
  const cases: ChaosCase[] = KILL_STEPS.map((step) => ({ id: `kill-after-${step}`, target: `step ${step}`, fault: 'SIGKILL after its ✔', expected: 'resume-completes', faults: [], kill: { kind: 'after-step', step } }));
  const upload = TARGETS.find((t) => t.key === 'upload') as Target;
  const publish = TARGETS.find((t) => t.key === 'publish') as Target;
  cases.push(
    {
      id: 'kill-mid-upload',
      target: 'step release-draft',
      fault: 'SIGKILL mid-upload (16 MB asset, uploads held 6 s)',
      expected: 'resume-completes',
      bigBytes: 16 * 1024 * 1024,
      faults: [fault(upload, { kind: 'delay', ms: 6_000 }, REPEATED)],
      kill: { kind: 'during-fault', hits: 3, waitMs: 1_500 },
    },
    {
      id: 'kill-mid-publish',
      target: 'step publish-npm',
      fault: 'SIGKILL mid-PUT (PUT held 6 s)',
      expected: 'resume-completes',
      faults: [fault(publish, { kind: 'delay', ms: 6_000 }, 1)],
      kill: { kind: 'during-fault', hits: 1, waitMs: 1_000 },
    },
  );
  return cases;
}

/** Downloads of release assets (verify-draft reads the draft through the API) stream like uploads. */
export function downloadCases(): ChaosCase[] {
  const route = `${API}/releases/assets/\\d+$`;
  const target = 'GitHub asset download (verify-draft)';
  return [
    { id: 'download-timeout', target, fault: 'no answer once', expected: 'completes', faults: [{ service: 'github', rule: { route, method: 'GET', count: 1, fault: { kind: 'timeout' } } }] },
    { id: 'download-reset', target, fault: 'connection reset once', expected: 'completes', faults: [{ service: 'github', rule: { route, method: 'GET', count: 1, fault: { kind: 'reset' } } }] },
  ];
}

/** Every case of the campaign, in the order they are listed (the runner may start them in another). */
export function allCases(): ChaosCase[] {
  return [{ id: 'baseline', target: 'everything', fault: 'none', expected: 'completes', faults: [] }, ...TARGETS.flatMap(faultCases), ...downloadCases(), ...killCases()];
}

/** The cases whose id matches `pattern` (a regular expression); all without one. */
export function selectCases(cases: readonly ChaosCase[], pattern: string | undefined): ChaosCase[] {
  if (!pattern) return [...cases];
  let re: RegExp;
  try {
    re = new RegExp(pattern);
  } catch {
    throw new Error(`--only ${JSON.stringify(pattern)} is not a regular expression`);
  }
  return cases.filter((c) => re.test(c.id));
}
