//! Messages from local files, for the command-line tool: the same messages a queue would carry.
//!
//! An INPUT is a file holding one JSON event, an NDJSON file (one event per line), an SQS Lambda
//! event (`{"Records":[...]}`, as in `events/`), or a directory of these (read recursively, in
//! name order, skipping hidden files). Each message is named so that errors can point at it:
//! `FILE` for a single event, `FILE:LINE` for NDJSON, the record's `messageId` for SQS events.
//!
//! Reading is streamed in batches, so memory stays bounded whatever the input size: files up to
//! [`WHOLE_FILE_LIMIT`] are read whole (a single event may be pretty-printed over many lines);
//! larger ones are read line by line as NDJSON.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::batch::InboundMessage;

/// Files up to this size are read whole and their format detected; larger ones are NDJSON.
pub const WHOLE_FILE_LIMIT: u64 = 64 * 1024 * 1024;

/// A message that could not even be read (unreadable file, a line that is not UTF-8…).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InputProblem {
    pub id: String,
    pub message: String,
}

/// A batch of messages, and the problems met while reading them.
#[derive(Debug, Default)]
pub struct InputBatch {
    pub messages: Vec<InboundMessage>,
    pub problems: Vec<InputProblem>,
    /// Bytes of input consumed, for progress reporting.
    pub bytes_read: u64,
}

/// How large batches are.
#[derive(Debug, Clone, Copy)]
pub struct BatchShape {
    pub max_messages: usize,
    pub max_bytes: usize,
    /// Files larger than this are streamed as NDJSON ([`WHOLE_FILE_LIMIT`] by default).
    pub whole_file_limit: u64,
}

impl Default for BatchShape {
    fn default() -> Self {
        BatchShape { max_messages: 256, max_bytes: 16 * 1024 * 1024, whole_file_limit: WHOLE_FILE_LIMIT }
    }
}

/// Expands INPUT paths into the files to read, in order; a path that does not exist is a problem.
pub fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<InputProblem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(m) if m.is_dir() => walk(input, &mut files, &mut problems),
            Ok(_) => files.push(input.clone()),
            Err(e) => problems.push(InputProblem { id: input.display().to_string(), message: format!("cannot read input: {e}") }),
        }
    }
    (files, problems)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<InputProblem>) {
    let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
        Err(e) => {
            problems.push(InputProblem { id: dir.display().to_string(), message: format!("cannot list directory: {e}") });
            return;
        }
    };
    entries.sort();
    for path in entries {
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            walk(&path, files, problems);
        } else {
            files.push(path);
        }
    }
}

/// Reads files into batches of messages.
pub struct InputBatches {
    files: std::vec::IntoIter<PathBuf>,
    shape: BatchShape,
    /// Messages read but not yet handed out (from a whole file).
    pending: std::collections::VecDeque<InboundMessage>,
    pending_problems: Vec<InputProblem>,
    /// The NDJSON file being streamed, with its name and the next line number.
    stream: Option<(BufReader<File>, String, usize)>,
    bytes_read: u64,
}

impl InputBatches {
    pub fn new(files: Vec<PathBuf>, shape: BatchShape) -> Self {
        InputBatches { files: files.into_iter(), shape, pending: Default::default(), pending_problems: Vec::new(), stream: None, bytes_read: 0 }
    }

