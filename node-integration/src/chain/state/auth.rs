//! x/auth: accounts (number, sequence, public key) and module accounts.

use super::{Ctx, keys, read_u64};
use crate::address::Addr;
use crate::store::{MultiStore, StoreKey};
use cosmos_sdk_proto::cosmos::auth::v1beta1::{BaseAccount, ModuleAccount};
use prost::Message;
use tendermint_proto::google::protobuf::Any;

/// Type URL of a plain account.
pub const BASE_ACCOUNT: &str = "/cosmos.auth.v1beta1.BaseAccount";
/// Type URL of a module account.
pub const MODULE_ACCOUNT: &str = "/cosmos.auth.v1beta1.ModuleAccount";
/// Module holding bonded stake.
pub const BONDED_POOL: &str = "bonded_tokens_pool";
/// Module holding unbonding stake.
pub const NOT_BONDED_POOL: &str = "not_bonded_tokens_pool";
/// Module collecting fees.
pub const FEE_COLLECTOR: &str = "fee_collector";

/// An account as stored: the Any, and the BaseAccount inside it.
#[derive(Debug, Clone, PartialEq)]
pub struct Account {
    /// The stored Any (BaseAccount or ModuleAccount).
    pub any: Any,
    /// Its base account.
    pub base: BaseAccount,
}

/// Reads an account.
pub fn account(state: &MultiStore, addr: &Addr) -> Option<Account> {
    let any = Any::decode(state.get(StoreKey::Acc, &keys::account(addr))?.as_slice()).ok()?;
    let base = match any.type_url.as_str() {
        BASE_ACCOUNT => BaseAccount::decode(any.value.as_slice()).ok()?,
        MODULE_ACCOUNT => {
            ModuleAccount::decode(any.value.as_slice())
                .ok()?
                .base_account?
        }
        _ => return None,
    };
    Some(Account { any, base })
}

impl Ctx {
    /// The account at `addr`, created (with the next account number) if it does not exist,
    /// as x/bank does for a recipient.
    pub fn ensure_account(&mut self, addr: &Addr) -> BaseAccount {
        if let Some(acc) = account(self.state(), addr) {
            return acc.base;
        }
        let number = self.next_sequence(StoreKey::Acc, keys::GLOBAL_ACCOUNT_NUMBER);
        let base = BaseAccount {
            address: self.params.prefixes.acc(addr),
            pub_key: None,
            account_number: number,
            sequence: 0,
        };
        self.set_base_account(addr, &base);
        self.ws
            .set(StoreKey::Acc, keys::account_number(number), addr.0.clone());
        base
    }

    /// Creates a module account (genesis).
    pub fn create_module_account(&mut self, name: &str, permissions: &[&str]) {
        let addr = Addr::module(name);
        let number = self.next_sequence(StoreKey::Acc, keys::GLOBAL_ACCOUNT_NUMBER);
        let module = ModuleAccount {
            base_account: Some(BaseAccount {
                address: self.params.prefixes.acc(&addr),
                pub_key: None,
                account_number: number,
                sequence: 0,
            }),
            name: name.into(),
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
        };
        let any = Any {
            type_url: MODULE_ACCOUNT.into(),
            value: module.encode_to_vec(),
        };
        self.ws
            .set(StoreKey::Acc, keys::account(&addr), any.encode_to_vec());
        self.ws
            .set(StoreKey::Acc, keys::account_number(number), addr.0.clone());
    }

    /// Writes a plain account.
    pub fn set_base_account(&mut self, addr: &Addr, base: &BaseAccount) {
        let any = Any {
            type_url: BASE_ACCOUNT.into(),
            value: base.encode_to_vec(),
        };
        self.ws
            .set(StoreKey::Acc, keys::account(addr), any.encode_to_vec());
    }

    /// Number of accounts created so far.
    pub fn account_count(&self) -> u64 {
        read_u64(self.state().get(StoreKey::Acc, keys::GLOBAL_ACCOUNT_NUMBER))
    }
}
