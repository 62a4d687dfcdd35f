//! The shared pipeline of auditstream.
//!
//! Audit events (Workato-style job history and user activity) come in as message bodies; each is
//! scanned once ([`json_scan`]), classified ([`event`]), filtered ([`filter`]), masked
//! ([`mask`]), sized and wrapped ([`pipeline`], [`template`]) and given its object key ([`key`]).
//! The resulting [`pipeline::Document`]s go to a [`destination::Destination`]; delivery retries
//! through the one [`retry::RetryPolicy`]. [`batch`] runs a batch of messages and reports every
//! one; [`lambda`] turns that into an SQS partial batch response.
//!
//! Pure logic (everything up to the document) does no I/O; adapters for S3, a local directory and
//! the other destinations live in [`stores`] and the destination modules.

pub mod activity_types;
pub mod azure;
pub mod batch;
pub mod batch_send;
pub mod config;
pub mod dead_letter;
pub mod destination;
pub mod envelope;
pub mod event;
pub mod filter;
pub mod json_scan;
pub mod key;
pub mod lambda;
pub mod local_input;
pub mod log_batch;
pub mod mask;
pub mod metrics;
pub mod nesting;
pub mod output;
pub mod payload_pointer;
pub mod payload_store;
pub mod pipeline;
pub mod queue_batch;
pub mod queue_message;
pub mod raw_scan;
pub mod redact;
pub mod resolve;
pub mod rest;
pub mod retry;
pub mod secret;
pub mod sqs_queue;
pub mod stores;
pub mod telemetry;
pub mod template;
pub mod timestamp;
pub mod transport;
