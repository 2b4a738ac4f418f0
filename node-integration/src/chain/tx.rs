//! Transactions: decoding TxRaw (SIGN_MODE_DIRECT, secp256k1), the ante checks (signature,
//! account number, sequence, fees), message routing, and signing for the dev keyring.

use crate::address::{Addr, AddressError};
use crate::keys::DevKey;
use crate::state::auth::{FEE_COLLECTOR, account};
use crate::state::bank::parse_coin;
use crate::state::staking::TokenSource;
use crate::state::{Ctx, TxError, TxResult};
use cosmos_sdk_proto::cosmos::bank::v1beta1::MsgSend;
use cosmos_sdk_proto::cosmos::base::v1beta1::Coin;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    MsgBeginRedelegate, MsgCancelUnbondingDelegation, MsgDelegate, MsgUndelegate,
};
use cosmos_sdk_proto::cosmos::tx::v1beta1::{AuthInfo, SignDoc, TxBody, TxRaw, mode_info};
use k256::ecdsa::signature::Verifier;
use num_bigint::BigUint;
use prost::{Message, Name};
use sha2::{Digest, Sha256};
use tendermint_proto::google::protobuf::Any;

/// Maximum memo length (x/auth default).
pub const MAX_MEMO_CHARS: usize = 256;

/// A message the chain executes.
#[derive(Debug, Clone, PartialEq)]
pub enum Msg {
    /// MsgSend.
    Send {
        /// Sender.
        from: Addr,
        /// Recipient.
        to: Addr,
        /// Coins (denom, amount).
        coins: Vec<(String, BigUint)>,
    },
    /// MsgDelegate.
    Delegate {
        /// Delegator.
        del: Addr,
        /// Validator.
        val: Addr,
        /// Denom and amount.
        amount: (String, BigUint),
    },
    /// MsgUndelegate.
    Undelegate {
        /// Delegator.
        del: Addr,
        /// Validator.
        val: Addr,
        /// Denom and amount.
        amount: (String, BigUint),
    },
    /// MsgBeginRedelegate.
    Redelegate {
        /// Delegator.
        del: Addr,
        /// Source validator.
        src: Addr,
        /// Destination validator.
        dst: Addr,
        /// Denom and amount.
        amount: (String, BigUint),
    },
    /// MsgCancelUnbondingDelegation.
    CancelUnbonding {
        /// Delegator.
        del: Addr,
        /// Validator.
        val: Addr,
        /// Denom and amount.
        amount: (String, BigUint),
        /// Height the unbonding entry was created at.
        creation_height: i64,
    },
}

impl Msg {
    /// The account that must sign the message.
    pub fn signer(&self) -> &Addr {
        match self {
            Msg::Send { from, .. } => from,
            Msg::Delegate { del, .. }
            | Msg::Undelegate { del, .. }
            | Msg::Redelegate { del, .. }
            | Msg::CancelUnbonding { del, .. } => del,
        }
    }
}

/// A decoded, not yet verified transaction.
#[derive(Debug, Clone)]
pub struct DecodedTx {
    /// Upper-case hex SHA-256 of the tx bytes.
    pub hash: String,
    /// Raw parts.
    pub raw: TxRaw,
    /// Body.
    pub body: TxBody,
    /// Auth info.
    pub auth_info: AuthInfo,
    /// Messages.
    pub msgs: Vec<Msg>,
}

/// Hash of tx bytes as CometBFT and the SDK print it.
pub fn tx_hash(bytes: &[u8]) -> String {
    hex::encode_upper(Sha256::digest(bytes))
}

fn parse_err(e: impl std::fmt::Display) -> TxError {
    TxError::sdk(2, e.to_string())
}

fn addr_err(e: AddressError) -> TxError {
    TxError::sdk(7, e.to_string())
}

fn one_coin(c: Option<&Coin>, what: &str) -> TxResult<(String, BigUint)> {
    let c = c.ok_or_else(|| TxError::sdk(10, format!("{what} amount is missing")))?;
    parse_coin(c)
}

