import { Transform } from 'node:stream';
import { formatDuration } from '@mcp-release/pipeline';

/**
 * The time limit of a call that streams a file (an upload or a download). It is not a limit on
 * the whole call, which takes as long as the file needs, but on a stall: the call is aborted when
 * no byte has moved for `ms`, while the body goes out, while the answer is awaited after the last
 * byte, and while the answer's body comes in. Without it, a server that takes the request and
 * never answers holds the release forever.
 */
export interface StallGuard {
  /** For the call (`request: { signal }`): aborted, with a TimeoutError, at a stall. */
  signal: AbortSignal;
  /** A pass-through for the streamed bytes: every chunk it passes is progress. */
  meter(): Transform;
  /** Ends the guard once the call is over, whichever way. */
  stop(): void;
}

export function stallGuard(ms: number, what: string): StallGuard {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const arm = (): void => {
    if (stopped || controller.signal.aborted) return;
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new DOMException(`${what} made no progress for ${formatDuration(ms)}`, 'TimeoutError')), ms);
  };
  arm();
  return {
    signal: controller.signal,
    meter: () =>
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          arm();
          done(null, chunk);
        },
        flush(done) {
          // the last byte went through: the answer (or the rest of the download) has `ms` to come
          arm();
          done();
        },
      }),
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
