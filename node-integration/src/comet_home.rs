//! A CometBFT home shared by `cometbft` and `streamd`: the keys CometBFT generated, edits of
//! its full `config.toml` that keep its layout and comments, and `genesis.json` in CometBFT's
//! format with the streamd genesis as `app_state`.

use crate::genesis::Genesis;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The parts of a home's CometBFT keys a network needs.
#[derive(Debug, Clone)]
pub struct NodeKeys {
    /// Base64 ed25519 consensus public key (`priv_validator_key.json` `pub_key.value`).
    pub consensus_pubkey: String,
    /// Validator address (upper-case hex, `priv_validator_key.json` `address`).
    pub validator_address: String,
    /// P2P node id (hex of the first 20 bytes of SHA-256 of the node key's public key).
    pub node_id: String,
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{}: invalid JSON", path.display()))
}

fn string_at<'a>(v: &'a Value, path: &Path, pointer: &str) -> anyhow::Result<&'a str> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .with_context(|| format!("{}: no string at {pointer}", path.display()))
}

/// Reads `config/priv_validator_key.json` and `config/node_key.json` of `home`.
pub fn read_keys(home: &Path) -> anyhow::Result<NodeKeys> {
    use base64::Engine;
    let pv_path = home.join("config").join("priv_validator_key.json");
    let pv = read_json(&pv_path)?;
    if string_at(&pv, &pv_path, "/pub_key/type")? != "tendermint/PubKeyEd25519" {
        bail!("{}: the consensus key must be ed25519", pv_path.display());
    }
    let consensus_pubkey = string_at(&pv, &pv_path, "/pub_key/value")?.to_owned();
    crate::genesis::decode_ed25519(&consensus_pubkey)
        .map_err(|e| anyhow::anyhow!("{}: pub_key: {e}", pv_path.display()))?;
    let validator_address = string_at(&pv, &pv_path, "/address")?.to_owned();
    let nk_path = home.join("config").join("node_key.json");
    let nk = read_json(&nk_path)?;
    let private = base64::engine::general_purpose::STANDARD
        .decode(string_at(&nk, &nk_path, "/priv_key/value")?)
        .with_context(|| format!("{}: priv_key is not base64", nk_path.display()))?;
    if private.len() != 64 {
        bail!("{}: expected a 64-byte ed25519 key", nk_path.display());
    }
    // CometBFT's ed25519 private key is seed || public key.
    let node_id = hex::encode(&Sha256::digest(&private[32..])[..20]);
    Ok(NodeKeys {
        consensus_pubkey,
        validator_address,
        node_id,
    })
}

/// Sets `key = value` in `[section]` (`""` for the top level) of a TOML text, keeping every
/// other line (CometBFT's comments and layout). `value` is TOML (quote strings yourself).
pub fn set_toml(text: &str, section: &str, key: &str, value: &str) -> anyhow::Result<String> {
    let mut current = String::new();
    let mut done = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') && trimmed.ends_with(']') {
            current = trimmed.trim_matches(|c| c == '[' || c == ']').to_owned();
        } else if !done
            && current == section
            && trimmed
                .split_once('=')
                .is_some_and(|(k, _)| k.trim() == key)
        {
            out.push(format!("{key} = {value}"));
            done = true;
            continue;
        }
        out.push(line.to_owned());
    }
    if !done {
        bail!("no key `{key}` in [{section}] of CometBFT's config.toml");
    }
    Ok(out.join("\n") + "\n")
}

/// One validator of a network, as `genesis.json` lists it.
pub struct GenesisValidatorEntry<'a> {
    /// Its keys.
    pub keys: &'a NodeKeys,
    /// Moniker.
    pub name: String,
    /// Consensus power.
    pub power: u64,
}

/// CometBFT's `genesis.json` for `genesis`: CometBFT's `template` (the file `cometbft init`
/// wrote, for its consensus parameters) with chain id, time, validators and `app_state`.
pub fn comet_genesis(
    template: &Path,
    genesis: &Genesis,
    validators: &[GenesisValidatorEntry<'_>],
) -> anyhow::Result<String> {
    let mut doc = read_json(template)?;
    let obj = doc
        .as_object_mut()
        .with_context(|| format!("{}: not a JSON object", template.display()))?;
    obj.insert("chain_id".into(), json!(genesis.chain_id));
    obj.insert("genesis_time".into(), json!(genesis.genesis_time));
    obj.insert("initial_height".into(), json!("1"));
    obj.insert("app_hash".into(), json!(""));
    obj.insert(
        "validators".into(),
        Value::Array(
            validators
                .iter()
                .map(|v| {
                    json!({
                        "address": v.keys.validator_address,
                        "pub_key": {"type": "tendermint/PubKeyEd25519", "value": v.keys.consensus_pubkey},
                        "power": v.power.to_string(),
                        "name": v.name,
                    })
                })
                .collect(),
        ),
    );
    obj.insert("app_state".into(), serde_json::to_value(genesis)?);
    Ok(serde_json::to_string_pretty(&doc)? + "\n")
}

/// `config/genesis.json` of a home.
pub fn genesis_path(home: &Path) -> PathBuf {
    home.join("config").join("genesis.json")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_toml_edits_the_key_of_its_section_only() {
        let text =
            "moniker = \"a\"\n[rpc]\n# comment\nladdr = \"tcp://x\"\n[p2p]\nladdr = \"tcp://y\"\n";
        let t = set_toml(text, "p2p", "laddr", "\"tcp://z\"").unwrap();
        assert_eq!(
            t,
            "moniker = \"a\"\n[rpc]\n# comment\nladdr = \"tcp://x\"\n[p2p]\nladdr = \"tcp://z\"\n"
        );
        let t = set_toml(&t, "", "moniker", "\"b\"").unwrap();
        assert!(t.starts_with("moniker = \"b\"\n"));
        assert!(set_toml(&t, "rpc", "nope", "1").is_err());
    }
}
