// Reconnect delays: exponential backoff with jitter (the Rust client's `Backoff`).

/** How long to wait before each reconnect attempt after consecutive failures. */
export interface BackoffOptions {
  /** Nominal delay before the first reconnect attempt, ms (default 1000). */
  initialMs: number;
  /** Largest nominal delay, ms (default 60000). */
  maxMs: number;
  /** Growth factor per consecutive failure (default 2). */
  multiplier: number;
  /** Relative jitter: each delay is the nominal one times a factor drawn from
   * [1 - jitter, 1 + jitter] (default 0.2). */
  jitter: number;
}

export const DEFAULT_BACKOFF: Readonly<BackoffOptions> = Object.freeze({
  initialMs: 1000,
  maxMs: 60000,
  multiplier: 2,
  jitter: 0.2,
});

/**
 * Attempt `n` (1-based) waits min(initial * multiplier^(n-1), max), the nominal delay,
 * times a random factor in [1 - jitter, 1 + jitter]. Defaults: 1, 2, 4, ... 32, 60, 60 s,
 * each +-20%.
 */
export class Backoff {
  readonly options: BackoffOptions;

  constructor(options: Partial<BackoffOptions> = {}) {
    this.options = { ...DEFAULT_BACKOFF, ...options };
  }

  /** The nominal delay before attempt `attempt` (1-based; 0 counts as 1), ms. */
  nominal(attempt: number): number {
    const { initialMs, maxMs, multiplier } = this.options;
    const exponent = Math.min(Math.max(attempt - 1, 0), 64);
    return Math.min(initialMs * Math.max(multiplier, 1) ** exponent, maxMs);
  }

  /** [lowest, highest] delay before attempt `attempt`, ms. */
  bounds(attempt: number): [number, number] {
    const nominal = this.nominal(attempt);
    const jitter = Math.min(Math.max(this.options.jitter, 0), 1);
    return [nominal * (1 - jitter), nominal * (1 + jitter)];
  }

  /** A delay before attempt `attempt`; `random` returns a number in [0, 1). */
  delay(attempt: number, random: () => number = Math.random): number {
    const [lo, hi] = this.bounds(attempt);
    return lo + (hi - lo) * random();
  }
}
