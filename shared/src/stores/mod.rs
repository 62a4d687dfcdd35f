//! Object-store adapters behind [`crate::destination::ObjectStore`].

pub mod dir;
pub mod s3;
