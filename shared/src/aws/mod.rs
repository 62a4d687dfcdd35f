//! Requests to AWS services that more than one part of auditstream makes.

pub mod sqs;
