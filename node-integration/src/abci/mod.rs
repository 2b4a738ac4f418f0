//! The ABCI 2.0 application CometBFT v0.38 drives over its socket protocol
//! (`streamd start --with-comet=false --address tcp://127.0.0.1:26658`).
//!
//! One [`Application`] answers every request in the order CometBFT sends it; tower-abci's
//! `split` turns it into the four connections' services (consensus, mempool, info, snapshot).
//! Each request but `Query` is handled synchronously in `call`, so the consensus connection's
//! effects happen in CometBFT's order. The state machine is the same one the dev producer drives:
//! FinalizeBlock takes the header time as block time, and Commit hands the stream module the
//! same `BlockCommit` it gets in dev mode.

mod query;

use crate::node::Node;
use bytes::Bytes;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tendermint::abci::types::ExecTxResult;
use tendermint::abci::{Code, response};
use tendermint::v0_38::abci::{Request, Response, request};
use tower_abci::BoxError;

/// The application behind the ABCI connections (cheap to clone: handles).
#[derive(Clone)]
pub struct Application {
    node: Node,
    /// The node's gRPC query services, which answer ABCI `Query` in process.
    routes: tonic::service::Routes,
}

/// Serves ABCI on `addr` (`tcp://host:port` or `host:port`) until the future is dropped.
pub async fn serve(node: Node, addr: &str) -> anyhow::Result<()> {
    let addr = addr.strip_prefix("tcp://").unwrap_or(addr).to_owned();
    let routes = crate::grpc::routes(&node, &[])?.routes();
    let (consensus, mempool, snapshot, info) =
        tower_abci::v038::split::service(Application { node, routes }, 1);
    let server = tower_abci::v038::Server::builder()
        .consensus(consensus)
        .mempool(mempool)
        .info(info)
        .snapshot(snapshot)
        .finish()
        .expect("all four services are set");
    server
        .listen_tcp(addr.clone())
        .await
        .map_err(|e| anyhow::anyhow!("ABCI server on {addr}: {e}"))
}

impl tower::Service<Request> for Application {
    type Response = Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Response, BoxError>> + Send + 'static>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // Queries read committed versions only, so they need not keep the consensus order.
        if let Request::Query(q) = req {
            let routes = self.routes.clone();
            return Box::pin(async move { Ok(Response::Query(query::answer(routes, q).await)) });
        }
        // Executing a block or checking a tx is CPU work under a lock (as the dev producer's
        // `spawn_blocking`): the runtime moves its other tasks (streams, gRPC) off this thread
        // meanwhile. streamd's runtime is multi-threaded, which `block_in_place` requires.
        let result = tokio::task::block_in_place(|| self.handle(req));
        if let Err(e) = &result {
            // tower-abci then drops the connection, and CometBFT stops with it.
            tracing::error!(error = %e, "ABCI request failed");
        }
        Box::pin(async move { result })
    }
}

impl Application {
    fn handle(&self, req: Request) -> Result<Response, BoxError> {
        Ok(match req {
            Request::Info(_) => Response::Info(self.info()),
            Request::InitChain(r) => Response::InitChain(self.init_chain(r)?),
            Request::CheckTx(r) => Response::CheckTx(self.check_tx(&r.tx)),
            Request::PrepareProposal(r) => Response::PrepareProposal(prepare_proposal(r)),
            // Every node executes whatever the proposer put in the block: a tx that fails
            // decoding or its ante checks gets a failed result, as in the SDK.
            Request::ProcessProposal(_) => {
                Response::ProcessProposal(response::ProcessProposal::Accept)
            }
            Request::FinalizeBlock(r) => Response::FinalizeBlock(self.finalize_block(r)?),
            Request::Commit => Response::Commit(self.commit()),
            Request::Query(_) => unreachable!("queries are answered in `call`"),
            Request::ExtendVote(_) => Response::ExtendVote(response::ExtendVote {
                vote_extension: Bytes::new(),
            }),
            Request::VerifyVoteExtension(_) => {
                Response::VerifyVoteExtension(response::VerifyVoteExtension::Accept)
            }
            Request::Flush => Response::Flush,
            Request::Echo(e) => Response::Echo(response::Echo { message: e.message }),
            // No state sync: a new node replays blocks instead.
            Request::ListSnapshots => Response::ListSnapshots(Default::default()),
            Request::OfferSnapshot(_) => Response::OfferSnapshot(Default::default()),
            Request::LoadSnapshotChunk(_) => Response::LoadSnapshotChunk(Default::default()),
            Request::ApplySnapshotChunk(_) => Response::ApplySnapshotChunk(Default::default()),
        })
    }

    /// The last committed height and app hash: 0 and empty after a (re)start, since state
    /// lives in memory, so CometBFT's handshake calls InitChain and replays its stored
    /// blocks.
    fn info(&self) -> response::Info {
        let (height, app_hash) = self.node.last_committed();
        response::Info {
            data: "streamd".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            app_version: 0,
            last_block_height: height.try_into().expect("heights are non-negative"),
            last_block_app_hash: if height == 0 {
                Default::default()
            } else {
                app_hash
                    .to_vec()
                    .try_into()
                    .expect("any bytes are an app hash")
            },
        }
    }