/// Decodes tx bytes and its messages (the SDK's TxDecoder + ValidateBasic).
pub fn decode_tx(
    bytes: &[u8],
    ctx_prefixes: &crate::address::Bech32Prefixes,
) -> TxResult<DecodedTx> {
    let raw = TxRaw::decode(bytes).map_err(parse_err)?;
    let body = TxBody::decode(raw.body_bytes.as_slice()).map_err(parse_err)?;
    let auth_info = AuthInfo::decode(raw.auth_info_bytes.as_slice()).map_err(parse_err)?;
    if body.messages.is_empty() {
        return Err(TxError::sdk(18, "must contain at least one message"));
    }
    let p = ctx_prefixes;
    let msgs = body
        .messages
        .iter()
        .map(|any| decode_msg(any, p))
        .collect::<TxResult<Vec<_>>>()?;
    Ok(DecodedTx {
        hash: tx_hash(bytes),
        raw,
        body,
        auth_info,
        msgs,
    })
}

fn decode_msg(any: &Any, p: &crate::address::Bech32Prefixes) -> TxResult<Msg> {
    let url = any.type_url.as_str();
    let bytes = any.value.as_slice();
    let msg = if url == MsgSend::type_url() {
        let m = MsgSend::decode(bytes).map_err(parse_err)?;
        let coins = m
            .amount
            .iter()
            .map(parse_coin)
            .collect::<TxResult<Vec<_>>>()?;
        if coins.is_empty() {
            return Err(TxError::sdk(10, "send amount is empty"));
        }
        Msg::Send {
            from: p
                .account("from_address", &m.from_address)
                .map_err(addr_err)?,
            to: p.account("to_address", &m.to_address).map_err(addr_err)?,
            coins,
        }
    } else if url == MsgDelegate::type_url() {
        let m = MsgDelegate::decode(bytes).map_err(parse_err)?;
        Msg::Delegate {
            del: p
                .account("delegator_address", &m.delegator_address)
                .map_err(addr_err)?,
            val: p
                .validator("validator_address", &m.validator_address)
                .map_err(addr_err)?,
            amount: one_coin(m.amount.as_ref(), "delegation")?,
        }
    } else if url == MsgUndelegate::type_url() {
        let m = MsgUndelegate::decode(bytes).map_err(parse_err)?;
        Msg::Undelegate {
            del: p
                .account("delegator_address", &m.delegator_address)
                .map_err(addr_err)?,
            val: p
                .validator("validator_address", &m.validator_address)
                .map_err(addr_err)?,
            amount: one_coin(m.amount.as_ref(), "undelegation")?,
        }
    } else if url == MsgBeginRedelegate::type_url() {
        let m = MsgBeginRedelegate::decode(bytes).map_err(parse_err)?;
        Msg::Redelegate {
            del: p
                .account("delegator_address", &m.delegator_address)
                .map_err(addr_err)?,
            src: p
                .validator("validator_src_address", &m.validator_src_address)
                .map_err(addr_err)?,
            dst: p
                .validator("validator_dst_address", &m.validator_dst_address)
                .map_err(addr_err)?,
            amount: one_coin(m.amount.as_ref(), "redelegation")?,
        }
    } else if url == MsgCancelUnbondingDelegation::type_url() {
        let m = MsgCancelUnbondingDelegation::decode(bytes).map_err(parse_err)?;
        if m.creation_height <= 0 {
            return Err(TxError::sdk(
                18,
                "invalid height: creation_height must be positive",
            ));
        }
        Msg::CancelUnbonding {
            del: p
                .account("delegator_address", &m.delegator_address)
                .map_err(addr_err)?,
            val: p
                .validator("validator_address", &m.validator_address)
                .map_err(addr_err)?,
            amount: one_coin(m.amount.as_ref(), "cancel unbonding")?,
            creation_height: m.creation_height,
        }
    } else {
        return Err(TxError::sdk(2, format!("unable to resolve type URL {url}")));
    };
    Ok(msg)
}

