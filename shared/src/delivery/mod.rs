//! Documents to a destination, with an outcome for every message.
//!
//! [`process`] runs a batch of messages through the pipeline and a [`destination::Destination`];
//! the destinations are built from two ports, [`destination::ObjectStore`] and
//! [`destination::LogSink`]. Every attempt goes through the one [`retry`] policy, whose
//! [`retry::FailureKind`] is the one vocabulary for I/O failures; [`log_batching`] packs
//! documents into requests with the one packer ([`pack`]); [`transport`] builds the one kind of
//! HTTP client. Nothing here names a vendor.

pub mod destination;
pub mod health;
pub mod log_batching;
pub mod pack;
pub mod process;
pub mod retry;
pub mod transport;
