// The six streams: their names and parameters on the wire, and the decoding of an update.

import type { Coin, Delegation, UnbondingDelegation } from "./types.js";

/** What a subscription follows, as every transport names it. */
export interface Topic<T> {
  /** `/ws` stream name, e.g. `bank/balance`. */
  readonly stream: string;
  /** `/ws` subscribe params (without `since_height`). */
  readonly params: Readonly<Record<string, string>>;
  /** The path route under `/ws/subscribe/` and `/sse/subscribe/`, e.g.
   * `bank/balance/juno1.../ujuno`. */
  readonly path: string;
  /** Splits an update's JSON into its height and value; throws on a malformed update. */
  decode(data: unknown): [number, T];
}

type Json = Record<string, unknown>;

function object(data: unknown): Json {
  if (typeof data !== "object" || data === null || Array.isArray(data)) {
    throw new Error(`update is not a JSON object: ${JSON.stringify(data)}`);
  }
  return data as Json;
}

function height(data: Json): number {
  const h = data["height"];
  if (typeof h !== "number" || !Number.isSafeInteger(h)) {
    throw new Error(`update without an integer "height": ${JSON.stringify(data)}`);
  }
  return h;
}

function field<T>(data: Json, name: string, check: (v: unknown) => boolean): T {
  const v = data[name];
  if (!check(v)) throw new Error(`update with a bad "${name}": ${JSON.stringify(data)}`);
  return v as T;
}

const isArray = (v: unknown) => Array.isArray(v);
const isBool = (v: unknown) => typeof v === "boolean";
const isString = (v: unknown) => typeof v === "string";

const seg = encodeURIComponent;

function topic<T>(
  stream: string,
  params: Record<string, string>,
  path: string,
  value: (data: Json) => T,
): Topic<T> {
  return {
    stream,
    params,
    path,
    decode(data: unknown): [number, T] {
      const o = object(data);
      return [height(o), value(o)];
    },
  };
}

/** One denom of an account ("0" when absent). */
export function balance(address: string, denom: string): Topic<Coin> {
  return topic("bank/balance", { address, denom }, `bank/balance/${seg(address)}/${seg(denom)}`, (o) => ({
    denom: field<string>(o, "denom", isString),
    amount: field<string>(o, "amount", isString),
  }));
}

/** All balances of an account. */
export function balances(address: string): Topic<Coin[]> {
  return topic("bank/balances", { address }, `bank/balances/${seg(address)}`, (o) =>
    field<Coin[]>(o, "balances", isArray),
  );
}

/** All delegations of a delegator. */
export function delegations(delegator: string): Topic<Delegation[]> {
  return topic("staking/delegations", { delegator }, `staking/delegations/${seg(delegator)}`, (o) =>
    field<Delegation[]>(o, "delegations", isArray),
  );
}

/** One delegation (`null` when absent or removed). */
export function delegation(delegator: string, validator: string): Topic<Delegation | null> {
  return topic(
    "staking/delegation",
    { delegator, validator },
    `staking/delegation/${seg(delegator)}/${seg(validator)}`,
    (o) =>
      field<boolean>(o, "found", isBool)
        ? { delegation: o["delegation"] as Delegation["delegation"], balance: o["balance"] as Coin }
        : null,
  );
}

/** All unbonding delegations of a delegator. */
export function unbondingDelegations(delegator: string): Topic<UnbondingDelegation[]> {
  return topic(
    "staking/unbonding-delegations",
    { delegator },
    `staking/unbonding-delegations/${seg(delegator)}`,
    (o) => field<UnbondingDelegation[]>(o, "unbonding_delegations", isArray),
  );
}

/** One unbonding delegation (`null` when absent or completed). */
export function unbondingDelegation(
  delegator: string,
  validator: string,
): Topic<UnbondingDelegation | null> {
  return topic(
    "staking/unbonding-delegation",
    { delegator, validator },
    `staking/unbonding-delegation/${seg(delegator)}/${seg(validator)}`,
    (o) =>
      field<boolean>(o, "found", isBool) ? (o["unbonding_delegation"] as UnbondingDelegation) : null,
  );
}
