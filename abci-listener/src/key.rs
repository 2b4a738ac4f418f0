//! Reading store keys made of a one-byte prefix and length-prefixed addresses.

use crate::address::Address;
use crate::error::{DecodeError, Site};

/// A cursor over a store key, past its one-byte prefix.
///
/// Each step checks the bytes it consumes, so a short or malformed key becomes a precise
/// [`DecodeError`] instead of an out-of-bounds slice.
pub(crate) struct KeyReader<'a> {
    site: Site<'a>,
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    /// Starts just after the key's prefix byte (an empty key reads as empty).
    pub(crate) fn after_prefix(site: Site<'a>) -> Self {
        let rest = site.key.get(1..).unwrap_or_default();
        Self { site, rest }
    }

    /// Reads `len (1 byte) | bytes`; `part` names the address in errors.
    pub(crate) fn address(&mut self, part: &'static str) -> Result<Address, DecodeError> {
        let Some((&declared, tail)) = self.rest.split_first() else {
            return Err(DecodeError::TruncatedKey {
                store: self.site.store,
                key: self.site.key_hex(),
                part,
            });
        };
        let declared = usize::from(declared);
        let Some((bytes, rest)) = tail.split_at_checked(declared) else {
            return Err(DecodeError::BadLengthPrefix {
                store: self.site.store,
                key: self.site.key_hex(),
                part,
                declared,
                available: tail.len(),
            });
        };
        // A one-byte prefix cannot exceed 255, so the only length Address rejects is 0.
        let address = Address::new(bytes).map_err(|_| DecodeError::EmptyAddress {
            store: self.site.store,
            key: self.site.key_hex(),
            part,
        })?;
        self.rest = rest;
        Ok(address)
    }

    /// Everything left in the key.
    pub(crate) fn into_rest(self) -> &'a [u8] {
        self.rest
    }

    /// Requires the key to end here; `part` names what was read last.
    pub(crate) fn finish(self, part: &'static str) -> Result<(), DecodeError> {
        if self.rest.is_empty() {
            return Ok(());
        }
        Err(DecodeError::TrailingBytes {
            store: self.site.store,
            key: self.site.key_hex(),
            part,
            count: self.rest.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site(key: &[u8]) -> Site<'_> {
        Site {
            store: "staking",
            key,
        }
    }

    #[test]
    fn reads_consecutive_addresses_then_ends() {
        let key = [0x31, 2, 0xaa, 0xbb, 1, 0xcc];
        let mut reader = KeyReader::after_prefix(site(&key));
        assert_eq!(
            reader.address("delegator address").unwrap().as_bytes(),
            [0xaa, 0xbb]
        );
        assert_eq!(
            reader.address("validator address").unwrap().as_bytes(),
            [0xcc]
        );
        assert_eq!(reader.finish("validator address"), Ok(()));
    }

    #[test]
    fn missing_prefix_is_truncated() {
        let key = [0x31];
        let mut reader = KeyReader::after_prefix(site(&key));
        assert_eq!(
            reader.address("delegator address"),
            Err(DecodeError::TruncatedKey {
                store: "staking",
                key: "31".into(),
                part: "delegator address",
            })
        );
    }

    #[test]
    fn prefix_longer_than_the_rest_is_rejected() {
        let key = [0x21, 20, 1, 2, 3];
        let mut reader = KeyReader::after_prefix(site(&key));
        assert_eq!(
            reader.address("operator address"),
            Err(DecodeError::BadLengthPrefix {
                store: "staking",
                key: "2114010203".into(),
                part: "operator address",
                declared: 20,
                available: 3,
            })
        );
    }

    #[test]
    fn zero_length_and_trailing_bytes_are_rejected() {
        let key = [0x21, 0];
        let mut reader = KeyReader::after_prefix(site(&key));
        assert!(matches!(
            reader.address("operator address"),
            Err(DecodeError::EmptyAddress {
                part: "operator address",
                ..
            })
        ));

        let key = [0x21, 1, 9, 7, 7];
        let mut reader = KeyReader::after_prefix(site(&key));
        assert!(reader.address("operator address").is_ok());
        assert!(matches!(
            reader.finish("operator address"),
            Err(DecodeError::TrailingBytes { count: 2, .. })
        ));
    }

    #[test]
    fn empty_key_reads_as_truncated() {
        let mut reader = KeyReader::after_prefix(site(&[]));
        assert!(matches!(
            reader.address("operator address"),
            Err(DecodeError::TruncatedKey { .. })
        ));
    }
}