    /// The genesis state was loaded from the same `genesis.json` at startup: check that
    /// CometBFT's agrees, and answer with the validator set x/staking computed from it.
    fn init_chain(&self, r: request::InitChain) -> Result<response::InitChain, BoxError> {
        if r.chain_id != self.node.chain_id() {
            return Err(format!(
                "InitChain: CometBFT's chain id {:?} is not streamd's {:?} (both read \
                 config/genesis.json: are they started with the same --home?)",
                r.chain_id,
                self.node.chain_id()
            )
            .into());
        }
        let ours = self.node.genesis_validators();
        // CometBFT's genesis.json lists validators too: they must be x/staking's, or the
        // network would be signed by keys the state does not know (or the reverse).
        if !r.validators.is_empty() {
            let theirs: crate::app::ValidatorPowers = r
                .validators
                .iter()
                .map(|v| (v.pub_key.to_bytes(), v.power.value()))
                .collect();
            if theirs != ours {
                return Err(format!(
                    "InitChain: genesis.json's validators {} are not app_state's bonded \
                     validators {} (consensus key: power); write the genesis with `streamd \
                     testnet init-files`",
                    describe(&theirs),
                    describe(&ours)
                )
                .into());
            }
        }
        let validators = ours
            .into_iter()
            .map(|(key, power)| validator_update(&key, power))
            .collect::<Result<Vec<_>, _>>()?;
        tracing::info!(
            chain_id = %r.chain_id,
            validators = validators.len(),
            "InitChain"
        );
        Ok(response::InitChain {
            consensus_params: None,
            validators,
            app_hash: Default::default(),
        })
    }

    fn check_tx(&self, tx: &[u8]) -> response::CheckTx {
        let outcome = self.node.check_tx(tx);
        response::CheckTx {
            code: Code::from(outcome.code),
            log: outcome.log,
            codespace: outcome.codespace.into(),
            ..Default::default()
        }
    }

    fn finalize_block(
        &self,
        r: request::FinalizeBlock,
    ) -> Result<response::FinalizeBlock, BoxError> {
        let height = r.height.value() as i64;
        let time = system_time(r.time);
        let hash: [u8; 32] = r
            .hash
            .as_bytes()
            .try_into()
            .map_err(|_| format!("FinalizeBlock {height}: block hash is not 32 bytes"))?;
        let txs = r.txs.into_iter().map(|t| t.to_vec()).collect();
        let finalized = self.node.finalize(height, time, hash, txs);
        let tx_results = finalized
            .results
            .into_iter()
            .map(|o| ExecTxResult {
                code: Code::from(o.code),
                log: o.log,
                codespace: o.codespace.into(),
                ..Default::default()
            })
            .collect();
        let validator_updates = finalized
            .validator_updates
            .iter()
            .map(|(key, power)| validator_update(key, *power))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(response::FinalizeBlock {
            events: Vec::new(),
            tx_results,
            validator_updates,
            consensus_param_updates: None,
            app_hash: finalized
                .app_hash
                .to_vec()
                .try_into()
                .expect("any bytes are an app hash"),
        })
    }

    fn commit(&self) -> response::Commit {
        let committed = self.node.commit();
        tracing::info!(
            height = committed.block.height,
            txs = committed.block.txs.len(),
            "committed block"
        );
        // Keep every block: a restarted streamd (state in memory) is rebuilt by replaying
        // CometBFT's block store from height 1.
        response::Commit {
            data: Bytes::new(),
            retain_height: 0u32.into(),
        }
    }
}

/// PrepareProposal: the mempool's txs in CometBFT's order, as many as fit in `max_tx_bytes`.
fn prepare_proposal(r: request::PrepareProposal) -> response::PrepareProposal {
    let mut left = r.max_tx_bytes.max(0) as usize;
    let mut txs = Vec::new();
    for tx in r.txs {
        if tx.len() > left {
            break;
        }
        left -= tx.len();
        txs.push(tx);
    }
    response::PrepareProposal { txs }
}

fn describe(powers: &crate::app::ValidatorPowers) -> String {
    use base64::Engine;
    let list: Vec<String> = powers
        .iter()
        .map(|(k, p)| {
            format!(
                "{}: {p}",
                base64::engine::general_purpose::STANDARD.encode(k)
            )
        })
        .collect();
    format!("[{}]", list.join(", "))
}

fn validator_update(key: &[u8], power: u64) -> Result<tendermint::validator::Update, BoxError> {
    let pub_key = tendermint::PublicKey::from_raw_ed25519(key)
        .ok_or_else(|| format!("consensus key {} is not ed25519", hex::encode(key)))?;
    Ok(tendermint::validator::Update {
        pub_key,
        power: tendermint::vote::Power::try_from(power)
            .map_err(|e| format!("power {power}: {e}"))?,
    })
}

fn system_time(t: tendermint::Time) -> SystemTime {
    let nanos = t.unix_timestamp_nanos().max(0) as u128;
    UNIX_EPOCH
        + Duration::new(
            (nanos / 1_000_000_000) as u64,
            (nanos % 1_000_000_000) as u32,
        )
}
