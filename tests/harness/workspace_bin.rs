//! Builds a binary of the workspace for a test and says where it is.
//!
//! Cargo only provides `CARGO_BIN_EXE_*` for binaries of the package under test; the functions and the CLI
//! are other packages. So a test asks for `workspace_bin("s3-writer", "s3-writer")`: the first call in a
//! test process runs `cargo build --workspace --bins --tests` and reads the executable's path from cargo's
//! JSON messages; later calls reuse it. Parallel test processes (nextest runs one per test) are serialised
//! by cargo's own lock on the target directory.
//!
//! Why the whole workspace and `--tests`, not `cargo build -p s3-writer`: cargo unifies features over the
//! packages and targets of one invocation. `cargo nextest run --workspace` builds every package with its
//! dev-dependencies (tokio's `test-util`, ...); a `-p s3-writer` build resolves fewer features for tokio,
//! hyper and tower and so recompiles the whole AWS SDK stack a second time (80 s here, per run in CI).
//! With the same selection as the test build every dependency is already fresh and the call costs a cargo
//! no-op (under half a second) after `scripts/test`'s build.
//!
//! Where the binary comes from: cargo compiles a binary under a hashed name in the build directory
//! (`debug/deps/NAME-HASH`) and then puts it at `debug/NAME` of the target directory, a path that is
//! the same whichever checkout built it. Checkouts sharing one `CARGO_TARGET_DIR` (git worktrees)
//! would overwrite each other's `debug/NAME`, even between the end of a build and the moment a test
//! reads it. So this build keeps the shared build directory (every compiled artifact is shared and
//! fresh, as in the test build) but gives cargo a target directory of this checkout's own
//! (`by-checkout/<hash of the workspace root>/` under the shared one): the executable cargo names is
//! the one it built in this invocation, put there by cargo itself while it holds its lock, and no
//! other checkout writes there. See <https://doc.rust-lang.org/cargo/reference/build-cache.html> and
//! `build.build-dir` in <https://doc.rust-lang.org/cargo/reference/config.html>.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Root of the Cargo workspace (the parent of this crate's directory, `tests/`).
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().map(Path::to_path_buf).unwrap_or_else(|| manifest_dir.to_path_buf())
}

/// Path of binary `bin` of package `package`, built (debug profile) if needed. Panics with cargo's
/// diagnostics if the build fails: a test cannot run without its binary.
pub fn workspace_bin(package: &str, bin: &str) -> PathBuf {
    static BUILT: OnceLock<Mutex<HashMap<(String, String), PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(HashMap::new()));
    // Held across the build, so threads of one test process build each binary once.
    let mut built = built.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let key = (package.to_owned(), bin.to_owned());
    if let Some(path) = built.get(&key) {
        return path.clone();
    }
    let path = build(package, bin).unwrap_or_else(|e| panic!("{e}"));
    built.insert(key, path.clone());
    path
}

fn build(package: &str, bin: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let root = workspace_root();
    let directories = directories(&cargo, &root)?;
    let mut command = Command::new(&cargo);
    command.current_dir(&root).args(["build", "--quiet", "--workspace", "--bins", "--tests", "--message-format=json-render-diagnostics"]);
    command.arg("--target-dir").arg(checkout_target_dir(&directories.target, &root));
    command.arg("--config").arg(format!("build.build-dir={}", toml_string(&directories.build.to_string_lossy())));
    remove_test_variables(&mut command);
    let output = command.output().map_err(|e| format!("cannot run `{cargo} build` in {}: {e}", root.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "`cargo build --workspace --bins --tests` (for bin {bin} of {package}) failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    executable_from_messages(&stdout, package, bin).ok_or_else(|| {
        format!("`cargo build --workspace --bins --tests` named no executable for bin {bin} of package {package}: is it a [[bin]] of that package?")
    })
}

/// The test runner gives this process the variables cargo sets for running a test (CARGO_MANIFEST_DIR,
/// CARGO_PKG_*, ...). Passed on, they look like a changed environment to build scripts that watch them
/// (ring's watches CARGO_MANIFEST_DIR), and the "no-op" build recompiles ring and the whole TLS and AWS
/// stack above it: a minute per test run, during which the test's own connections went stale.
fn remove_test_variables(command: &mut Command) {
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_by_cargo_for_a_test) {
            command.env_remove(&name);
        }
    }
}

/// The workspace's target and build directories, as cargo resolves them (`CARGO_TARGET_DIR`,
/// `--config`, `.cargo/config.toml`); the build directory is the target directory unless set.
struct Directories {
    target: PathBuf,
    build: PathBuf,
}

fn directories(cargo: &str, root: &Path) -> Result<Directories, String> {
    let mut command = Command::new(cargo);
    command.current_dir(root).args(["metadata", "--format-version", "1", "--no-deps"]);
    remove_test_variables(&mut command);
    let output = command.output().map_err(|e| format!("cannot run `{cargo} metadata` in {}: {e}", root.display()))?;
    if !output.status.success() {
        return Err(format!("`cargo metadata` in {} failed ({}):\n{}", root.display(), output.status, String::from_utf8_lossy(&output.stderr)));
    }
    directories_from_metadata(&output.stdout).ok_or_else(|| format!("`cargo metadata` in {} named no target_directory", root.display()))
}

fn directories_from_metadata(metadata: &[u8]) -> Option<Directories> {
    let metadata: serde_json::Value = serde_json::from_slice(metadata).ok()?;
    let target = PathBuf::from(metadata["target_directory"].as_str()?);
    let build = metadata["build_directory"].as_str().map_or_else(|| target.clone(), PathBuf::from);
    Some(Directories { target, build })
}