/// The ante handler: single signer, SIGN_MODE_DIRECT signature over the SignDoc, account
/// number and sequence, memo, timeout height, fees. Increments the signer's sequence and
/// records its public key, as x/auth does; these writes stay even if a message later fails.
pub fn ante(ctx: &mut Ctx, tx: &DecodedTx, chain_id: &str) -> TxResult<()> {
    if tx.body.memo.chars().count() > MAX_MEMO_CHARS {
        return Err(TxError::sdk(
            12,
            format!(
                "maximum number of characters is {MAX_MEMO_CHARS} but received {} characters",
                tx.body.memo.chars().count()
            ),
        ));
    }
    if tx.body.timeout_height != 0 && (tx.body.timeout_height as i64) < ctx.height {
        return Err(TxError::sdk(
            30,
            format!(
                "block height: {}, timeout height: {}",
                ctx.height, tx.body.timeout_height
            ),
        ));
    }
    let signer = tx.msgs[0].signer().clone();
    if tx.msgs.iter().any(|m| m.signer() != &signer) {
        return Err(TxError::sdk(
            4,
            "streamd accepts single-signer transactions only; all messages must have the same signer",
        ));
    }
    if tx.raw.signatures.is_empty() {
        return Err(TxError::sdk(15, "no signatures supplied"));
    }
    if tx.auth_info.signer_infos.len() != 1 || tx.raw.signatures.len() != 1 {
        return Err(TxError::sdk(
            4,
            format!(
                "wrong number of signers; expected 1, got {} signer infos and {} signatures",
                tx.auth_info.signer_infos.len(),
                tx.raw.signatures.len()
            ),
        ));
    }
    let info = &tx.auth_info.signer_infos[0];
    let direct = matches!(
        info.mode_info.as_ref().and_then(|m| m.sum.as_ref()),
        Some(mode_info::Sum::Single(s)) if s.mode == 1
    );
    if !direct {
        return Err(TxError::sdk(
            4,
            "unsupported sign mode: streamd verifies SIGN_MODE_DIRECT only",
        ));
    }
    let prefixes = ctx.params.prefixes.clone();
    let Some(acc) = account(ctx.state(), &signer) else {
        return Err(TxError::sdk(
            9,
            format!("account {} not found", prefixes.acc(&signer)),
        ));
    };
    let mut base = acc.base;
    let pk_any = match (&info.public_key, &base.pub_key) {
        (Some(pk), _) => pk.clone(),
        (None, Some(pk)) => pk.clone(),
        (None, None) => return Err(TxError::sdk(8, "pubkey on account is not set")),
    };
    let pk = cosmrs::crypto::PublicKey::try_from(&pk_any)
        .map_err(|e| TxError::sdk(8, format!("invalid public key: {e}")))?;
    if pk.type_url() != cosmrs::crypto::PublicKey::SECP256K1_TYPE_URL {
        return Err(TxError::sdk(8, "only secp256k1 public keys are supported"));
    }
    let pk_addr = pk
        .account_id(&prefixes.account)
        .map_err(|e| TxError::sdk(8, e.to_string()))?;
    if pk_addr.to_bytes() != signer.0 {
        return Err(TxError::sdk(
            8,
            format!(
                "pubKey does not match signer address {} with signer index: 0",
                prefixes.acc(&signer)
            ),
        ));
    }
    if info.sequence != base.sequence {
        return Err(TxError::sdk(
            32,
            format!(
                "account sequence mismatch, expected {}, got {}",
                base.sequence, info.sequence
            ),
        ));
    }
    let sign_doc = SignDoc {
        body_bytes: tx.raw.body_bytes.clone(),
        auth_info_bytes: tx.raw.auth_info_bytes.clone(),
        chain_id: chain_id.into(),
        account_number: base.account_number,
    };
    if !verify_secp256k1(
        &pk.to_bytes(),
        &sign_doc.encode_to_vec(),
        &tx.raw.signatures[0],
    ) {
        return Err(TxError::sdk(
            4,
            format!(
                "signature verification failed; please verify account number ({}), sequence ({}) and chain-id ({chain_id})",
                base.account_number, base.sequence
            ),
        ));
    }
    if let Some(fee) = &tx.auth_info.fee {
        for c in &fee.amount {
            let (denom, amount) = parse_coin(c)?;
            ctx.send(&signer, &Addr::module(FEE_COLLECTOR), &denom, &amount)
                .map_err(|e| {
                    TxError::sdk(5, format!("insufficient funds to pay for fees; {}", e.log))
                })?;
        }
    }
    base.sequence += 1;
    base.pub_key = Some(pk_any);
    ctx.set_base_account(&signer, &base);
    Ok(())
}

