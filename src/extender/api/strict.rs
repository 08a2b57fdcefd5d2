//! Objects that must be JSON objects.
//!
//! serde's derived `Deserialize` for a struct also accepts a JSON array and reads it by
//! position, so `"metadata":["p","ns"]` would become name `p`, namespace `ns`, and
//! `{"Pod":[]}` an empty pod that every node passes. Go's `encoding/json` refuses both
//! ("cannot unmarshal array into Go struct field"), and so does tessera: every struct of the
//! wire format is read through [`Strict`], which asks the decoder for a map and nothing else.

use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{Deserializer, MapAccess, Visitor};

/// A `T` read only from a JSON object.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Strict<T>(pub T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Strict<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer
            .deserialize_map(MapOnly(PhantomData))
            .map(Strict)
    }
}

struct MapOnly<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de>> Visitor<'de> for MapOnly<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<T, M::Error> {
        // The derived impl sees a map-only deserializer: it can read fields, never positions.
        T::deserialize(MapAccessDeserializer::new(map))
    }
}

/// `deserialize_with` for an object field: `null` or absent → `T::default()`, an object →
/// `T`, anything else → an error.
pub fn object<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<Strict<T>>::deserialize(deserializer)?
        .map(|s| s.0)
        .unwrap_or_default())
}

/// `deserialize_with` for a list of objects: `null` or absent → empty, each element must be
/// an object.
pub fn objects<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<Strict<T>>>::deserialize(deserializer)?
        .map(|items| items.into_iter().map(|s| s.0).collect())
        .unwrap_or_default())
}
