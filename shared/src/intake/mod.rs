//! From a queue message to an event body, and back to the queue with a verdict.
//!
//! [`lambda`] is the entry of every function: it turns each SQS record into a
//! [`crate::aws::sqs_message::QueueMessage`], [`resolve`]s it (taking off [`envelope`]s, following
//! [`payload_pointer`]s through the [`payload_store`]), hands the bodies to
//! [`crate::delivery::process`], and [`settle`]s each message: done, delivered again, or sent to
//! the [`dead_letter`] queue with its reason. Nothing here looks inside an event.
//!
//! [`replay`] is the other way in: an archive's objects, selected by key, read back as event bodies
//! for `auditstream replay`.

pub mod dead_letter;
pub mod envelope;
pub mod lambda;
pub mod payload_pointer;
pub mod payload_store;
pub mod replay;
pub mod resolve;
pub mod schedule;
pub mod settle;
