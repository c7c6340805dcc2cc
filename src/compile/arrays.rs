//! Serde for the tables' fixed arrays longer than serde's own implementations (32 elements):
//! a sequence, which must have exactly the array's length to be read back.

use serde::de::{Deserialize, Deserializer, Error};
use serde::ser::{Serialize, Serializer};

pub fn serialize<S: Serializer, T: Serialize, const N: usize>(
    a: &[T; N],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_seq(a.iter())
}

pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>, const N: usize>(
    d: D,
) -> Result<[T; N], D::Error> {
    let v = Vec::<T>::deserialize(d)?;
    let len = v.len();
    v.try_into()
        .map_err(|_| D::Error::invalid_length(len, &format!("{N} elements").as_str()))
}
