//! Request and response payloads. Units may speak MessagePack or JSON; these
//! helpers accept either (JSON is recognised by its first non-space byte) and
//! answer in the encoding the request came in.
//!
//! Decoding refuses a payload nested deeper than a limit ([`DEFAULT_MAX_DEPTH`],
//! or the plugin's `payload_max_depth` setting with [`decode_with`]) before
//! any recursive parser sees it: the nesting is measured by a loop over the
//! bytes. A request of 100 000 nested arrays is then the caller's
//! `invalid-input`, not a wasm stack overflow that traps and counts against
//! the unit.

use std::fmt;

use serde::{Serialize, de::DeserializeOwned};

use crate::{Config, ErrorClass, UnitError};

/// Nesting a payload may have unless configured: arrays and maps inside
/// each other, 128 deep (serde_json's own recursion limit).
pub const DEFAULT_MAX_DEPTH: usize = 128;

/// The plugin configuration key ([`decode_with`]) that sets the nesting
/// limit: `[runtime.plugin_config.NAME] payload_max_depth = 64`.
pub const MAX_DEPTH_KEY: &str = "payload_max_depth";

/// The encoding a payload arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    MessagePack,
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Encoding::Json => "JSON",
            Encoding::MessagePack => "MessagePack",
        })
    }
}

/// Why a request could not be decoded: always the caller's fault, so it
/// converts into an `invalid-input` [`UnitError`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadError {
    /// Arrays or maps nested deeper than `max_depth`; refused before parsing.
    TooDeep { encoding: Encoding, max_depth: usize },
    /// Not a valid payload of that encoding (or not of the expected shape).
    Invalid { encoding: Encoding, reason: String },
}

impl fmt::Display for PayloadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PayloadError::TooDeep { encoding, max_depth } => {
                write!(f, "{encoding} request nested deeper than {max_depth} levels")
            }
            PayloadError::Invalid { encoding, reason } => write!(f, "invalid {encoding} request: {reason}"),
        }
    }
}

impl std::error::Error for PayloadError {}

impl From<PayloadError> for UnitError {
    fn from(e: PayloadError) -> Self {
        UnitError::new(ErrorClass::InvalidInput, e.to_string())
    }
}

impl From<PayloadError> for String {
    fn from(e: PayloadError) -> Self {
        e.to_string()
    }
}

/// Which encoding `bytes` are in.
pub fn sniff(bytes: &[u8]) -> Encoding {
    match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'{') | Some(b'[') | Some(b'"') => Encoding::Json,
        _ => Encoding::MessagePack,
    }
}

/// Decode `bytes` as JSON or MessagePack, nested at most
/// [`DEFAULT_MAX_DEPTH`] deep.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<(T, Encoding), PayloadError> {
    decode_within(bytes, DEFAULT_MAX_DEPTH)
}

/// Decode `bytes` nested at most as deep as the plugin's configuration
/// says ([`max_depth`]).
pub fn decode_with<T: DeserializeOwned>(bytes: &[u8], config: &Config) -> Result<(T, Encoding), PayloadError> {
    decode_within(bytes, max_depth(config))
}

/// The nesting limit `config` sets with [`MAX_DEPTH_KEY`], else
/// [`DEFAULT_MAX_DEPTH`]. A limit far above the default lets a parser
/// recurse that deep: the wasm stack (`[runtime.limits] stack_bytes`) must
/// hold it.
pub fn max_depth(config: &Config) -> usize {
    config.u64(MAX_DEPTH_KEY, DEFAULT_MAX_DEPTH as u64).try_into().unwrap_or(usize::MAX)
}

