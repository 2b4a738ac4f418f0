//! Raw account and validator addresses, as they appear length-prefixed inside store keys.

use std::fmt;

/// Raw address bytes of an account or a validator operator.
///
/// Store keys carry addresses as `len (1 byte) | bytes`, so an address is 1 to 255 bytes:
/// 20 for ordinary accounts, 32 for module and contract accounts. Bech32 rendering belongs
/// to the caller, because the prefix (`juno`, `junovaloper`, ...) is configuration.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address(Vec<u8>);

impl Address {
    /// The longest address a one-byte length prefix can describe.
    pub const MAX_LEN: usize = u8::MAX as usize;

    /// Wraps raw address bytes, rejecting lengths a store key cannot carry (0 or over 255).
    pub fn new(bytes: impl Into<Vec<u8>>) -> Result<Self, AddressLengthError> {
        let bytes = bytes.into();
        if bytes.is_empty() || bytes.len() > Self::MAX_LEN {
            return Err(AddressLengthError { len: bytes.len() });
        }
        Ok(Self(bytes))
    }

    /// The raw address bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Gives back the raw address bytes.
    pub fn into_bytes(self) -> Vec<u8> {
        self.0
    }

    /// The address bytes as lower-case hex, for logs.
    pub fn to_hex(&self) -> String {
        crate::hex::encode(&self.0)
    }
}

impl AsRef<[u8]> for Address {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl TryFrom<Vec<u8>> for Address {
    type Error = AddressLengthError;

    fn try_from(bytes: Vec<u8>) -> Result<Self, Self::Error> {
        Self::new(bytes)
    }
}

impl TryFrom<&[u8]> for Address {
    type Error = AddressLengthError;

    fn try_from(bytes: &[u8]) -> Result<Self, Self::Error> {
        Self::new(bytes)
    }
}

impl fmt::Debug for Address {
    // Hex, because raw bytes as a list of decimals are unreadable in test failures and logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Address(")?;
        crate::hex::write(f, &self.0)?;
        f.write_str(")")
    }
}

/// An address whose length a store key's one-byte length prefix cannot carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("an address must be 1 to 255 bytes long, got {len}")]
pub struct AddressLengthError {
    /// The rejected length.
    pub len: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_1_to_255_bytes() {
        assert_eq!(Address::new(vec![7]).map(|a| a.into_bytes()), Ok(vec![7]));
        assert!(Address::new(vec![0; 20]).is_ok());
        assert!(Address::new(vec![0; 32]).is_ok());
        assert!(Address::new(vec![0; 255]).is_ok());
    }

    #[test]
    fn rejects_empty_and_oversized() {
        assert_eq!(Address::new(Vec::new()), Err(AddressLengthError { len: 0 }));
        assert_eq!(
            Address::try_from(&[0u8; 256][..]),
            Err(AddressLengthError { len: 256 })
        );
    }

    #[test]
    fn debug_shows_hex() {
        let address = Address::new(vec![0x63, 0xd7, 0x00]).unwrap();
        assert_eq!(format!("{address:?}"), "Address(63d700)");
        assert_eq!(address.to_hex(), "63d700");
    }
}
