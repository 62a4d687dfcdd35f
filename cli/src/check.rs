//! `auditstream check`: proves a destination works end to end, one step at a time, without
//! writing an audit event (see `docs/operations.md`).

use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use auditstream::config::{PipelineSettings, ProcessEnv};
use auditstream::delivery::health::{HealthReport, Step, Verdict};
use auditstream::destinations::rest::http::SinkBuildError;
use auditstream::destinations::SetupError;
use auditstream::pipeline::timestamp::UtcTime;
use auditstream::redact::Escaped;
use auditstream::secret::SecretError;

use crate::destinations::{self, DestSpec};

pub const LONG_ABOUT: &str = "Check that a destination works, without writing an audit event.\n\n\
Runs one step at a time, each with its result and time: configuration, credentials (the secret \
read), reachability (DNS, TLS, the bucket or container), authentication, permission to write (a \
small probe, marked as a probe: under PREFIX_auditstream/health/ in an object store, an event of \
type auditstream_health_check in a log service), and read-back where the API allows. Stops at the \
first failure, which names the step, the service's status and code, and the likely fix; never a \
secret.\n\n\
Exits 0 when healthy, 1 when a step failed, 2 on a usage or configuration error.";

#[derive(clap::Args)]
pub struct CheckArgs {
    /// The destination to check, as for `run --to`.
    #[arg(long = "to", value_name = "DEST", default_value = "dir:./audit-logs")]
    pub to: String,
    /// Print the report as one JSON object on stdout.
    #[arg(long)]
    pub json: bool,
}

pub async fn check(args: CheckArgs) -> Result<ExitCode> {
    let spec = DestSpec::parse(&args.to)?;
    let started = Instant::now();
    let mut report = HealthReport::new(args.to.clone());
    let built = match PipelineSettings::from_env(&ProcessEnv) {
        Ok(settings) => destinations::build(&spec, &settings).await,
        Err(e) => Err(e.into()),
    };
    let setup = match built {
        Ok(built) => built,
        Err(e) => {
            // A secret that could not be read is the credentials step; anything else is a setting.
            let step = if e.chain().any(reads_a_secret) { Step::Credentials } else { Step::Configuration };
            if step == Step::Credentials {
                report.record(Step::Configuration, Verdict::Passed, "settings read", std::time::Duration::ZERO);
            }
            report.record(step, Verdict::Failed, format!("{e:#}"), started.elapsed());
            print(&report, args.json);
            return Ok(ExitCode::from(if step == Step::Configuration { 2 } else { 1 }));
        }
    };
    let destination = setup.destination;
    report.destination = destination.describe();
    report.record(Step::Configuration, Verdict::Passed, "settings read", started.elapsed());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    destination.check(&setup.pipeline.config.key_prefix, UtcTime::from_epoch_seconds(now), &mut report).await;
    print(&report, args.json);
    Ok(if report.healthy() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Whether a setup error is a secret that could not be read (wrapped by the adapter that read it).
fn reads_a_secret(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<SecretError>().is_some()
        || matches!(e.downcast_ref::<SetupError>(), Some(SetupError::Secret(_)))
        || matches!(e.downcast_ref::<SinkBuildError>(), Some(SinkBuildError::Secret(_)))
}

fn print(report: &HealthReport, json: bool) {
    if json {
        println!("{}", report.to_json());
    } else {
        for line in report.lines() {
            println!("{}", Escaped(&line));
        }
    }
}
