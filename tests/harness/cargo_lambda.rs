//! Cargo Lambda, run the way the README shows it: the commands are read from README.md itself, so
//! the README cannot drift from what is tested.
//!
//! `scripts/services install --sam` (which `scripts/test` runs) installs cargo-lambda into
//! `.local/sam`; `scripts/services start` exports its path as `AUDITSTREAM_TEST_CARGO_LAMBDA`. A test
//! that needs it fails, never skips, when it is missing — except under `scripts/test --no-sam`, which
//! says so in `AUDITSTREAM_TEST_SKIP_CARGO_LAMBDA` (CI refuses `--no-sam`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::services::checked_executable;
use crate::workspace_bin::{is_set_by_cargo_for_a_test, workspace_root};

/// Absolute path of the `cargo-lambda` executable.
pub const CARGO_LAMBDA_VAR: &str = "AUDITSTREAM_TEST_CARGO_LAMBDA";
/// Set by `scripts/test --no-sam` (the SAM tools, cargo-lambda among them, are not installed then).
pub const SKIP_CARGO_LAMBDA_VAR: &str = "AUDITSTREAM_TEST_SKIP_CARGO_LAMBDA";

/// The cargo-lambda executable, or `None` when `scripts/test --no-sam` asked to leave it out (said on
/// stderr). Panics with how to install it when it is missing.
pub fn cargo_lambda() -> Option<PathBuf> {
    if let Some(why) = std::env::var(SKIP_CARGO_LAMBDA_VAR).ok().filter(|v| !v.is_empty()) {
        eprintln!("SKIPPED: cargo-lambda is not installed in this run ({SKIP_CARGO_LAMBDA_VAR}={why}); run scripts/test without --no-sam to test it");
        return None;
    }
    match checked_executable("cargo-lambda", CARGO_LAMBDA_VAR, std::env::var(CARGO_LAMBDA_VAR).ok()) {
        Ok(path) => Some(path),
        Err(e) => panic!("{e}; cargo-lambda is installed by `scripts/services install --sam` into .local/sam/bin/cargo-lambda"),
    }
}

/// One shell command of a README example: `NAME=value cargo lambda …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    pub env: Vec<(String, String)>,
    pub program: String,
    pub args: Vec<String>,
}

impl ShellCommand {
    fn parse(line: &str) -> ShellCommand {
        let mut words = line.split_whitespace().map(str::to_owned).peekable();
        let mut env = Vec::new();
        while let Some((name, value)) =
            words.peek().and_then(|w| w.split_once('=')).filter(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
        {
            env.push((name.to_owned(), value.to_owned()));
            words.next();
        }
        let program = words.next().unwrap_or_default();
        ShellCommand { env, program, args: words.collect() }
    }

    /// The command with every word (and env value) equal to `from` replaced by `to`.
    pub fn replacing(mut self, from: &str, to: &str) -> ShellCommand {
        for (_, value) in &mut self.env {
            if value == from {
                *value = to.to_owned();
            }
        }
        for arg in &mut self.args {
            if arg == from {
                *arg = to.to_owned();
            }
        }
        self
    }

    /// The command line as the README writes it.
    pub fn display(&self) -> String {
        let env = self.env.iter().map(|(k, v)| format!("{k}={v} "));
        format!("{}{} {}", env.collect::<String>(), self.program, self.args.join(" "))
    }

    /// A `Command` for it, run from the workspace root with `path_first` first on `PATH`, without the
    /// variables cargo set for the running test (a cargo started with them rebuilds the TLS stack: see
    /// `workspace_bin`).
    pub fn command(&self, path_first: &Path, extra_env: &[(String, String)]) -> Command {
        let mut command = Command::new(&self.program);
        command.args(&self.args).current_dir(workspace_root());
        for (name, _) in std::env::vars_os() {
            if name.to_str().is_some_and(is_set_by_cargo_for_a_test) {
                command.env_remove(&name);
            }
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![path_first.to_path_buf()];
        paths.extend(std::env::split_paths(&path));
        command.env("PATH", std::env::join_paths(paths).unwrap_or_else(|e| panic!("PATH: {e}")));
        command.envs(extra_env.iter().map(|(k, v)| (k, v))).envs(self.env.iter().map(|(k, v)| (k, v)));
        command
    }
}

/// A README example: the `$ ` commands of the first `console` block after `heading`, and what the
/// last one prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadmeExample {
    pub commands: Vec<ShellCommand>,
    pub output: Vec<String>,
}

impl ReadmeExample {
    pub fn read(heading: &str) -> ReadmeExample {
        let path = workspace_root().join("README.md");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        ReadmeExample::parse(&text, heading).unwrap_or_else(|| panic!("README.md has no ```console block after {heading:?}"))
    }

    fn parse(text: &str, heading: &str) -> Option<ReadmeExample> {
        let after = &text[text.find(heading)? + heading.len()..];
        let block = after[after.find("```console\n")? + "```console\n".len()..].split("\n```").next()?;
        let mut example = ReadmeExample { commands: Vec::new(), output: Vec::new() };
        for line in block.lines() {
            match line.strip_prefix("$ ") {
                Some(command) => {
                    example.commands.push(ShellCommand::parse(command));
                    example.output.clear();
                }
                None => example.output.push(line.to_owned()),
            }
        }
        Some(example)
    }
}

/// A running `cargo lambda watch` (its process group), stopped on drop. Its output goes to a file.
pub struct Watch {
    child: Child,
    pub log: PathBuf,
}

impl Watch {
    /// Starts `command` in a process group of its own and waits until `port` on 127.0.0.1 accepts
    /// connections.
    pub fn start(mut command: Command, port: u16, log: PathBuf) -> Watch {
        use std::os::unix::process::CommandExt;
        let file = std::fs::File::create(&log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = file.try_clone().unwrap_or_else(|e| panic!("{e}"));
        command.stdin(Stdio::null()).stdout(file).stderr(err).process_group(0);
        let child = command.spawn().unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        let watch = Watch { child, log };
        let started = Instant::now();
        while std::net::TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200)).is_err() {
            assert!(started.elapsed() < Duration::from_secs(60), "cargo lambda watch did not listen on port {port} within 60 s:\n{}", watch.output());
            std::thread::sleep(Duration::from_millis(100));
        }
        watch
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        // The whole group: cargo lambda, the `cargo run` it started, and the function.
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-TERM", "--", &group]).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.wait();
    }
}

/// A TCP port free on 127.0.0.1 now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).unwrap_or_else(|e| panic!("no free port: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readme_example_is_read_as_a_shell_would() {
        let text =
            "intro\n## Local\n\nWith x:\n\n```console\n$ A_B=c cargo lambda watch -P 9000\n$ cargo lambda invoke f --data-file e.json\n{\"ok\":1}\n```\n";
        let example = ReadmeExample::parse(text, "## Local").unwrap();
        assert_eq!(example.commands.len(), 2);
        assert_eq!(
            example.commands[0],
            ShellCommand {
                env: vec![("A_B".into(), "c".into())],
                program: "cargo".into(),
                args: vec!["lambda".into(), "watch".into(), "-P".into(), "9000".into()]
            }
        );
        assert_eq!(example.commands[0].clone().replacing("9000", "1234").replacing("c", "d").display(), "A_B=d cargo lambda watch -P 1234");
        assert_eq!(example.output, ["{\"ok\":1}"]);
    }
}
