//! Plugin mode's [`KvReader`]: committed state at a height, read from the host node's
//! standard gRPC queries (`x-cosmos-block-height`) and turned back into the store entries
//! the change-set decoder reads, so snapshots and updates go through one decoder.

use cosmos_sdk_proto::cosmos::auth::v1beta1::Bech32PrefixRequest;
use cosmos_sdk_proto::cosmos::auth::v1beta1::query_client::QueryClient as AuthClient;
use cosmos_sdk_proto::cosmos::bank::v1beta1::QueryAllBalancesRequest;
use cosmos_sdk_proto::cosmos::bank::v1beta1::query_client::QueryClient as BankClient;
use cosmos_sdk_proto::cosmos::base::query::v1beta1::{PageRequest, PageResponse};
use cosmos_sdk_proto::cosmos::staking::v1beta1::query_client::QueryClient as StakingClient;
use cosmos_sdk_proto::cosmos::staking::v1beta1::{
    QueryDelegatorDelegationsRequest, QueryDelegatorUnbondingDelegationsRequest,
    QueryParamsRequest, QueryValidatorsRequest,
};
use prost::Message;
use std::time::Duration;
use stream_abci_listener::{BANK_STORE, STAKING_STORE};
use stream_module::{Chain, KvReader, ReadError};
use tonic::transport::Channel;

/// Metadata key selecting the height of a query (and reporting it in the response).
const HEIGHT_HEADER: &str = "x-cosmos-block-height";
/// Items per page of the host's list queries.
const PAGE_LIMIT: u64 = 1000;
/// How long one query to the host may take.
const QUERY_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads the host node's committed state over its gRPC queries.
#[derive(Clone)]
pub struct HostReader {
    channel: Channel,
    chain: Chain,
}

/// A lazily connected channel to the host's gRPC server (it may start after the plugin).
pub fn host_channel(url: &str) -> anyhow::Result<Channel> {
    Ok(tonic::transport::Endpoint::from_shared(url.to_owned())
        .map_err(|e| anyhow::anyhow!("--node-grpc {url:?}: {e}"))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(QUERY_TIMEOUT)
        .connect_lazy())
}

/// The chain's prefixes and bond denom, as the host reports them
/// (`cosmos.auth.v1beta1.Query/Bech32Prefix`, `cosmos.staking.v1beta1.Query/Params`).
pub async fn host_chain(channel: &Channel) -> Result<Chain, tonic::Status> {
    let prefix = AuthClient::new(channel.clone())
        .bech32_prefix(Bech32PrefixRequest {})
        .await?
        .into_inner()
        .bech32_prefix;
    let bond_denom = StakingClient::new(channel.clone())
        .params(QueryParamsRequest {})
        .await?
        .into_inner()
        .params
        .map(|p| p.bond_denom)
        .unwrap_or_default();
    if prefix.is_empty() || bond_denom.is_empty() {
        return Err(tonic::Status::failed_precondition(format!(
            "the host reports bech32 prefix {prefix:?} and bond denom {bond_denom:?}"
        )));
    }
    Ok(Chain {
        validator_prefix: format!("{prefix}valoper"),
        account_prefix: prefix,
        bond_denom,
    })
}

impl HostReader {
    /// A reader for the chain described by `chain`, over `channel`.
    pub fn new(channel: Channel, chain: Chain) -> HostReader {
        HostReader { channel, chain }
    }

    fn bech32(&self, prefix: &str, bytes: &[u8]) -> Result<String, String> {
        cosmrs::AccountId::new(prefix, bytes)
            .map(|a| a.to_string())
            .map_err(|e| format!("cannot encode an address with prefix {prefix}: {e}"))
    }

    /// `0x21|len|validator` and the like: a store key from a prefix byte and bech32 addresses.
    fn key(prefix: u8, addresses: &[&str]) -> Result<Vec<u8>, String> {
        let mut key = vec![prefix];
        for a in addresses {
            let bytes = a
                .parse::<cosmrs::AccountId>()
                .map_err(|e| format!("the host answered with a bad address {a:?}: {e}"))?
                .to_bytes();
            key.push(bytes.len() as u8);
            key.extend(bytes);
        }
        Ok(key)
    }
}

/// A request at `height`.
fn at<T>(height: i64, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert(HEIGHT_HEADER, tonic::metadata::MetadataValue::from(height));
    r
}