/// ECDSA secp256k1 over SHA-256, 64-byte r||s, low-S only (the SDK rejects malleable
/// high-S signatures).
fn verify_secp256k1(pubkey: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(key) = k256::ecdsa::VerifyingKey::from_sec1_bytes(pubkey) else {
        return false;
    };
    let Ok(sig) = k256::ecdsa::Signature::from_slice(sig) else {
        return false;
    };
    sig.normalize_s().is_none() && key.verify(msg, &sig).is_ok()
}

/// Executes the messages in order (all or nothing: the caller rolls back on error).
pub fn execute(ctx: &mut Ctx, msgs: &[Msg]) -> TxResult<()> {
    for msg in msgs {
        match msg {
            Msg::Send { from, to, coins } => {
                for (denom, amount) in coins {
                    ctx.send(from, to, denom, amount)?;
                }
            }
            Msg::Delegate { del, val, amount } => {
                if amount.0 != ctx.params.bond_denom {
                    return Err(TxError::sdk(
                        18,
                        format!(
                            "invalid coin denomination: got {}, expected {}",
                            amount.0, ctx.params.bond_denom
                        ),
                    ));
                }
                ctx.delegate(del, val, &amount.1, TokenSource::Account)?;
            }
            Msg::Undelegate { del, val, amount } => {
                ctx.undelegate(del, val, &amount.0, &amount.1)?;
            }
            Msg::Redelegate {
                del,
                src,
                dst,
                amount,
            } => {
                ctx.redelegate(del, src, dst, &amount.0, &amount.1)?;
            }
            Msg::CancelUnbonding {
                del,
                val,
                amount,
                creation_height,
            } => {
                ctx.cancel_unbonding(del, val, &amount.0, &amount.1, *creation_height)?;
            }
        }
    }
    Ok(())
}

/// Builds and signs a transaction with a dev key (SIGN_MODE_DIRECT, no fee, gas 200000).
pub fn sign(
    key: &DevKey,
    chain_id: &str,
    account_number: u64,
    sequence: u64,
    msgs: Vec<Any>,
    memo: &str,
) -> Result<Vec<u8>, cosmrs::ErrorReport> {
    let body = cosmrs::tx::Body::new(msgs, memo, 0u32);
    let auth_info =
        cosmrs::tx::SignerInfo::single_direct(Some(key.signing_key.public_key()), sequence)
            .auth_info(cosmrs::tx::Fee {
                amount: Vec::new(),
                gas_limit: 200_000,
                payer: None,
                granter: None,
            });
    let chain_id: cosmrs::tendermint::chain::Id = chain_id.parse()?;
    cosmrs::tx::SignDoc::new(&body, &auth_info, &chain_id, account_number)?
        .sign(&key.signing_key)?
        .to_bytes()
}

/// Wraps a message in an Any.
pub fn to_any<M: Message + Name>(m: &M) -> Any {
    Any {
        type_url: M::type_url(),
        value: m.encode_to_vec(),
    }
}