/// Decode `bytes` as JSON or MessagePack, refusing arrays and maps nested
/// more than `max_depth` deep before parsing.
pub fn decode_within<T: DeserializeOwned>(bytes: &[u8], max_depth: usize) -> Result<(T, Encoding), PayloadError> {
    let encoding = sniff(bytes);
    let too_deep = match encoding {
        Encoding::Json => json_nesting_exceeds(bytes, max_depth),
        Encoding::MessagePack => msgpack_nesting_exceeds(bytes, max_depth),
    };
    if too_deep {
        return Err(PayloadError::TooDeep { encoding, max_depth });
    }
    let invalid = |reason: String| PayloadError::Invalid { encoding, reason };
    let value = match encoding {
        Encoding::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            // The nesting was bounded above; serde_json's own fixed limit
            // would otherwise cap a configured one at 128.
            de.disable_recursion_limit();
            let v = T::deserialize(&mut de).map_err(|e| invalid(e.to_string()))?;
            de.end().map_err(|e| invalid(e.to_string()))?;
            v
        }
        Encoding::MessagePack => {
            let mut de = rmp_serde::Deserializer::from_read_ref(bytes);
            de.set_max_depth(max_depth.saturating_add(1));
            T::deserialize(&mut de).map_err(|e| invalid(e.to_string()))?
        }
    };
    Ok((value, encoding))
}

