//! The genesis file (`config/genesis.json`): chain id, time, parameters, funded accounts and
//! validators; and the dev genesis `streamd init` writes.

use crate::address::{Addr, Bech32Prefixes};
use crate::keys::{DevKey, VALIDATOR_KEYS};
use crate::state::auth::{BONDED_POOL, FEE_COLLECTOR, NOT_BONDED_POOL};
use crate::state::staking::TokenSource;
use crate::state::{Ctx, Params, dec_one, parse_uint};
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    Commission, CommissionRates, Description, Validator,
};
use num_bigint::BigUint;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::time::{Duration, SystemTime};
use tendermint_proto::google::protobuf::Any;

/// Genesis file contents.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Genesis {
    /// Chain id (signed into every transaction).
    pub chain_id: String,
    /// RFC 3339 time of the genesis.
    pub genesis_time: String,
    /// Bond denom.
    pub bond_denom: String,
    /// Unbonding time, humantime (`60s`, `21days`).
    pub unbonding_time: String,
    /// Bech32 account prefix.
    pub account_prefix: String,
    /// Bech32 validator prefix.
    pub validator_prefix: String,
    /// Funded accounts.
    pub accounts: Vec<GenesisAccount>,
    /// Validators and their self-delegations (taken from their operator's balance).
    pub validators: Vec<GenesisValidator>,
}

/// A funded account.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenesisAccount {
    /// Dev key name (informative).
    pub name: String,
    /// Bech32 address.
    pub address: String,
    /// Balances, as `{"denom","amount"}`.
    pub coins: Vec<GenesisCoin>,
}

/// A coin in JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenesisCoin {
    /// Denom.
    pub denom: String,
    /// Integer amount.
    pub amount: String,
}

/// A validator at genesis.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GenesisValidator {
    /// Moniker.
    pub moniker: String,
    /// `junovaloper1...`.
    pub operator_address: String,
    /// Bond tokens the operator self-delegates.
    pub self_delegation: String,
    /// Base64 ed25519 consensus public key (the `pub_key.value` of the node's
    /// `priv_validator_key.json`). Absent on the dev chain, which has no consensus engine and
    /// uses a stand-in derived from the moniker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consensus_pubkey: Option<String>,
}

/// Balances of each dev user account at genesis.
pub const DEV_USER_UJUNO: u64 = 100_000_000_000;
/// Second denom of each dev user account.
pub const DEV_USER_UATOM: u64 = 1_000_000_000;
/// Each dev validator's self-delegation.
pub const DEV_SELF_DELEGATION: u64 = 10_000_000_000;

impl Genesis {
    /// The dev genesis: alice, bob, carol funded; validator1 and validator2 bonded.
    pub fn dev(chain_id: &str, unbonding_time: Duration, time: SystemTime) -> Genesis {
        let p = Bech32Prefixes::default();
        let coin = |d: &str, a: u64| GenesisCoin {
            denom: d.into(),
            amount: a.to_string(),
        };
        let accounts = DevKey::all()
            .into_iter()
            .map(|k| {
                let is_val = VALIDATOR_KEYS.contains(&k.name);
                let coins = if is_val {
                    vec![coin("ujuno", DEV_USER_UJUNO + DEV_SELF_DELEGATION)]
                } else {
                    vec![coin("uatom", DEV_USER_UATOM), coin("ujuno", DEV_USER_UJUNO)]
                };
                GenesisAccount {
                    name: k.name.into(),
                    address: p.acc(&k.address),
                    coins,
                }
            })
            .collect();
        let validators = VALIDATOR_KEYS
            .iter()
            .map(|n| GenesisValidator {
                moniker: n.to_string(),
                operator_address: p.val(&DevKey::get(n).expect("dev key").address),
                self_delegation: DEV_SELF_DELEGATION.to_string(),
                consensus_pubkey: None,
            })
            .collect();
        Genesis {
            chain_id: chain_id.into(),
            genesis_time: humantime::format_rfc3339_millis(time).to_string(),
            bond_denom: "ujuno".into(),
            unbonding_time: humantime::format_duration(unbonding_time).to_string(),
            account_prefix: p.account,
            validator_prefix: p.validator,
            accounts,
            validators,
        }
    }

