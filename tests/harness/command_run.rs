//! Running the `auditstream` command, or a Python snippet with the test venv, against moto, and
//! what it said, for the tests that drive a queue from outside (`queue_flow`, `replay_queue`).

use std::process::{Command, Output};

use crate::services::{moto_env, python};
use crate::workspace_bin::workspace_bin;

/// The variables a command under test must not take from the environment the tests run in: each
/// changes what the command does, and the tests say what they want.
const SETTINGS_OF_THE_RUNNER: [&str; 5] =
    ["AUDITSTREAM_DLQ_URL", "AUDITSTREAM_PAYLOAD_BUCKET", "AUDITSTREAM_STREAMS", "AUDITSTREAM_LOG_TEMPLATE", "AUDITSTREAM_MAX_EVENT_BYTES"];

/// A finished command: its output, and `what` it was, for the messages of failed assertions.
pub struct Run {
    pub output: Output,
    pub what: String,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    /// Asserts the exit code, showing everything the command said otherwise.
    pub fn expect_code(self, code: i32) -> Self {
        assert_eq!(self.code(), Some(code), "{} exited {:?}\nstdout:\n{}\nstderr:\n{}", self.what, self.output.status, self.stdout(), self.stderr());
        self
    }
}

/// Points `command` at moto, without the [`SETTINGS_OF_THE_RUNNER`].
pub fn moto_command_env(command: &mut Command) {
    command.envs(moto_env());
    for var in SETTINGS_OF_THE_RUNNER {
        command.env_remove(var);
    }
}

/// Runs the `auditstream` command with `args` against moto.
pub fn auditstream(args: &[&str]) -> Run {
    let mut command = Command::new(workspace_bin("auditstream-cli", "auditstream"));
    command.args(args);
    moto_command_env(&mut command);
    let output = command.output().expect("run auditstream");
    Run { output, what: format!("auditstream {}", args.join(" ")) }
}

/// Runs a Python snippet with the test venv (boto3, amazon-sqs-extended-client) against moto.
pub fn python_snippet(code: &str, args: &[&str]) -> Run {
    let mut command = Command::new(python());
    command.arg("-c").arg(code).args(args);
    moto_command_env(&mut command);
    let output = command.output().expect("run python");
    Run { output, what: "python snippet".into() }
}
