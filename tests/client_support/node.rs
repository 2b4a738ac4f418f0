//! The TypeScript client run under Node: the built package in `clients/ts` (`npm ci`,
//! `npm run build`, `tsc -p tsconfig.test.json`, which `scripts/test` does) and its
//! scripts in `e2e/`, driven by the end-to-end tests.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use super::run::{Got, Kind};

/// `clients/ts` of the workspace.
pub fn package_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../clients/ts")
}

/// The compiled e2e script `name` (`.test-build/e2e/NAME.js`); fails the test, saying how to
/// build it, when it is missing.
pub fn script(name: &str) -> PathBuf {
    let dir = package_dir();
    let path = dir.join(".test-build/e2e").join(format!("{name}.js"));
    assert!(
        path.is_file() && dir.join("node_modules/ws").is_dir(),
        "{} is not built: run scripts/test, or `npm ci && npm run build && npx tsc -p \
         tsconfig.test.json` in {}",
        path.display(),
        dir.display()
    );
    path
}

/// The `node` binary: `$STREAM_NODE`, else `node` on PATH.
pub fn node_bin() -> String {
    std::env::var("STREAM_NODE").unwrap_or_else(|_| "node".to_owned())
}

/// What the follow script reported for one subscription.
#[derive(Default)]
pub struct Followed {
    pub got: Vec<Got>,
    pub states: Vec<Json>,
    pub errors: Vec<String>,
    /// Tokens its token function minted (with `"auth"` in the config).
    pub tokens: usize,
}

/// `e2e/follow.js` running with `config`, its output parsed as it comes.
pub struct Follow {
    child: Child,
    pub subs: Arc<Mutex<Vec<Followed>>>,
}

impl Follow {
    pub fn start(config: &Json) -> Follow {
        let subs_n = config["subs"].as_array().expect("subs").len();
        let mut child = Command::new(node_bin())
            .arg(script("follow"))
            .arg(config.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e} (set STREAM_NODE)", node_bin()));
        let subs = Arc::new(Mutex::new(
            (0..subs_n).map(|_| Followed::default()).collect::<Vec<_>>(),
        ));
        let stdout = child.stdout.take().expect("stdout");
        {
            let subs = subs.clone();
            tokio::spawn(async move {
                let mut lines = BufReader::new(stdout).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let at = Instant::now();
                    let json: Json = serde_json::from_str(&line)
                        .unwrap_or_else(|e| panic!("follow.js printed {line:?}: {e}"));
                    let i = json["sub"].as_u64().expect("sub") as usize;
                    let mut subs = subs.lock().unwrap();
                    let f = &mut subs[i];
                    if let Some(state) = json.get("state") {
                        f.states.push(state.clone());
                    } else if let Some(error) = json.get("error") {
                        f.errors.push(error.to_string());
                    } else if json.get("token").is_some() {
                        f.tokens += 1;
                    } else {
                        let kind = match json["kind"].as_str() {
                            Some("snapshot") => Kind::Snapshot,
                            Some("change") => Kind::Change,
                            Some("resynced") => Kind::Resynced {
                                last_height: json["lastHeight"].as_i64().expect("lastHeight"),
                            },
                            other => panic!("kind {other:?} in {line}"),
                        };
                        f.got.push(Got {
                            height: json["height"].as_i64().expect("height"),
                            value: json["value"].clone(),
                            kind,
                            at,
                        });
                    }
                }
            });
        }
        Follow { child, subs }
    }

    /// Items received by subscription `i`.
    pub fn count(&self, i: usize) -> usize {
        self.subs.lock().unwrap()[i].got.len()
    }

    /// Tokens minted for subscription `i`.
    pub fn tokens(&self, i: usize) -> usize {
        self.subs.lock().unwrap()[i].tokens
    }

    /// Times subscription `i` went live.
    pub fn lives(&self, i: usize) -> usize {
        let subs = self.subs.lock().unwrap();
        subs[i]
            .states
            .iter()
            .filter(|s| s["status"] == "live")
            .count()
    }

    /// Errors subscription `i` ended with.
    pub fn errors(&self, i: usize) -> Vec<String> {
        self.subs.lock().unwrap()[i].errors.clone()
    }

    /// The last state subscription `i` reported.
    pub fn state(&self, i: usize) -> Option<Json> {
        self.subs.lock().unwrap()[i].states.last().cloned()
    }

    /// Waits (bounded) until every subscription has at least `n[i]` items.
    pub async fn wait_for_items(&self, n: &[usize], within: Duration) {
        let deadline = Instant::now() + within;
        loop {
            let counts: Vec<usize> = (0..n.len()).map(|i| self.count(i)).collect();
            if counts.iter().zip(n).all(|(c, n)| c >= n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "items {counts:?}, wanted {n:?} within {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits (bounded) until subscription `i`'s last state satisfies `f`; returns the time.
    pub async fn wait_state(
        &self,
        i: usize,
        within: Duration,
        f: impl Fn(&Json) -> bool,
    ) -> Duration {
        let started = Instant::now();
        loop {
            if self.state(i).is_some_and(|s| f(&s)) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < within,
                "subscription {i}: state {:?} after {within:?}",
                self.state(i)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Stops the script.
    pub async fn stop(&mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}
