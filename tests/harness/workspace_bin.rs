//! Builds a binary of the workspace for a test and says where it is.
//!
//! Cargo only provides `CARGO_BIN_EXE_*` for binaries of the package under test; the functions and the CLI
//! are other packages. So a test asks for `workspace_bin("s3-writer", "s3-writer")`: the first call in a
//! test process runs `cargo build --workspace --bins --tests` and reads the executable's path from cargo's
//! JSON messages (so `CARGO_TARGET_DIR` is honoured); later calls reuse it. Parallel test processes
//! (nextest runs one per test) are serialised by cargo's own lock on the target directory.
//!
//! Why the whole workspace and `--tests`, not `cargo build -p s3-writer`: cargo unifies features over the
//! packages and targets of one invocation. `cargo nextest run --workspace` builds every package with its
//! dev-dependencies (tokio's `test-util`, ...); a `-p s3-writer` build resolves fewer features for tokio,
//! hyper and tower and so recompiles the whole AWS SDK stack a second time (80 s here, per run in CI).
//! With the same selection as the test build every dependency is already fresh and the call costs a cargo
//! no-op (under half a second) after `scripts/test`'s build.

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
    let mut command = Command::new(&cargo);
    command.current_dir(&root).args(["build", "--quiet", "--workspace", "--bins", "--tests", "--message-format=json-render-diagnostics"]);
    // The test runner gives this process the variables cargo sets for running a test (CARGO_MANIFEST_DIR,
    // CARGO_PKG_*, ...). Passed on, they look like a changed environment to build scripts that watch them
    // (ring's watches CARGO_MANIFEST_DIR), and the "no-op" build recompiles ring and the whole TLS and AWS
    // stack above it: a minute per test run, during which the test's own connections went stale.
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_by_cargo_for_a_test) {
            command.env_remove(&name);
        }
    }
    let output = command.output().map_err(|e| format!("cannot run `{cargo} build` in {}: {e}", root.display()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "`cargo build --workspace --bins --tests` (for bin {bin} of {package}) failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let executable = executable_from_messages(&stdout, package, bin).ok_or_else(|| {
        format!("`cargo build --workspace --bins --tests` named no executable for bin {bin} of package {package}: is it a [[bin]] of that package?")
    })?;
    private_copy(&executable, &root)
}

/// A copy of the executable only this checkout uses. Cargo puts a workspace's binaries at the same
/// path (`target/debug/NAME`) whichever checkout built them, so two checkouts sharing one
/// `CARGO_TARGET_DIR` (git worktrees) overwrite each other's, and a test could run another
/// checkout's binary. The copy is made right after the build, under a folder named after the
/// workspace root, and put in place by a rename, so a running test never sees half a file.
fn private_copy(executable: &Path, root: &Path) -> Result<PathBuf, String> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    root.hash(&mut hasher);
    let dir = executable.parent().unwrap_or(Path::new(".")).join("by-checkout").join(format!("{:016x}", hasher.finish()));
    let name = executable.file_name().ok_or_else(|| format!("{} has no file name", executable.display()))?;
    let target = dir.join(name);
    let partial = dir.join(format!(".{}.{}", name.to_string_lossy(), std::process::id()));
    std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::copy(executable, &partial))
        .and_then(|_| std::fs::rename(&partial, &target))
        .map_err(|e| format!("cannot copy {} to {}: {e}", executable.display(), target.display()))?;
    Ok(target)
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
    fn a_build_from_a_test_drops_what_cargo_set_for_the_test_and_keeps_the_users_cargo_settings() {
        for dropped in ["CARGO_MANIFEST_DIR", "CARGO_PKG_NAME", "CARGO_BIN_EXE_auditstream", "CARGO_CRATE_NAME", "OUT_DIR"] {
            assert!(is_set_by_cargo_for_a_test(dropped), "{dropped}");
        }
        for kept in ["CARGO_HOME", "CARGO_TARGET_DIR", "CARGO_BUILD_JOBS", "CARGO_PROFILE_DEV_DEBUG", "CARGO", "PATH"] {
            assert!(!is_set_by_cargo_for_a_test(kept), "{kept}");
        }
    }
}
