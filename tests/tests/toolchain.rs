//! The Rust version the project asks for is one that builds it: the workspace's `rust-version` is no
//! older than what any dependency locked in `Cargo.lock` declares it needs, and the README and
//! docs/deploy.md name that same version. A toolchain older than a locked dependency's
//! `rust-version` stops `cargo build` with "package … cannot be built because it requires rustc …",
//! so a prerequisite that names an older one sends users into that error.

use std::process::Command;

use auditstream_e2e::workspace_root;

/// A `rust-version` as numbers, for comparing: "1.94.1" → [1, 94, 1], "1.85" → [1, 85, 0].
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|part| part.parse().unwrap_or_else(|_| panic!("not a Rust version: {text:?}"))).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn the_declared_rust_version_builds_every_locked_dependency_and_the_docs_name_it() {
    let root = workspace_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    // The whole resolved graph, every platform's dependencies included (the functions are built for
    // arm64 Linux too), exactly as locked.
    let output = Command::new(&cargo).current_dir(&root).args(["metadata", "--format-version", "1", "--locked"]).output().expect("cargo metadata runs");
    assert!(output.status.success(), "cargo metadata failed: {}", String::from_utf8_lossy(&output.stderr));
    let metadata: serde_json::Value = serde_json::from_slice(&output.stdout).expect("cargo metadata prints JSON");
    let members: Vec<&str> = metadata["workspace_members"].as_array().unwrap().iter().filter_map(|id| id.as_str()).collect();
    let packages = metadata["packages"].as_array().unwrap();

    let declared = packages
        .iter()
        .find(|p| p["name"] == "auditstream")
        .and_then(|p| p["rust_version"].as_str())
        .expect("the auditstream crate declares a rust-version")
        .to_owned();
    for member in packages.iter().filter(|p| members.contains(&p["id"].as_str().unwrap_or(""))) {
        assert_eq!(member["rust_version"].as_str(), Some(declared.as_str()), "{} declares another rust-version than the workspace", member["name"]);
    }

    let mut newer: Vec<String> = packages
        .iter()
        .filter(|p| !members.contains(&p["id"].as_str().unwrap_or("")))
        .filter_map(|p| Some((p["name"].as_str()?, p["version"].as_str()?, p["rust_version"].as_str()?)))
        .filter(|(_, _, needs)| version(needs) > version(&declared))
        .map(|(name, v, needs)| format!("{name} {v} needs Rust {needs}"))
        .collect();
    newer.sort();
    assert!(newer.is_empty(), "the workspace declares rust-version {declared}, but locked dependencies need newer:\n{}", newer.join("\n"));

    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains(&format!("a Rust toolchain ({declared} or newer")), "README.md's prerequisites name another Rust version than {declared}");
    let deploy = std::fs::read_to_string(root.join("docs/deploy.md")).unwrap();
    assert!(deploy.contains(&format!("Rust ({declared} or later")), "docs/deploy.md names another Rust version than {declared}");
}
