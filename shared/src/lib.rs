//! The shared logic of auditstream: every function and the command-line tool are thin wrappers
//! around this crate. The folders follow an event's way through it:
//!
//! 1. [`intake`]: an SQS record (or a file the CLI read) becomes an event body: envelopes taken
//!    off, payload pointers followed, and at the end each message settled: done, retried or
//!    dead-lettered.
//! 2. [`pipeline`]: pure, no I/O. A body is scanned once, classified, filtered, masked, sized,
//!    templated and keyed into a [`pipeline::Document`].
//! 3. [`delivery`]: documents go to a [`delivery::destination::Destination`] through the two
//!    ports (object store, log sink), the one retry policy and the one packer.
//! 4. [`destinations`]: one adapter per backend (S3, a local directory, Azure Blob, Azure
//!    Monitor, REST services).
//! 5. [`report`]: what happened, as CloudWatch metrics and logs.
//!
//! [`integrity`] holds the formats of the tamper-evident archive (manifests, signed digests) and
//! the decisions of its verification; the object store adapters do its I/O.
//!
//! [`aws`] holds the SQS calls intake and the CLI share, and the queue message they speak;
//! [`config`], [`secret`] and [`redact`] are used throughout. `ARCHITECTURE.md` at the repository root explains the layers and their rules.

pub mod aws;
pub mod config;
pub mod delivery;
pub mod destinations;
pub mod intake;
pub mod integrity;
pub mod pipeline;
pub mod redact;
pub mod report;
pub mod secret;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod test_support;
