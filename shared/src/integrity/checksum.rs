//! The one checksum of the archive: SHA-256, as S3 keeps it (`x-amz-checksum-sha256`, base64) and
//! as manifests and digests write it (lowercase hex, what `sha256sum` and `openssl dgst` print).

use base64::Engine;
use sha2::Digest;

/// The SHA-256 of some bytes.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sha256Sum(pub [u8; 32]);

impl Sha256Sum {
    pub fn of(bytes: &[u8]) -> Sha256Sum {
        Sha256Sum(sha2::Sha256::digest(bytes).into())
    }

    /// Lowercase hex, as `sha256sum` prints it.
    pub fn hex(&self) -> String {
        self.hex_digits().as_str().to_owned()
    }

    /// The 64 hex digits without a heap allocation: every object's manifest entry writes one, so
    /// this is on the per-event path (a `format!` per byte cost more than the rest of the manifest).
    fn hex_digits(&self) -> HexDigits {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 64];
        for (pair, b) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(b >> 4)];
            pair[1] = DIGITS[usize::from(b & 0x0f)];
        }
        HexDigits(out)
    }

    pub fn from_hex(text: &str) -> Option<Sha256Sum> {
        if text.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            out[i] = u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok()?;
        }
        Some(Sha256Sum(out))
    }

    /// Base64, as S3's `x-amz-checksum-sha256` header carries it.
    pub fn base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }

    /// From S3's `ChecksumSHA256`. A multipart object's composite checksum (`…-3`) is not the
    /// SHA-256 of the object, so it is no answer here (auditstream never writes in parts).
    pub fn from_base64(text: &str) -> Option<Sha256Sum> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).ok()?;
        Some(Sha256Sum(bytes.try_into().ok()?))
    }
}

/// A SHA-256 in lowercase hex, on the stack.
struct HexDigits([u8; 64]);

impl HexDigits {
    fn as_str(&self) -> &str {
        // Only ASCII hex digits are ever written into it.
        std::str::from_utf8(&self.0).expect("hex digits are ASCII")
    }
}

/// An object as its store recorded it: size and SHA-256.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recorded {
    pub size: u64,
    pub sha256: Sha256Sum,
}

impl std::fmt::Debug for Sha256Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "sha256:{}", self.hex_digits().as_str())
    }
}

impl std::fmt::Display for Sha256Sum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.hex_digits().as_str())
    }
}

impl serde::Serialize for Sha256Sum {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.hex_digits().as_str())
    }
}

impl<'de> serde::Deserialize<'de> for Sha256Sum {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Sha256Sum::from_hex(&text).ok_or_else(|| serde::de::Error::custom("expected a SHA-256 as 64 lowercase hex digits"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_base64_are_the_forms_sha256sum_and_s3_print() {
        // `printf abc | sha256sum`, and the same in base64 as S3 returns it.
        let sum = Sha256Sum::of(b"abc");
        assert_eq!(sum.hex(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        assert_eq!(sum.base64(), "ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=");
        assert_eq!(Sha256Sum::from_hex(&sum.hex()), Some(sum));
        assert_eq!(Sha256Sum::from_base64(&sum.base64()), Some(sum));
        assert_eq!(Sha256Sum::from_base64("ungWv48Bz+pBQUDeXa4iI7ADYaOWF3qctBD/YfIAFa0=-3"), None);
        assert_eq!(Sha256Sum::from_hex("zz"), None);
    }

    #[test]
    fn display_debug_and_json_write_the_same_lowercase_hex_as_sha256sum() {
        // Every hex digit in both halves of a byte: 00 11 … ff, then 0f 1e … f0.
        let bytes: [u8; 32] = std::array::from_fn(|i| if i < 16 { i as u8 * 0x11 } else { ((i as u8 - 16) << 4) | (31 - i as u8) });
        let sum = Sha256Sum(bytes);
        let want = "00112233445566778899aabbccddeeff0f1e2d3c4b5a69788796a5b4c3d2e1f0";
        assert_eq!(sum.hex(), want);
        assert_eq!(sum.to_string(), want);
        assert_eq!(format!("{sum:?}"), format!("sha256:{want}"));
        assert_eq!(serde_json::to_string(&sum).unwrap(), format!("\"{want}\""));
        assert_eq!(serde_json::from_str::<Sha256Sum>(&format!("\"{want}\"")).unwrap(), sum);
    }
}
