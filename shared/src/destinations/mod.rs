//! One adapter per backend, each implementing a port of [`crate::delivery::destination`]:
//! object stores ([`s3`], [`dir`], [`azure::blob_store`]) and log sinks ([`azure::monitor_sink`],
//! [`rest`]).

pub mod azure;
pub mod dir;
pub mod rest;
pub mod s3;
