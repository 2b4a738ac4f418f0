//! `--simulate`: built-in traffic so a newcomer sees state move at once. Each block it signs
//! real transactions with the dev keys (sends, delegations, undelegations, redelegations and
//! unbonding cancellations) and submits them through CheckTx like any client.

use crate::address::Addr;
use crate::keys::{DevKey, VALIDATOR_KEYS};
use crate::node::Node;
use crate::state::{auth, staking};
use crate::tx::{sign, to_any};
use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    MsgBeginRedelegate, MsgCancelUnbondingDelegation, MsgDelegate, MsgUndelegate,
};
use num_bigint::BigUint;
use num_traits::ToPrimitive;
use sha2::{Digest, Sha256};
use tendermint_proto::google::protobuf::Any;

/// Accounts that transact in the simulation.
const USERS: &[&str] = &["alice", "bob", "carol"];

/// A small deterministic generator (SplitMix64): reproducible traffic without a dependency.
pub struct Rng(u64);

impl Rng {
    /// Seeded generator.
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    /// One of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// Submits `per_block` transactions after every committed block until `stop` resolves.
pub async fn run(node: Node, per_block: u32, stop: impl std::future::Future<Output = ()>) {
    let mut heights = node.heights();
    let mut rng = Rng::new(0x5EED);
    // Derived once: key derivation is an elliptic-curve multiplication per key.
    let keys: std::sync::Arc<Vec<DevKey>> = std::sync::Arc::new(DevKey::all());
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            changed = heights.changed() => if changed.is_err() { return },
        }
        let node = node.clone();
        let seed = rng.next_u64();
        let keys = keys.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut rng = Rng::new(seed);
            for _ in 0..per_block {
                if let Some(tx) = next_tx(&node, &keys, &mut rng) {
                    let outcome = node.submit_blocking(tx);
                    if outcome.code != 0 {
                        tracing::debug!(code = outcome.code, log = %outcome.log, "simulated tx refused");
                    }
                }
            }
        })
        .await;
    }
}

/// Builds one signed random transaction against the node's check state.
pub fn next_tx(node: &Node, keys: &[DevKey], rng: &mut Rng) -> Option<Vec<u8>> {
    let p = node.params().prefixes.clone();
    let denom = node.params().bond_denom.clone();
    let user = keys.iter().find(|k| k.name == *rng.pick(USERS))?;
    let vals: Vec<&DevKey> = keys
        .iter()
        .filter(|k| VALIDATOR_KEYS.contains(&k.name))
        .collect();
    let val = *rng.pick(&vals);
    let other = vals.iter().find(|v| v.name != val.name).copied()?;
    let amount = |n: u64| Coin {
        denom: denom.clone(),
        amount: n.max(1).to_string(),
    };
    let (msg, number, sequence): (Any, u64, u64) = node.with_check_state(|ctx| {
        let state = ctx.state();
        let acc = auth::account(state, &user.address)?.base;
        let del = staking::delegation(state, &user.address, &val.address);
        let delegated = del
            .as_ref()
            .zip(staking::validator(state, &val.address))
            .map(|(d, v)| {
                let shares = crate::state::parse_uint(&d.shares).unwrap_or_default();
                staking::delegation_balance(&v, &shares).unwrap_or_default()
            })
            .unwrap_or_default();
        let msg = match rng.below(100) {
            0..=44 => {
                let to = if rng.below(10) == 0 {
                    // A brand-new account now and then.
                    Addr(Sha256::digest(rng.next_u64().to_be_bytes())[..20].to_vec())
                } else {
                    keys.iter()
                        .find(|k| k.name == *rng.pick(USERS))?
                        .address
                        .clone()
                };
                to_any(&MsgSend {
                    from_address: p.acc(&user.address),
                    to_address: p.acc(&to),
                    amount: vec![amount(1 + rng.below(1_000_000))],
                })
            }
            45..=64 => to_any(&MsgDelegate {
                delegator_address: p.acc(&user.address),
                validator_address: p.val(&val.address),
                amount: Some(amount(1 + rng.below(5_000_000))),
            }),
            65..=79 if delegated > BigUint::from(1u32) => to_any(&MsgUndelegate {
                delegator_address: p.acc(&user.address),
                validator_address: p.val(&val.address),
                amount: Some(amount(1 + rng.below(fraction(&delegated)))),
            }),
            80..=89 if delegated > BigUint::from(1u32) => to_any(&MsgBeginRedelegate {
                delegator_address: p.acc(&user.address),
                validator_src_address: p.val(&val.address),
                validator_dst_address: p.val(&other.address),
                amount: Some(amount(1 + rng.below(fraction(&delegated)))),
            }),
            _ => {
                let ubd = staking::unbonding(state, &user.address, &val.address)?;
                let entry = ubd.entries.last()?;
                let balance = crate::state::parse_uint(&entry.balance)?.to_u64()?;
                if balance == 0 || entry.creation_height >= ctx.height {
                    return None;
                }
                to_any(&MsgCancelUnbondingDelegation {
                    delegator_address: p.acc(&user.address),
                    validator_address: p.val(&val.address),
                    amount: Some(amount(1 + rng.below(balance))),
                    creation_height: entry.creation_height,
                })
            }
        };
        Some((msg, acc.account_number, acc.sequence))
    })?;
    sign(
        user,
        node.chain_id(),
        number,
        sequence,
        vec![msg],
        "simulated",
    )
    .ok()
}

/// A third of an amount, at least 1, as a u64 range bound.
fn fraction(total: &BigUint) -> u64 {
    (total / BigUint::from(3u32))
        .to_u64()
        .unwrap_or(u64::MAX)
        .max(1)
}
