//! Prints one line per update of an account's balance, and every connection state change
//! (on stderr):
//!
//! ```sh
//! cargo run -p stream-client --example watch_balance -- --endpoint http://127.0.0.1:9090 \
//!     juno1ccwqzcnvkdvxp7yql57gyxyy853vz4s36rn0am
//! ```
//!
//! `--endpoint` may be given several times (failover); `--ws` streams over WebSocket
//! (`--endpoint ws://127.0.0.1:1317`). For a node with token auth, `--token-file PATH`
//! presents the JWT in that file, read again at every reconnect: whatever refreshes the file
//! keeps the stream going across token expiries.

use clap::Parser;
use futures_util::StreamExt;
use stream_client::{ClientConfig, StreamClient, UpdateKind};

/// Follow one balance of an account, live, across reconnects.
#[derive(Parser)]
struct Args {
    /// Node endpoint (repeat for failover): http://HOST:9090, or ws://HOST:1317 with --ws.
    #[arg(long, default_value = "http://127.0.0.1:9090")]
    endpoint: Vec<String>,
    /// The denom to follow.
    #[arg(long, default_value = "ujuno")]
    denom: String,
    /// Stream over the WebSocket path routes instead of gRPC.
    #[arg(long)]
    ws: bool,
    /// A file holding the JWT for a node with token auth, read at every (re)connect.
    #[arg(long)]
    token_file: Option<std::path::PathBuf>,
    /// The account (juno1...).
    address: String,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut config = ClientConfig::new(args.endpoint);
    if args.ws {
        config = config.websocket();
    }
    if let Some(path) = args.token_file {
        config = config.token_provider(move || {
            let path = path.clone();
            async move {
                Ok::<_, std::io::Error>(tokio::fs::read_to_string(path).await?.trim().to_owned())
            }
        });
    }
    let client = StreamClient::new(config)?;
    let mut balance = client.balance(&args.address, &args.denom);

    let mut state = balance.state();
    tokio::spawn(async move {
        loop {
            eprintln!("connection: {}", *state.borrow_and_update());
            if state.changed().await.is_err() {
                return;
            }
        }
    });

    while let Some(update) = balance.next().await {
        let update = update?;
        let note = match update.kind {
            UpdateKind::Snapshot => " (snapshot)".to_owned(),
            UpdateKind::Change => String::new(),
            UpdateKind::Resynced { last_height } => {
                format!(" (resynced: changes after height {last_height} were not available)")
            }
        };
        println!(
            "height {} {} {}{note}",
            update.height, update.value.amount, update.value.denom
        );
    }
    Ok(())
}