    /// Loads the next file: whole, or opens it for streaming.
    fn open_next(&mut self) -> bool {
        let Some(path) = self.files.next() else { return false };
        let name = path.display().to_string();
        let problem = |message: String| InputProblem { id: name.clone(), message };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) => {
                self.pending_problems.push(problem(format!("cannot open: {e}")));
                return true;
            }
        };
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        if size > self.shape.whole_file_limit {
            self.stream = Some((BufReader::with_capacity(1 << 20, file), name, 1));
            return true;
        }
        let mut bytes = Vec::with_capacity(size as usize);
        if let Err(e) = BufReader::new(file).read_to_end(&mut bytes) {
            self.pending_problems.push(problem(format!("cannot read: {e}")));
            return true;
        }
        self.bytes_read += bytes.len() as u64;
        match String::from_utf8(bytes) {
            Ok(text) => {
                let (messages, problems) = parse_document(&name, text);
                self.pending.extend(messages);
                self.pending_problems.extend(problems);
            }
            Err(e) => {
                // Not UTF-8 as a whole: try line by line, so one bad line fails alone.
                let bytes = e.into_bytes();
                for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
                    let id = format!("{name}:{}", i + 1);
                    match std::str::from_utf8(line) {
                        Ok(l) if l.trim().is_empty() => {}
                        Ok(l) => self.pending.push_back(InboundMessage::new(id, l.trim_end_matches('\r'))),
                        Err(_) => self.pending_problems.push(InputProblem { id, message: "line is not valid UTF-8 text".into() }),
                    }
                }
            }
        }
        true
    }

    /// Reads the next NDJSON line of the streamed file into `pending`; false at its end.
    fn stream_line(&mut self) -> bool {
        let Some((reader, name, line_no)) = &mut self.stream else { return false };
        let mut line = Vec::new();
        loop {
            line.clear();
            match reader.read_until(b'\n', &mut line) {
                Ok(0) => {
                    self.stream = None;
                    return false;
                }
                Ok(n) => {
                    self.bytes_read += n as u64;
                    let id = format!("{name}:{line_no}");
                    *line_no += 1;
                    match std::str::from_utf8(&line) {
                        Ok(l) if l.trim().is_empty() => continue,
                        Ok(l) => self.pending.push_back(InboundMessage::new(id, l.trim_end_matches(['\n', '\r']))),
                        Err(_) => self.pending_problems.push(InputProblem { id, message: "line is not valid UTF-8 text".into() }),
                    }
                    return true;
                }
                Err(e) => {
                    self.pending_problems.push(InputProblem { id: format!("{name}:{line_no}"), message: format!("cannot read: {e}") });
                    self.stream = None;
                    return false;
                }
            }
        }
    }
}

impl Iterator for InputBatches {
    type Item = InputBatch;

    fn next(&mut self) -> Option<InputBatch> {
        let mut batch = InputBatch::default();
        let mut bytes = 0usize;
        loop {
            while batch.messages.len() < self.shape.max_messages && bytes < self.shape.max_bytes {
                match self.pending.pop_front() {
                    Some(m) => {
                        bytes += m.body.len();
                        batch.messages.push(m);
                    }
                    None => break,
                }
            }
            batch.problems.append(&mut self.pending_problems);
            if batch.messages.len() >= self.shape.max_messages || bytes >= self.shape.max_bytes {
                break;
            }
            if self.stream.is_some() {
                self.stream_line();
                continue;
            }
            if !self.open_next() {
                break;
            }
        }
        batch.bytes_read = std::mem::take(&mut self.bytes_read);
        (!batch.messages.is_empty() || !batch.problems.is_empty()).then_some(batch)
    }
}

#[derive(Deserialize)]
struct SqsEventProbe {
    #[serde(rename = "Records")]
    records: Option<Vec<SqsRecordProbe>>,
}

#[derive(Deserialize)]
struct SqsRecordProbe {
    #[serde(rename = "messageId")]
    message_id: Option<String>,
    body: Option<String>,
    #[serde(default)]
    attributes: std::collections::HashMap<String, String>,
}

