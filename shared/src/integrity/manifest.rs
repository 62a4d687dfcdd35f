//! A batch's manifest: what one batch wrote or found already there, with each object's size and
//! SHA-256. Written once per batch, create-only, after the batch's objects (see
//! [`crate::delivery::destination::ObjectStoreDestination`]); the digests then name every manifest.
//!
//! Format `auditstream-manifest/1` (JSON, documented in `docs/integrity.md`):
//! `{"format":"auditstream-manifest/1","written_at":"2026-11-27T20:01:02.345Z","objects":[{"key":"…","size":123,"sha256":"…"}]}`

use serde::{Deserialize, Serialize};

use crate::integrity::checksum::Sha256Sum;

pub const MANIFEST_FORMAT: &str = "auditstream-manifest/1";

/// One object as a batch recorded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    pub key: String,
    pub size: u64,
    pub sha256: Sha256Sum,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    /// When the batch ended, ISO-8601 UTC (the manifest's key carries the same time).
    pub written_at: String,
    pub objects: Vec<ManifestEntry>,
}

/// A record that cannot be read as its format.
#[derive(Debug, thiserror::Error)]
#[error("{key} is not a valid {format} record: {reason}")]
pub struct BadRecord {
    pub key: String,
    pub format: &'static str,
    pub reason: String,
}

impl Manifest {
    pub fn new(written_at: String, objects: Vec<ManifestEntry>) -> Manifest {
        Manifest { format: MANIFEST_FORMAT.into(), written_at, objects }
    }

    pub fn to_json(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a manifest is plain data")
    }

    pub fn parse(key: &str, bytes: &[u8]) -> Result<Manifest, BadRecord> {
        let bad = |reason: String| BadRecord { key: key.into(), format: MANIFEST_FORMAT, reason };
        let manifest: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
        if manifest.format != MANIFEST_FORMAT {
            return Err(bad(format!("its format is {:?}", manifest.format)));
        }
        Ok(manifest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manifest_reads_back_as_written_and_names_its_format() {
        let m = Manifest::new("2026-11-27T20:01:02.345Z".into(), vec![ManifestEntry { key: "a/b.json".into(), size: 3, sha256: Sha256Sum::of(b"abc") }]);
        let json = m.to_json();
        assert_eq!(
            String::from_utf8(json.clone()).unwrap(),
            r#"{"format":"auditstream-manifest/1","written_at":"2026-11-27T20:01:02.345Z","objects":[{"key":"a/b.json","size":3,"sha256":"ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"}]}"#
        );
        assert_eq!(Manifest::parse("m", &json).unwrap(), m);
        let other = Manifest::parse("m", br#"{"format":"auditstream-manifest/9","written_at":"","objects":[]}"#).unwrap_err();
        assert_eq!(other.to_string(), r#"m is not a valid auditstream-manifest/1 record: its format is "auditstream-manifest/9""#);
    }
}