/// The response's message, after checking the host answered at the height asked for.
fn checked<T>(height: i64, r: tonic::Response<T>) -> Result<T, String> {
    if let Some(h) = r.metadata().get(HEIGHT_HEADER)
        && let Some(h) = h.to_str().ok().and_then(|h| h.parse::<i64>().ok())
        && h != height
    {
        return Err(format!("the host answered at height {h}"));
    }
    Ok(r.into_inner())
}

fn page(next_key: Vec<u8>) -> Option<PageRequest> {
    Some(PageRequest {
        key: next_key,
        limit: PAGE_LIMIT,
        ..Default::default()
    })
}

fn next(p: Option<PageResponse>) -> Option<Vec<u8>> {
    p.map(|p| p.next_key).filter(|k| !k.is_empty())
}

impl HostReader {
    async fn read(
        &self,
        height: i64,
        store: &'static str,
        prefix: &[u8],
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, String> {
        let status = |s: tonic::Status| format!("{}: {}", s.code(), s.message());
        let acc = &self.chain.account_prefix;
        let mut entries = Vec::new();
        let mut key = Vec::new();
        match (store, prefix) {
            (BANK_STORE, [0x02, _, addr @ ..]) => {
                let address = self.bech32(acc, addr)?;
                loop {
                    let r = BankClient::new(self.channel.clone())
                        .all_balances(at(
                            height,
                            QueryAllBalancesRequest {
                                address: address.clone(),
                                pagination: page(key),
                                resolve_denom: false,
                            },
                        ))
                        .await
                        .map_err(status)?;
                    let r = checked(height, r)?;
                    for c in r.balances {
                        let mut k = prefix.to_vec();
                        k.extend(c.denom.as_bytes());
                        entries.push((k, c.amount.into_bytes()));
                    }
                    let Some(k) = next(r.pagination) else { break };
                    key = k;
                }
            }
            (STAKING_STORE, [0x21]) => loop {
                let r = StakingClient::new(self.channel.clone())
                    .validators(at(
                        height,
                        QueryValidatorsRequest {
                            status: String::new(),
                            pagination: page(key),
                        },
                    ))
                    .await
                    .map_err(status)?;
                let r = checked(height, r)?;
                for v in r.validators {
                    entries.push((Self::key(0x21, &[&v.operator_address])?, v.encode_to_vec()));
                }
                let Some(k) = next(r.pagination) else { break };
                key = k;
            },
            (STAKING_STORE, [0x31, _, addr @ ..]) => {
                let delegator = self.bech32(acc, addr)?;
                loop {
                    let r = StakingClient::new(self.channel.clone())
                        .delegator_delegations(at(
                            height,
                            QueryDelegatorDelegationsRequest {
                                delegator_addr: delegator.clone(),
                                pagination: page(key),
                            },
                        ))
                        .await
                        .map_err(status)?;
                    let r = checked(height, r)?;
                    for d in r
                        .delegation_responses
                        .into_iter()
                        .filter_map(|d| d.delegation)
                    {
                        let k = Self::key(0x31, &[&d.delegator_address, &d.validator_address])?;
                        entries.push((k, d.encode_to_vec()));
                    }
                    let Some(k) = next(r.pagination) else { break };
                    key = k;
                }
            }
            (STAKING_STORE, [0x32, _, addr @ ..]) => {
                let delegator = self.bech32(acc, addr)?;
                loop {
                    let r = StakingClient::new(self.channel.clone())
                        .delegator_unbonding_delegations(at(
                            height,
                            QueryDelegatorUnbondingDelegationsRequest {
                                delegator_addr: delegator.clone(),
                                pagination: page(key),
                            },
                        ))
                        .await
                        .map_err(status)?;
                    let r = checked(height, r)?;
                    for u in r.unbonding_responses {
                        let k = Self::key(0x32, &[&u.delegator_address, &u.validator_address])?;
                        entries.push((k, u.encode_to_vec()));
                    }
                    let Some(k) = next(r.pagination) else { break };
                    key = k;
                }
            }
            _ => {
                return Err(format!(
                    "no host query reads store {store:?} under prefix {}",
                    hex::encode(prefix)
                ));
            }
        }
        Ok(entries)
    }
}

#[async_trait::async_trait]
impl KvReader for HostReader {
    async fn scan(
        &self,
        height: i64,
        store: &'static str,
        prefix: Vec<u8>,
    ) -> Result<Vec<(Vec<u8>, Vec<u8>)>, ReadError> {
        self.read(height, store, &prefix)
            .await
            .map_err(|reason| ReadError { height, reason })
    }
}
