//! Requests to AWS services that more than one part of auditstream makes, and the one reading
//! of their failures ([`errors`]).

pub mod errors;
pub mod kms;
pub mod s3;
pub mod sqs;
pub mod sqs_message;
