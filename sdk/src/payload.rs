//! Request and response payloads. Units may speak MessagePack or JSON; these
//! helpers accept either (JSON is recognised by its first non-space byte) and
//! answer in the encoding the request came in.

use serde::{Serialize, de::DeserializeOwned};

/// The encoding a payload arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    MessagePack,
}

/// Which encoding `bytes` are in.
pub fn sniff(bytes: &[u8]) -> Encoding {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') | Some(b'"') => Encoding::Json,
        _ => Encoding::MessagePack,
    }
}

/// Decode `bytes` as JSON or MessagePack.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Encoding), String> {
    match sniff(bytes) {
        Encoding::Json => {
            serde_json::from_slice(bytes).map(|v| (v, Encoding::Json)).map_err(|e| format!("invalid JSON request: {e}"))
        }
        Encoding::MessagePack => rmp_serde::from_slice(bytes)
            .map(|v| (v, Encoding::MessagePack))
            .map_err(|e| format!("invalid MessagePack request: {e}")),
    }
}

/// Encode `value` in `encoding`.
pub fn encode<T: Serialize>(value: &T, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Json => serde_json::to_vec(value).expect("serialisable value"),
        Encoding::MessagePack => rmp_serde::to_vec_named(value).expect("serialisable value"),
    }
}
