//! [`DecodeError`]: a store write we should understand but cannot, with where and why.

use crate::math::ParseNumberError;

/// A store write on a key we stream that does not decode.
///
/// Every variant names the store, the key (hex) and what is wrong, so one log line is
/// enough to find the write on chain. Wrapped causes are part of the message (not
/// `source()`) because these errors are logged as single lines, not walked as chains.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The key ends where a length prefix should start.
    #[error("{store} key {key}: truncated: the key ends before the {part} length prefix")]
    TruncatedKey {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// Which part of the key is missing.
        part: &'static str,
    },
    /// A length prefix claims more bytes than the key has left.
    #[error(
        "{store} key {key}: bad length prefix: the {part} claims {declared} bytes, \
         only {available} remain"
    )]
    BadLengthPrefix {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// Which address the prefix belongs to.
        part: &'static str,
        /// The length the prefix declares.
        declared: usize,
        /// Bytes left in the key after the prefix.
        available: usize,
    },
    /// A length prefix of zero: no address is empty.
    #[error("{store} key {key}: the {part} has length 0")]
    EmptyAddress {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// Which address is empty.
        part: &'static str,
    },
    /// Bytes after the last address of a key that ends there.
    #[error("{store} key {key}: {count} unexpected bytes after the {part}")]
    TrailingBytes {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// The last part of the key that was expected.
        part: &'static str,
        /// How many bytes follow it.
        count: usize,
    },
    /// The denom in a balance key is not UTF-8.
    #[error("{store} key {key}: the denom is not valid UTF-8")]
    NonUtf8Denom {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
    },
    /// A balance key with nothing after the address.
    #[error("{store} key {key}: the denom is empty")]
    EmptyDenom {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
    },
    /// A denom breaking the Cosmos rule `[a-zA-Z][a-zA-Z0-9/:._-]{2,127}`.
    #[error("{store} key {key}: invalid denom {denom:?}: {reason}")]
    InvalidDenom {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// The denom as found.
        denom: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// A set (not a delete) with an empty value on a key whose value we need.
    #[error("{store} key {key}: missing value: a set with an empty value")]
    MissingValue {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
    },
    /// A number that is not a non-negative ASCII decimal.
    #[error("{store} key {key}: bad {field} {value:?}: {reason}")]
    BadNumber {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// Which number (`amount`, `tokens`, `shares`, ...).
        field: &'static str,
        /// The text found (lossy UTF-8, shortened if long).
        value: String,
        /// Why it is not a number.
        reason: ParseNumberError,
    },
    /// A value that is not the protobuf message the key calls for.
    #[error("{store} key {key}: the value is not a valid {message}: {reason}")]
    Protobuf {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// Full protobuf name of the expected message.
        message: &'static str,
        /// The decoder's complaint.
        reason: prost::DecodeError,
    },
    /// A protobuf field we need is absent.
    #[error("{store} key {key}: {field} is missing")]
    MissingField {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// The absent field.
        field: &'static str,
    },
    /// A protobuf `Timestamp` outside what `SystemTime` or the protobuf spec allows.
    #[error("{store} key {key}: {field} {seconds}s {nanos}ns is not a valid time")]
    BadTimestamp {
        /// Store the write went to.
        store: &'static str,
        /// The key, hex-encoded.
        key: String,
        /// The timestamp field.
        field: &'static str,
        /// Seconds since the Unix epoch, as found.
        seconds: i64,
        /// Nanoseconds, as found.
        nanos: i32,
    },
}

impl DecodeError {
    /// The store the offending write went to.
    pub fn store(&self) -> &'static str {
        match self {
            Self::TruncatedKey { store, .. }
            | Self::BadLengthPrefix { store, .. }
            | Self::EmptyAddress { store, .. }
            | Self::TrailingBytes { store, .. }
            | Self::NonUtf8Denom { store, .. }
            | Self::EmptyDenom { store, .. }
            | Self::InvalidDenom { store, .. }
            | Self::MissingValue { store, .. }
            | Self::BadNumber { store, .. }
            | Self::Protobuf { store, .. }
            | Self::MissingField { store, .. }
            | Self::BadTimestamp { store, .. } => store,
        }
    }

    /// The offending key, hex-encoded.
    pub fn key_hex(&self) -> &str {
        match self {
            Self::TruncatedKey { key, .. }
            | Self::BadLengthPrefix { key, .. }
            | Self::EmptyAddress { key, .. }
            | Self::TrailingBytes { key, .. }
            | Self::NonUtf8Denom { key, .. }
            | Self::EmptyDenom { key, .. }
            | Self::InvalidDenom { key, .. }
            | Self::MissingValue { key, .. }
            | Self::BadNumber { key, .. }
            | Self::Protobuf { key, .. }
            | Self::MissingField { key, .. }
            | Self::BadTimestamp { key, .. } => key,
        }
    }
}

/// The store and raw key a decoder is working on, so errors are built in one line and the
/// key is hex-encoded only when something actually went wrong.
#[derive(Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) store: &'static str,
    pub(crate) key: &'a [u8],
}

/// Longest value text copied into an error, so a garbage megabyte does not flood the log.
const MAX_VALUE_EXCERPT: usize = 80;

impl Site<'_> {
    pub(crate) fn key_hex(&self) -> String {
        crate::hex::encode(self.key)
    }

    pub(crate) fn missing_value(&self) -> DecodeError {
        DecodeError::MissingValue {
            store: self.store,
            key: self.key_hex(),
        }
    }

    pub(crate) fn bad_number(
        &self,
        field: &'static str,
        value: &[u8],
        reason: ParseNumberError,
    ) -> DecodeError {
        let mut value = String::from_utf8_lossy(value).into_owned();
        if let Some((cut, _)) = value.char_indices().nth(MAX_VALUE_EXCERPT) {
            value.truncate(cut);
            value.push('…');
        }
        DecodeError::BadNumber {
            store: self.store,
            key: self.key_hex(),
            field,
            value,
            reason,
        }
    }

    pub(crate) fn protobuf(
        &self,
        message: &'static str,
        reason: prost::DecodeError,
    ) -> DecodeError {
        DecodeError::Protobuf {
            store: self.store,
            key: self.key_hex(),
            message,
            reason,
        }
    }

    pub(crate) fn missing_field(&self, field: &'static str) -> DecodeError {
        DecodeError::MissingField {
            store: self.store,
            key: self.key_hex(),
            field,
        }
    }
}
