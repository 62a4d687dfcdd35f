//! `auditstream replay --queue/--topic`: an archive replayed as Amazon SQS Extended Client pointers to
//! its own objects, for the deployed functions (or `auditstream poll`) to deliver — and nothing of
//! ours ever deletes or changes what such a pointer names (`docs/operations.md`, "Replay by pointer").
//!
//! The end-to-end tests need moto: run with `scripts/test`, or `scripts/services start` and the exports
//! it prints.

use auditstream_e2e::workspace_root;

// ---------------------------------------------------------------------------------------------------------
// Nothing of ours deletes an S3 object.
//
// A replay pointer names an archived object itself, so a consumer that deleted "its payload" after
// delivery (as AWS's Java Extended Client does by default) would destroy the archive. Our consumers —
// the functions through `intake`, and `auditstream poll` — read payloads through `PayloadStore`, which
// has no delete; no source of ours may call S3's DeleteObject or DeleteObjects at all.

/// The shapes an S3 delete takes in code calling the AWS SDK for Rust.
const S3_DELETE_CALLS: &[&str] = &[".delete_object(", ".delete_objects(", "delete_object::", "delete_objects::", "DeleteObjectInput", "DeleteObjectsInput"];

/// `file:line: text` for each line of `source` that calls an S3 delete.
fn s3_deletes(file: &str, source: &str) -> Vec<String> {
    source
        .lines()
        .enumerate()
        .filter(|(_, line)| S3_DELETE_CALLS.iter().any(|call| line.contains(call)))
        .map(|(i, line)| format!("{file}:{}: {}", i + 1, line.trim()))
        .collect()
}

fn rust_sources(dir: &std::path::Path, out: &mut Vec<(String, String)>) {
    let mut entries: Vec<_> = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())).map(|e| e.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push((path.display().to_string(), std::fs::read_to_string(&path).unwrap()));
        }
    }
}

#[test]
fn no_source_of_ours_deletes_an_s3_object() {
    let root = workspace_root();
    let mut sources = Vec::new();
    for dir in ["shared/src", "functions", "cli/src"] {
        rust_sources(&root.join(dir), &mut sources);
    }
    let files: Vec<&str> = sources.iter().map(|(f, _)| f.as_str()).collect();
    for must in ["shared/src/intake/payload_store.rs", "shared/src/intake/resolve.rs", "cli/src/poll.rs", "functions/s3-writer/src/main.rs"] {
        assert!(files.iter().any(|f| f.ends_with(must)), "{must} is not among the sources scanned: {files:?}");
    }
    let deletes: Vec<String> = sources.iter().flat_map(|(file, text)| s3_deletes(file, text)).collect();
    assert!(deletes.is_empty(), "S3 deletes in our code: a pointer's payload may be an archived object:\n{}", deletes.join("\n"));
}

#[test]
fn the_scan_finds_each_shape_of_an_s3_delete() {
    let planted = [
        "client.delete_object().bucket(b).key(k).send().await",
        "let request = s3\n    .delete_objects()",
        "use aws_sdk_s3::operation::delete_object::DeleteObjectError;",
        "let input = DeleteObjectInput::builder();",
    ];
    for code in planted {
        assert_eq!(s3_deletes("planted.rs", code).len(), 1, "{code}");
    }
    // Words in a message or a comment are not calls.
    assert!(s3_deletes("ok.rs", "// give the consumer no s3:DeleteObject on the archive\nsqs.delete_message()").is_empty());
}
