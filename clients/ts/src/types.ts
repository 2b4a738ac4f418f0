// The values the streams carry (the WebSocket JSON of the stream module, without "height"),
// what a subscription yields, and where its connection stands.

/** An amount of one denom; `amount` is an integer string. */
export interface Coin {
  denom: string;
  amount: string;
}

/** A delegation with its value in tokens. `shares` is an 18-place decimal string. */
export interface Delegation {
  delegation: {
    delegator_address: string;
    validator_address: string;
    shares: string;
  };
  balance: Coin;
}

/** One entry of an unbonding delegation. */
export interface UnbondingEntry {
  creation_height: number;
  /** RFC 3339, UTC. */
  completion_time: string;
  initial_balance: string;
  balance: string;
  unbonding_id: number;
  unbonding_on_hold_ref_count: number;
}

/** The unbonding entries of a delegator with one validator. */
export interface UnbondingDelegation {
  delegator_address: string;
  validator_address: string;
  entries: UnbondingEntry[];
}

/**
 * Where an update stands in its subscription's sequence:
 * - `snapshot`: the first value, the state at a committed height;
 * - `change`: the value changed at this height; after the snapshot every change arrives
 *   exactly once, across reconnects and failovers;
 * - `resynced`: a fresh snapshot because the node could no longer resume after
 *   `lastHeight` (outside its replay window): changes between `lastHeight` and this height
 *   may have been missed. Explicit, never a silent skip.
 */
export type UpdateKind = "snapshot" | "change" | "resynced";

/** One value of a subscription, in strictly increasing height order. */
export interface Update<T> {
  height: number;
  value: T;
  kind: UpdateKind;
  /** For `resynced`: the height of the last value delivered before it. */
  lastHeight?: number;
}

/** Where a subscription's connection stands. */
export type ConnectionState =
  | { status: "connecting" }
  | { status: "live"; endpoint: string }
  | { status: "reconnecting"; attempt: number }
  | { status: "failed"; reason: string };

/** Why a subscription ended for good: the request is invalid (never retried), or
 * `maxAttempts` consecutive attempts failed. */
export class StreamError extends Error {
  constructor(
    readonly code: "invalid_request" | "gave_up",
    message: string,
  ) {
    super(message);
    this.name = "StreamError";
  }
}