/// Splits one whole file into messages: an SQS event, a single event, or NDJSON.
pub fn parse_document(name: &str, text: String) -> (Vec<InboundMessage>, Vec<InputProblem>) {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return (Vec::new(), vec![InputProblem { id: name.to_owned(), message: "file is empty".into() }]);
    }
    // One JSON document? Only objects are looked at more closely; everything else is left to the
    // pipeline, which gives the precise error.
    if trimmed.starts_with('{') && serde_json::from_str::<serde::de::IgnoredAny>(trimmed).is_ok() {
        if let Ok(SqsEventProbe { records: Some(records) }) = serde_json::from_str::<SqsEventProbe>(trimmed) {
            let mut messages = Vec::new();
            let mut problems = Vec::new();
            for (i, r) in records.into_iter().enumerate() {
                let id = r.message_id.filter(|id| !id.is_empty()).unwrap_or_else(|| format!("{name}#{i}"));
                match r.body {
                    Some(body) => {
                        let sent_at_ms = r.attributes.get("SentTimestamp").and_then(|t| t.parse().ok());
                        messages.push(InboundMessage { id, body, sent_at_ms });
                    }
                    None => problems.push(InputProblem { id, message: format!("SQS record {i} in {name} has no body") }),
                }
            }
            return (messages, problems);
        }
        return (vec![InboundMessage::new(name, text)], Vec::new());
    }
    let messages = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| InboundMessage::new(format!("{name}:{}", i + 1), l))
        .collect();
    (messages, Vec::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(messages: &[InboundMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn detects_the_three_formats() {
        let (m, p) = parse_document("one.json", "{\n  \"id\": \"j-1\"\n}\n".into());
        assert_eq!((ids(&m), p.len()), (vec!["one.json"], 0));
        let (m, _) = parse_document("many.ndjson", "{\"a\":1}\n\n{\"a\":2}\nnot json\n".into());
        assert_eq!(ids(&m), ["many.ndjson:1", "many.ndjson:3", "many.ndjson:4"]);
        let sqs = r#"{"Records":[{"messageId":"m-1","body":"{}","attributes":{"SentTimestamp":"1700000000000"}},{"body":"x"},{"messageId":"m-3"}]}"#;
        let (m, p) = parse_document("sqs.json", sqs.into());
        assert_eq!(ids(&m), ["m-1", "sqs.json#1"]);
        assert_eq!(m[0].sent_at_ms, Some(1_700_000_000_000));
        assert_eq!(p, vec![InputProblem { id: "m-3".into(), message: "SQS record 2 in sqs.json has no body".into() }]);
        let (m, p) = parse_document("empty.json", " \n".into());
        assert!(m.is_empty() && p.len() == 1);
    }

    #[test]
    fn batches_respect_their_shape_and_stream_large_files() {
        let dir = std::env::temp_dir().join(format!("auditstream-input-{}", rand::random::<u64>()));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.ndjson"), "{\"n\":1}\n{\"n\":2}\n{\"n\":3}\n").unwrap();
        std::fs::write(dir.join("sub/b.json"), "{\"n\":4}").unwrap();
        std::fs::write(dir.join(".hidden"), "{}").unwrap();
        let (files, problems) = expand_inputs(&[dir.clone(), dir.join("missing")]);
        assert_eq!(files.len(), 2);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].message.starts_with("cannot read input"), "{problems:?}");
        let batches: Vec<InputBatch> = InputBatches::new(files.clone(), BatchShape { max_messages: 2, max_bytes: 1 << 20, whole_file_limit: WHOLE_FILE_LIMIT }).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.messages.len()).collect();
        assert_eq!(sizes, [2, 2]);
        assert_eq!(batches.iter().map(|b| b.bytes_read).sum::<u64>(), 24 + 7);
        // streamed: the same messages, the same names
        let streamed: Vec<InputBatch> = InputBatches::new(files, BatchShape { max_messages: 3, max_bytes: 1 << 20, whole_file_limit: 10 }).collect();
        let all: Vec<String> = streamed.iter().flat_map(|b| b.messages.iter().map(|m| format!("{}={}", m.id, m.body))).collect();
        let a = dir.join("a.ndjson").display().to_string();
        assert_eq!(all, [format!("{a}:1={{\"n\":1}}"), format!("{a}:2={{\"n\":2}}"), format!("{a}:3={{\"n\":3}}"), format!("{}={{\"n\":4}}", dir.join("sub/b.json").display())]);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
