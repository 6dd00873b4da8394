//! Decoding what clients send strictly: a record is a map of named fields.
//!
//! serde's derived `Deserialize` also takes a struct as a positional array
//! (`["open", 100]` for `{state, ms}`, `[[], []]` for a telemetry batch),
//! a form no document describes and no client means: one missing field
//! silently shifts the rest. The types clients send decode through
//! [`map_only!`], which refuses anything but a map and names what it wanted.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};

/// A type decoded from a map of named fields only.
pub trait Fields<'de>: Sized {
    /// What the type is, for the error message ("a telemetry batch").
    const WHAT: &'static str;
    /// Decode the fields (serde's derived code, generated with
    /// `#[serde(remote = "Self")]`).
    fn from_fields<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error>;
}

/// Decode `T` from a map; any other form is refused as "invalid type".
pub fn map_only<'de, D: Deserializer<'de>, T: Fields<'de>>(d: D) -> Result<T, D::Error> {
    struct MapVisitor<T>(PhantomData<T>);
    impl<'de, T: Fields<'de>> Visitor<'de> for MapVisitor<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{} as a map of named fields", T::WHAT)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
            T::from_fields(MapAccessDeserializer::new(map))
        }
    }
    d.deserialize_map(MapVisitor(PhantomData))
}

/// Make a type that derives `Deserialize` (and maybe `Serialize`) with
/// `#[serde(remote = "Self")]` decode from maps only:
/// `map_only!(Reason, "a reason")`, or `map_only!(Batch, "a batch", serialize)`
/// when it derives `Serialize` too (which `remote` also turns into an
/// inherent function).
#[macro_export]
macro_rules! map_only {
    ($t:ty, $what:literal) => {
        impl<'de> $crate::wire::Fields<'de> for $t {
            const WHAT: &'static str = $what;
            fn from_fields<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                <$t>::deserialize(d)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $crate::wire::map_only(d)
            }
        }
    };
    ($t:ty, $what:literal, serialize) => {
        $crate::map_only!($t, $what);
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                <$t>::serialize(self, s)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Deserialize, Serialize)]
    #[serde(remote = "Self")]
    struct Force {
        state: String,
        ms: Option<u64>,
    }
    crate::map_only!(Force, "a force", serialize);

    #[test]
    fn maps_decode_and_arrays_are_refused() {
        let f: Force = serde_json::from_str(r#"{"state":"open","ms":5}"#).unwrap();
        assert_eq!(f, Force { state: "open".into(), ms: Some(5) });
        let err = serde_json::from_str::<Force>(r#"["open",5]"#).unwrap_err().to_string();
        assert!(err.contains("expected a force as a map of named fields"), "{err}");
        assert_eq!(serde_json::to_string(&f).unwrap(), r#"{"state":"open","ms":5}"#);
        let named = rmp_serde::to_vec_named(&f).unwrap();
        assert_eq!(rmp_serde::from_slice::<Force>(&named).unwrap(), f);
        let positional = rmp_serde::to_vec(&f).unwrap();
        assert!(rmp_serde::from_slice::<Force>(&positional).is_err(), "MessagePack arrays are refused too");
    }
}
