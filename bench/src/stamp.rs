//! The references' message: JSON carrying a sequence number and the instant it was
//! published, padded to the size of ours, so that one client measures both systems.

use anyhow::{Context, Result};

use crate::report::{ClientRecord, latency_us};

/// `{"seq":..,"t":<ns since epoch>,"pad":"...."}`, padded with `.` to `size` bytes when
/// the fields leave room.
pub fn frame(seq: u64, sent_ns: u128, size: usize) -> String {
    let bare = format!("{{\"seq\":{seq},\"t\":{sent_ns},\"pad\":\"\"}}");
    let pad = size.saturating_sub(bare.len());
    format!(
        "{{\"seq\":{seq},\"t\":{sent_ns},\"pad\":\"{}\"}}",
        ".".repeat(pad)
    )
}

/// Sequence number and publish instant of a frame.
pub fn parse(payload: &[u8]) -> Result<(u64, u128)> {
    let value: serde_json::Value = serde_json::from_slice(payload).context("frame is not JSON")?;
    let seq = value["seq"].as_u64().context("frame without seq")?;
    let t = value["t"]
        .as_u64()
        .map(u128::from)
        .or_else(|| {
            value["t"]
                .as_number()
                .and_then(|n| n.to_string().parse().ok())
        })
        .context("frame without t")?;
    Ok((seq, t))
}

/// What a reference client accumulates: one record plus the sequence numbers seen.
#[derive(Default)]
pub struct Tally {
    /// Latencies and message count, measured from `start` on.
    pub record: ClientRecord,
    /// Last sequence number received (0: none).
    pub last_seq: u64,
    /// Whether sequence numbers strictly increased.
    pub increasing: bool,
    seen_any: bool,
}

impl Tally {
    /// A tally with nothing received yet.
    pub fn new() -> Tally {
        Tally {
            increasing: true,
            ..Tally::default()
        }
    }

    /// Counts one frame received at `received_ns`.
    pub fn add(&mut self, payload: &[u8], received_ns: u128) -> Result<()> {
        let (seq, sent) = parse(payload)?;
        if self.seen_any && seq <= self.last_seq {
            self.increasing = false;
        }
        self.seen_any = true;
        self.last_seq = seq;
        self.record.latencies_us.push(latency_us(sent, received_ns));
        self.record.messages += 1;
        Ok(())
    }

    /// The record, complete when the last frame published (`final_seq`) arrived in order.
    pub fn finish(mut self, final_seq: u64) -> ClientRecord {
        self.record.complete = self.increasing && self.last_seq == final_seq && final_seq > 0;
        self.record
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_has_the_size_asked_and_parses_back() {
        let f = frame(42, 1_764_958_000_123_456_789, 106);
        assert_eq!(f.len(), 106);
        assert_eq!(
            parse(f.as_bytes()).unwrap(),
            (42, 1_764_958_000_123_456_789)
        );
    }

    #[test]
    fn a_client_that_missed_the_last_frame_is_incomplete() {
        let mut tally = Tally::new();
        tally.add(frame(1, 10_000, 50).as_bytes(), 20_000).unwrap();
        tally.add(frame(2, 10_000, 50).as_bytes(), 30_000).unwrap();
        assert_eq!(tally.record.latencies_us, vec![10, 20]);
        assert!(!Tally::new().finish(2).complete);
        assert!(tally.finish(2).complete);
    }
}
