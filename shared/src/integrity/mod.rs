//! The tamper-evident archive (`docs/integrity.md`): what proves that no event was removed,
//! changed or slipped into an object store archive after it was written.
//!
//! - [`checksum`]: the one checksum, SHA-256, in the forms S3 and the records use.
//! - [`layout`]: where manifests and digests live (`PREFIX_auditstream/…`) and what their keys say.
//! - [`manifest`]: a batch's record of the objects it wrote or found, each with size and SHA-256.
//! - [`digest`]: the signed hash chain over the manifests, one digest per hour, and the step that
//!   extends it.
//! - [`verify`]: walking the chain and deciding what was removed, changed or slipped in.
//! - [`signature`]: ECDSA P-256 (AWS KMS) and Ed25519 (a local key) signatures of digests.
//! - [`sorted_keys`]: the keys verification must look up, sorted within bounded memory.
//!
//! Nothing here does I/O of its own: it acts through the [`archive`] port, which the object store
//! adapters implement, and the command-line tool and the digest function drive it. The one
//! exception is [`sorted_keys`], which spills what does not fit in memory to temporary files.

pub mod archive;
pub mod checksum;
pub mod digest;
pub mod layout;
pub mod manifest;
pub mod signature;
pub mod sorted_keys;
pub mod verify;
