//! Byte strings on the wire as one slice, not as a sequence of `u8`s: `#[serde(with =
//! "crate::bytes")]` on a `Vec<u8>` field.
//!
//! Postcard writes a byte string and a sequence of `u8` identically (a varint length, then
//! the bytes), so the encoding does not change — only its cost: serde hands a `Vec<u8>` to
//! the format one element at a time, about 25 instructions per byte, where a byte string is
//! one copy. Log entries, snapshots and apply messages are all such fields.

use serde::de::{Deserializer, Error, SeqAccess, Visitor};
use serde::{Serialize, Serializer};
use std::fmt;

/// Appends the postcard encoding of `value` to `out`, copying byte strings and strings whole
/// (postcard's own `to_extend` pushes them one byte at a time).
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    postcard::serialize_with_flavor(value, Append(out)).expect("in-memory encoding cannot fail");
}

/// A postcard output that appends to a vector.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        self.0.extend_from_slice(data);
        Ok(())
    }

    fn try_push(&mut self, data: u8) -> postcard::Result<()> {
        self.0.push(data);
        Ok(())
    }

    fn finalize(self) -> postcard::Result<()> {
        Ok(())
    }
}

/// Writes `bytes` as a byte string.
pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Reads a byte string (or, from formats that write them so, a sequence of `u8`).
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: Error>(self, v: &[u8]) -> Result<Vec<u8>, E> {
        Ok(v.to_vec())
    }

    fn visit_byte_buf<E: Error>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(v)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut v = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
        while let Some(b) = seq.next_element()? {
            v.push(b);
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Plain {
        a: u64,
        b: Vec<u8>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Fast {
        a: u64,
        #[serde(with = "crate::bytes")]
        b: Vec<u8>,
    }

    #[test]
    fn the_encoding_is_that_of_a_sequence_of_bytes() {
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let b: Vec<u8> = (0..len).map(|i| (i * 7) as u8).collect();
            let plain = postcard::to_allocvec(&Plain { a: 9, b: b.clone() }).unwrap();
            let fast = postcard::to_allocvec(&Fast { a: 9, b: b.clone() }).unwrap();
            assert_eq!(plain, fast, "length {len}");
            assert_eq!(postcard::from_bytes::<Fast>(&plain).unwrap(), Fast { a: 9, b });
        }
        assert!(postcard::from_bytes::<Fast>(&[9, 5, 1]).is_err(), "a truncated byte string");
        let mut out = vec![7];
        super::encode_into(&Fast { a: 1, b: vec![2, 3] }, &mut out);
        assert_eq!(out, [7, 1, 2, 2, 3], "appended after what was there");
    }
}