    /// A genesis from `config/genesis.json`: CometBFT's format (the Cosmos genesis in
    /// `app_state`; `chain_id` and `genesis_time` are CometBFT's) or the dev chain's own.
    pub fn from_json(text: &str) -> Result<Genesis, serde_json::Error> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        match value.get("app_state") {
            Some(app_state) => {
                let mut g: Genesis = serde_json::from_value(app_state.clone())?;
                if let Some(id) = value.get("chain_id").and_then(|v| v.as_str()) {
                    g.chain_id = id.to_owned();
                }
                if let Some(t) = value.get("genesis_time").and_then(|v| v.as_str()) {
                    g.genesis_time = t.to_owned();
                }
                Ok(g)
            }
            None => serde_json::from_value(value),
        }
    }

    /// A testnet genesis: the dev accounts, plus one bonded validator per consensus key
    /// (`validator1`, `validator2`, ... of the dev keyring, in order), each funded like the
    /// dev validators.
    pub fn testnet(
        chain_id: &str,
        unbonding_time: Duration,
        time: SystemTime,
        consensus_keys: &[String],
    ) -> Genesis {
        let mut g = Genesis::dev(chain_id, unbonding_time, time);
        let p = Bech32Prefixes::default();
        g.accounts.retain(|a| !a.name.starts_with("validator"));
        g.validators.clear();
        for (i, key) in consensus_keys.iter().enumerate() {
            let name = crate::keys::TESTNET_VALIDATOR_KEYS[i];
            let dev = DevKey::get(name).expect("testnet validator key");
            g.accounts.push(GenesisAccount {
                name: name.into(),
                address: p.acc(&dev.address),
                coins: vec![GenesisCoin {
                    denom: "ujuno".into(),
                    amount: (DEV_USER_UJUNO + DEV_SELF_DELEGATION).to_string(),
                }],
            });
            g.validators.push(GenesisValidator {
                moniker: name.into(),
                operator_address: p.val(&dev.address),
                self_delegation: DEV_SELF_DELEGATION.to_string(),
                consensus_pubkey: Some(key.clone()),
            });
        }
        g
    }

    /// Chain parameters, validated.
    pub fn params(&self) -> Result<Params, String> {
        let unbonding_time = humantime::parse_duration(&self.unbonding_time)
            .map_err(|e| format!("unbonding_time {:?}: {e}", self.unbonding_time))?;
        crate::state::bank::validate_denom(&self.bond_denom)?;
        Ok(Params {
            bond_denom: self.bond_denom.clone(),
            unbonding_time,
            max_entries: 7,
            prefixes: Bech32Prefixes {
                account: self.account_prefix.clone(),
                validator: self.validator_prefix.clone(),
            },
        })
    }

    /// Genesis time.
    pub fn time(&self) -> Result<SystemTime, String> {
        humantime::parse_rfc3339_weak(&self.genesis_time)
            .map_err(|e| format!("genesis_time {:?}: {e}", self.genesis_time))
    }

    /// InitChain: writes the genesis state into `ctx`.
    pub fn apply(&self, ctx: &mut Ctx) -> Result<(), String> {
        let prefixes = ctx.params.prefixes.clone();
        ctx.create_module_account(FEE_COLLECTOR, &[]);
        ctx.create_module_account(BONDED_POOL, &["burner", "staking"]);
        ctx.create_module_account(NOT_BONDED_POOL, &["burner", "staking"]);
        for acc in &self.accounts {
            let addr = prefixes
                .account("accounts.address", &acc.address)
                .map_err(|e| e.to_string())?;
            ctx.ensure_account(&addr);
            for c in &acc.coins {
                let coin = Coin {
                    denom: c.denom.clone(),
                    amount: c.amount.clone(),
                };
                let (denom, amount) = crate::state::bank::parse_coin(&coin)
                    .map_err(|e| format!("account {}: {e}", acc.address))?;
                ctx.mint(&addr, &denom, &amount);
            }
        }
        for gv in &self.validators {
            let val = prefixes
                .validator("validators.operator_address", &gv.operator_address)
                .map_err(|e| e.to_string())?;
            let amount = parse_uint(&gv.self_delegation)
                .ok_or_else(|| format!("validator {}: bad self_delegation", gv.moniker))?;
            let cons_key = match &gv.consensus_pubkey {
                Some(b64) => decode_ed25519(b64)
                    .map_err(|e| format!("validator {} consensus_pubkey: {e}", gv.moniker))?,
                // A deterministic stand-in: the dev chain has no consensus engine.
                None => {
                    Sha256::digest(format!("streamd-consensus/{}", gv.moniker).as_bytes()).to_vec()
                }
            };
            ctx.create_validator(&val, new_validator(&prefixes, &val, &gv.moniker, cons_key));
            ctx.delegate(&val, &val, &amount, TokenSource::Account)
                .map_err(|e| format!("validator {} self-delegation: {e}", gv.moniker))?;
        }
        Ok(())
    }
}

/// A base64 ed25519 public key (32 bytes).
pub fn decode_ed25519(b64: &str) -> Result<Vec<u8>, String> {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("{b64:?} is not base64: {e}"))?;
    if key.len() != 32 {
        return Err(format!(
            "{b64:?} is {} bytes, an ed25519 public key is 32",
            key.len()
        ));
    }
    Ok(key)
}

fn new_validator(p: &Bech32Prefixes, val: &Addr, moniker: &str, cons_key: Vec<u8>) -> Validator {
    let rate = |pct: u64| (BigUint::from(pct) * dec_one() / BigUint::from(100u64)).to_string();
    Validator {
        operator_address: p.val(val),
        consensus_pubkey: Some(Any {
            type_url: "/cosmos.crypto.ed25519.PubKey".into(),
            value: prost::Message::encode_to_vec(
                &cosmos_sdk_proto::cosmos::crypto::ed25519::PubKey { key: cons_key },
            ),
        }),
        jailed: false,
        status: 3, // BOND_STATUS_BONDED
        tokens: "0".into(),
        delegator_shares: "0".into(),
        description: Some(Description {
            moniker: moniker.into(),
            ..Default::default()
        }),
        unbonding_height: 0,
        unbonding_time: Some(crate::state::timestamp(std::time::UNIX_EPOCH)),
        commission: Some(Commission {
            commission_rates: Some(CommissionRates {
                rate: rate(10),
                max_rate: rate(20),
                max_change_rate: rate(1),
            }),
            update_time: Some(crate::state::timestamp(std::time::UNIX_EPOCH)),
        }),
        min_self_delegation: "1".into(),
        unbonding_on_hold_ref_count: 0,
        unbonding_ids: Vec::new(),
    }
}
