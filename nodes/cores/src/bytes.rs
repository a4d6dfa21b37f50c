//! Postcard encoding appended to a buffer the caller owns: snapshots reuse one allocation
//! sized from the previous snapshot, and byte strings (`serde_bytes` fields) are copied with
//! one `extend_from_slice`.

use serde::Serialize;

/// Appends the postcard encoding of `value` to `out`; the bytes are exactly those of
/// `postcard::to_allocvec(value)`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, out: &mut Vec<u8>) {
    postcard::serialize_with_flavor(value, Append(out)).expect("in-memory encoding cannot fail");
}

/// A postcard output that appends to a vector.
struct Append<'a>(&'a mut Vec<u8>);

impl postcard::ser_flavors::Flavor for Append<'_> {
    type Output = ();

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        // Postcard writes every varint (lengths, integers) through here, mostly one byte
        // long: a push, not a call to the C library's memcpy, which was 1.5 % of a
        // key/value run's wall time for such copies.
        match data {
            [b] => self.0.push(*b),
            _ => self.0.extend_from_slice(data),
        }
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

#[cfg(test)]
mod tests {
    use serde::Serialize;

    #[derive(Serialize)]
    struct Value {
        a: u64,
        #[serde(with = "serde_bytes")]
        b: Vec<u8>,
        s: String,
    }

    #[test]
    fn appends_exactly_postcards_encoding() {
        for len in [0usize, 1, 127, 128, 300, 70_000] {
            let v = Value { a: 9, b: (0..len).map(|i| (i * 7) as u8).collect(), s: "x".repeat(len % 200) };
            let mut out = vec![7];
            super::encode_into(&v, &mut out);
            assert_eq!(out[0], 7, "what was there stays");
            assert_eq!(out[1..], postcard::to_allocvec(&v).unwrap()[..], "length {len}");
        }
    }
}
