//! Test harness of the end-to-end tests (`tests/tests/*.rs`, one test binary per file): where the local
//! services are and clients for them ([`services`]), a Lambda Runtime API emulator that runs the built
//! function binaries ([`lambda_emulator`]), SQS Lambda events for calling a handler in process
//! ([`sqs_events`]), building a workspace binary for a test ([`workspace_bin`]), and running the
//! `auditstream` command or a Python snippet against moto ([`command_run`]).
//!
//! Run everything with `scripts/test`; see `scripts/services --help` to run tests by hand.

pub mod azure_monitor_fake;
pub mod azurite;
pub mod cargo_lambda;
pub mod command_run;
pub mod fake_server;
pub mod gen_events;
pub mod lambda_emulator;
pub mod rest_receivers;
pub mod services;
pub mod sqs_events;
pub mod workspace_bin;

pub use lambda_emulator::{InvokeError, LambdaFunction, ProcessUsage, RunningLambda, RuntimeApiEmulator};
pub use services::{
    azurite_blob_endpoint, create_bucket, create_queue, create_queue_with_dlq, moto_endpoint, moto_env, moto_s3_client, moto_sdk_config, moto_sqs_client,
    python, queue_depth, unique_name, TestQueue,
};
pub use workspace_bin::{workspace_bin, workspace_root};