/// This checkout's own target directory: `by-checkout/<hash of the workspace root>` under the shared one.
fn checkout_target_dir(shared_target: &Path, root: &Path) -> PathBuf {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    shared_target.join("by-checkout").join(format!("{:016x}", hasher.finish()))
}

/// `text` as a TOML basic string, for a `--config` value.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The variables cargo (and nextest) set for a test process, which a build started from it must not inherit.
pub fn is_set_by_cargo_for_a_test(name: &str) -> bool {
    matches!(name, "CARGO_MANIFEST_DIR" | "CARGO_MANIFEST_PATH" | "CARGO_CRATE_NAME" | "CARGO_PRIMARY_PACKAGE" | "CARGO_TARGET_TMPDIR" | "OUT_DIR")
        || name.starts_with("CARGO_PKG_")
        || name.starts_with("CARGO_BIN_EXE_")
}

/// Finds the executable of `bin` in cargo's `--message-format=json` output: the plain binary, not the
/// unit-test harness built from the same source (`profile.test` true).
fn executable_from_messages(messages: &str, package: &str, bin: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["profile"]["test"] == false)
        .filter(|m| m["target"]["name"] == bin && m["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == "bin")))
        .filter(|m| package_matches(m["package_id"].as_str().unwrap_or_default(), package))
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
}

/// Package ids look like `path+file:///home/dev/auditstream/functions/s3-writer#0.1.0` (or, for a name that differs
/// from the directory, `...#s3-writer@0.1.0`).
fn package_matches(package_id: &str, package: &str) -> bool {
    match package_id.rsplit_once('#') {
        Some((_, frag)) if frag.contains('@') => frag.split('@').next() == Some(package),
        Some((url, _)) => url.rsplit('/').next() == Some(package),
        None => package_id.split(' ').next() == Some(package),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_ids_of_each_cargo_format_match_their_package() {
        let cases = [
            ("path+file:///home/dev/auditstream/functions/s3-writer#0.1.0", "s3-writer", true),
            ("path+file:///home/dev/auditstream/tests#auditstream-e2e@0.1.0", "auditstream-e2e", true),
            ("path+file:///home/dev/auditstream/tests#auditstream-e2e@0.1.0", "tests", false),
            ("path+file:///home/dev/auditstream/cli#auditstream-cli@0.1.0", "auditstream", false),
            ("s3-writer 0.1.0 (path+file:///home/dev/auditstream/functions/s3-writer)", "s3-writer", true),
        ];
        for (id, package, expected) in cases {
            assert_eq!(package_matches(id, package), expected, "{id} vs {package}");
        }
    }

    #[test]
    fn the_executable_is_read_from_the_plain_bin_artifact_only() {
        let messages = concat!(
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/shared#auditstream@0.1.0","target":{"name":"auditstream","kind":["lib"]},"profile":{"test":false},"executable":null}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/cli#auditstream-cli@0.1.0","target":{"name":"auditstream","kind":["bin"]},"profile":{"test":true},"executable":"/w/target/debug/deps/auditstream-0123abcd"}"#,
            "\n",
            r#"{"reason":"compiler-artifact","package_id":"path+file:///w/cli#auditstream-cli@0.1.0","target":{"name":"auditstream","kind":["bin"]},"profile":{"test":false},"executable":"/w/target/debug/auditstream"}"#,
            "\n",
            r#"{"reason":"build-finished","success":true}"#,
        );
        assert_eq!(executable_from_messages(messages, "auditstream-cli", "auditstream"), Some(PathBuf::from("/w/target/debug/auditstream")));
        assert_eq!(executable_from_messages(messages, "auditstream", "auditstream"), None);
    }

    #[test]
    fn this_checkouts_target_dir_is_under_the_shared_one_and_the_build_dir_stays_shared() {
        let dirs = directories_from_metadata(br#"{"target_directory":"/w/target","build_directory":"/w/build"}"#).unwrap();
        assert_eq!((dirs.target, dirs.build), (PathBuf::from("/w/target"), PathBuf::from("/w/build")));
        let dirs = directories_from_metadata(br#"{"target_directory":"/w/target"}"#).unwrap();
        assert_eq!(dirs.build, PathBuf::from("/w/target"), "cargo before 1.91 names no build directory: it is the target directory");
        let mine = checkout_target_dir(Path::new("/w/target"), Path::new("/src/a"));
        assert!(mine.starts_with("/w/target/by-checkout/"), "{}", mine.display());
        assert_eq!(mine, checkout_target_dir(Path::new("/w/target"), Path::new("/src/a")));
        assert_ne!(mine, checkout_target_dir(Path::new("/w/target"), Path::new("/src/b")));
        assert_eq!(toml_string(r#"C:\t "x""#), r#""C:\\t \"x\"""#);
    }

    #[test]
    fn a_build_from_a_test_drops_what_cargo_set_for_the_test_and_keeps_the_users_cargo_settings() {
        for dropped in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_BIN_EXE_auditstream", "CARGO_CRATE_NAME", "OUT_DIR"] {
            assert!(is_set_by_cargo_for_a_test(dropped), "{dropped}");
        }
        for kept in ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_JOBS", "CARGO_PROFILE_DEV_DEBUG", "CARGO", "PATH"] {
            assert!(!is_set_by_cargo_for_a_test(kept), "{kept}");
        }
    }
}