/// Whether JSON `bytes` open more than `max` arrays or objects inside each
/// other (brackets inside strings do not count). Malformed text is left to
/// the parser.
fn json_nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in bytes {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Whether the MessagePack value at the start of `bytes` holds arrays or
/// maps more than `max` deep: a walk over the markers with a stack of how
/// many items each open container still holds. Malformed or truncated
/// input is left to the parser.
fn msgpack_nesting_exceeds(bytes: &[u8], max: usize) -> bool {
    let be = |at: usize, n: usize| -> Option<u64> {
        let b = bytes.get(at..at.checked_add(n)?)?;
        Some(b.iter().fold(0u64, |acc, &x| (acc << 8) | u64::from(x)))
    };
    // Items still to read in each open container; the bottom entry is the
    // one top-level value.
    let mut open: Vec<u64> = vec![1];
    let mut at = 0usize;
    while let Some(left) = open.last_mut() {
        if *left == 0 {
            open.pop();
            continue;
        }
        *left -= 1;
        let Some(&marker) = bytes.get(at) else { return false };
        at += 1;
        // (bytes to skip after the marker, items of a container it opens)
        let (skip, items): (u64, Option<u64>) = match marker {
            0x00..=0x7f | 0xe0..=0xff | 0xc0 | 0xc2 | 0xc3 => (0, None),
            0x80..=0x8f => (0, Some(2 * u64::from(marker & 0x0f))),
            0x90..=0x9f => (0, Some(u64::from(marker & 0x0f))),
            0xa0..=0xbf => (u64::from(marker & 0x1f), None),
            0xcc | 0xd0 => (1, None),
            0xcd | 0xd1 => (2, None),
            0xca | 0xce | 0xd2 => (4, None),
            0xcb | 0xcf | 0xd3 => (8, None),
            0xd4 => (2, None),
            0xd5 => (3, None),
            0xd6 => (5, None),
            0xd7 => (9, None),
            0xd8 => (17, None),
            // bin, str: a length, then that many bytes.
            0xc4 | 0xd9 => match be(at, 1) {
                Some(n) => (1 + n, None),
                None => return false,
            },
            0xc5 | 0xda => match be(at, 2) {
                Some(n) => (2 + n, None),
                None => return false,
            },
            0xc6 | 0xdb => match be(at, 4) {
                Some(n) => (4 + n, None),
                None => return false,
            },
            // ext: a length and a type byte, then the data.
            0xc7 => match be(at, 1) {
                Some(n) => (2 + n, None),
                None => return false,
            },
            0xc8 => match be(at, 2) {
                Some(n) => (3 + n, None),
                None => return false,
            },
            0xc9 => match be(at, 4) {
                Some(n) => (5 + n, None),
                None => return false,
            },
            0xdc => match be(at, 2) {
                Some(n) => (2, Some(n)),
                None => return false,
            },
            0xdd => match be(at, 4) {
                Some(n) => (4, Some(n)),
                None => return false,
            },
            0xde => match be(at, 2) {
                Some(n) => (2, Some(2 * n)),
                None => return false,
            },
            0xdf => match be(at, 4) {
                Some(n) => (4, Some(2 * n)),
                None => return false,
            },
            // 0xc1 is never used: the parser refuses it.
            _ => return false,
        };
        at = match usize::try_from(skip).ok().and_then(|s| at.checked_add(s)) {
            Some(next) if next <= bytes.len() => next,
            _ => return false,
        };
        if let Some(n) = items {
            // `open` holds the top-level slot plus one entry per container.
            if open.len() > max {
                return true;
            }
            open.push(n);
        }
    }
    false
}

/// Encode `value` in `encoding`.
pub fn encode<T: Serialize>(value: &T, encoding: Encoding) -> Vec<u8> {
    match encoding {
        Encoding::Json => serde_json::to_vec(value).expect("serialisable value"),
        Encoding::MessagePack => rmp_serde::to_vec_named(value).expect("serialisable value"),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn json_nested(depth: usize) -> Vec<u8> {
        let mut s = "[".repeat(depth);
        s.push_str(&"]".repeat(depth));
        s.into_bytes()
    }

    /// `depth` one-element arrays inside each other around a 1.
    fn msgpack_nested(depth: usize) -> Vec<u8> {
        let mut v = vec![0x91; depth];
        v.push(0x01);
        v
    }

    #[test]
    fn nesting_up_to_the_limit_decodes_and_beyond_it_is_refused_in_both_encodings() {
        for (enc, nested) in
            [(Encoding::Json, json_nested as fn(usize) -> Vec<u8>), (Encoding::MessagePack, msgpack_nested)]
        {
            let (_, got) = decode::<Value>(&nested(DEFAULT_MAX_DEPTH)).unwrap();
            assert_eq!(got, enc);
            for depth in [DEFAULT_MAX_DEPTH + 1, 100_000] {
                let e = decode::<Value>(&nested(depth)).unwrap_err();
                assert_eq!(e, PayloadError::TooDeep { encoding: enc, max_depth: DEFAULT_MAX_DEPTH }, "{enc} {depth}");
                let u = UnitError::from(e);
                assert_eq!(u.error_class, ErrorClass::InvalidInput);
                assert!(u.message.contains("nested deeper than 128 levels"), "{}", u.message);
            }
        }
    }

    #[test]
    fn the_limit_is_configurable_past_serde_jsons_own() {
        let config = Config::from_pairs([(MAX_DEPTH_KEY, "300")]);
        assert_eq!(max_depth(&config), 300);
        assert!(decode_with::<Value>(&json_nested(300), &config).is_ok(), "serde_json's 128 no longer caps it");
        assert!(decode_with::<Value>(&msgpack_nested(300), &config).is_ok());
        assert!(matches!(decode_with::<Value>(&json_nested(301), &config), Err(PayloadError::TooDeep { .. })));
        let low = Config::from_pairs([(MAX_DEPTH_KEY, "2")]);
        assert!(decode_with::<Value>(br#"{"a": [1]}"#, &low).is_ok());
        assert!(matches!(decode_with::<Value>(br#"{"a": [[1]]}"#, &low), Err(PayloadError::TooDeep { .. })));
        assert_eq!(max_depth(&Config::from_pairs([(MAX_DEPTH_KEY, "lots")])), DEFAULT_MAX_DEPTH);
    }

    #[test]
    fn brackets_in_strings_and_scalars_in_messagepack_do_not_count() {
        let text = format!(r#"{{"op": "{}", "a": [1, "]]]"]}}"#, "[".repeat(1000));
        assert!(decode::<Value>(text.as_bytes()).is_ok());
        let value =
            serde_json::json!({"s": "[".repeat(1000), "b": [1.5, -3, 70000, u64::MAX, null, true], "m": {"k": [[1]]}});
        let packed = rmp_serde::to_vec_named(&value).unwrap();
        let (back, enc) = decode::<Value>(&packed).unwrap();
        assert_eq!((back, enc), (value, Encoding::MessagePack));
    }

    #[test]
    fn malformed_payloads_are_invalid_not_too_deep() {
        for bad in [&b"{\"a\": "[..], &b"[1, 2"[..], &[0xdc, 0xff][..], &[0xc1][..]] {
            assert!(matches!(decode::<Value>(bad), Err(PayloadError::Invalid { .. })), "{bad:?}");
        }
    }
}
