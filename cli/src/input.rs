//! Messages from local files, for the command-line tool: the same messages a queue would carry.
//!
//! An INPUT is a file holding one JSON event, an NDJSON file (one event per line), an SQS Lambda
//! event (`{"Records":[...]}`, as in `events/`), or a directory of these (read recursively, in
//! name order, skipping hidden files). Each message is named so that errors can point at it:
//! `FILE` for a single event, `FILE:LINE` for NDJSON, the record's `messageId` for SQS events
//! (`FILE#INDEX` for a record without one).
//!
//! The rules, each refusal reported as a problem naming the file, line or record:
//! - Memory stays bounded whatever the input: nothing larger than [`BatchShape::max_input_bytes`]
//!   (the event limit, or Lambda's 6 MB invocation payload if larger, plus [`INPUT_MARGIN_BYTES`])
//!   is ever held. A file up to that size is read whole and its format detected (a single event
//!   may be pretty-printed over many lines); a larger one is NDJSON, read line by line, and a line
//!   over that size is refused without being read whole. A larger file whose first line is not a
//!   JSON value is not NDJSON but one document over the limit, and is refused as such.
//! - Files that are not regular (a pipe, `/dev/stdin`) are read the same way, as far as they go:
//!   one that never ends a line (`/dev/zero`) is refused at its first line, and nothing more is read
//!   from it (a regular file goes on after an over-long line, at the next line).
//! - A UTF-8 byte order mark at the start of a file or of a line is skipped (editors on Windows
//!   write one; it is not JSON).
//! - In an SQS event, a record that is not an object or whose `body` is missing or not a string
//!   fails alone; the other records are delivered.
//! - A directory walk follows symbolic links but reads each file (and each directory) once, by
//!   identity (device and inode), and reports a link that leads back to a directory it is in (a
//!   loop) instead of walking it again.

use std::collections::HashSet;
use std::fs::{File, Metadata};
use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use auditstream::delivery::process::InboundMessage;
use auditstream::pipeline::DEFAULT_MAX_EVENT_BYTES;

/// Room above the event limit for what surrounds an event in a file (pretty-printing, an SQS
/// record's envelope).
pub const INPUT_MARGIN_BYTES: u64 = 1024 * 1024;

/// The largest payload Lambda passes to a function (6 MB), and so the largest SQS event file as
/// Lambda sends one ("Invocation payload", <https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html>).
pub const LAMBDA_PAYLOAD_BYTES: u64 = 6 * 1024 * 1024;

/// The largest file read whole, and the longest line, for an event limit of `max_event_bytes`.
pub fn max_input_bytes(max_event_bytes: usize) -> u64 {
    (max_event_bytes as u64).max(LAMBDA_PAYLOAD_BYTES) + INPUT_MARGIN_BYTES
}

const BOM: char = '\u{feff}';

/// [`max_input_bytes`] in words, for messages.
const LIMIT_RULE: &str = "AUDITSTREAM_MAX_EVENT_BYTES, or 6 MiB if larger, plus 1 MiB";

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
    /// The largest file read whole and the longest line read: see [`max_input_bytes`].
    pub max_input_bytes: u64,
}

impl BatchShape {
    /// The default shape, for an event limit of `max_event_bytes` (`AUDITSTREAM_MAX_EVENT_BYTES`).
    pub fn for_max_event_bytes(max_event_bytes: usize) -> Self {
        BatchShape { max_input_bytes: max_input_bytes(max_event_bytes), ..BatchShape::default() }
    }
}

impl Default for BatchShape {
    fn default() -> Self {
        BatchShape { max_messages: 256, max_bytes: 16 * 1024 * 1024, max_input_bytes: max_input_bytes(DEFAULT_MAX_EVENT_BYTES) }
    }
}

/// What makes two paths the same file: the device and inode (the canonical path elsewhere).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum FileId {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg_attr(unix, allow(dead_code))]
    Path(PathBuf),
}

fn file_id(path: &Path, meta: &Metadata) -> FileId {
    #[cfg(unix)]
    {
        let _ = path;
        use std::os::unix::fs::MetadataExt;
        FileId::Inode(meta.dev(), meta.ino())
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        FileId::Path(std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()))
    }
}

/// Expands INPUT paths into the files to read, in order, each once; a path that does not exist
/// and a symbolic link loop are problems.
pub fn expand_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<InputProblem>) {
    let mut walk = Walk::default();
    for input in inputs {
        match std::fs::metadata(input) {
            Ok(m) => walk.visit(input, &m, &mut Vec::new()),
            Err(e) => walk.problem(input, format!("cannot read input: {e}")),
        }
    }
    (walk.files, walk.problems)
}

#[derive(Default)]
struct Walk {
    files: Vec<PathBuf>,
    problems: Vec<InputProblem>,
    /// Every file and directory met so far.
    seen: HashSet<FileId>,
}

impl Walk {
    fn problem(&mut self, path: &Path, message: String) {
        self.problems.push(InputProblem { id: path.display().to_string(), message });
    }

    /// A file is listed and a directory walked, the first time only; `ancestors` are the
    /// directories being walked, to tell a loop from a second path to the same place.
    fn visit(&mut self, path: &Path, meta: &Metadata, ancestors: &mut Vec<(FileId, PathBuf)>) {
        let id = file_id(path, meta);
        if meta.is_dir() {
            if let Some((_, ancestor)) = ancestors.iter().find(|(a, _)| *a == id) {
                let message = format!("symbolic link loop: leads back to {}, which is not walked again", ancestor.display());
                self.problem(path, message);
                return;
            }
            if self.seen.insert(id.clone()) {
                ancestors.push((id, path.to_path_buf()));
                self.walk(path, ancestors);
                ancestors.pop();
            }
        } else if self.seen.insert(id) {
            self.files.push(path.to_path_buf());
        }
    }

    fn walk(&mut self, dir: &Path, ancestors: &mut Vec<(FileId, PathBuf)>) {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd.filter_map(Result::ok).map(|e| e.path()).collect(),
            Err(e) => return self.problem(dir, format!("cannot list directory: {e}")),
        };
        entries.sort();
        for path in entries {
            if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            match std::fs::metadata(&path) {
                Ok(m) => self.visit(&path, &m, ancestors),
                Err(e) => self.problem(&path, format!("cannot read: {e}")),
            }
        }
    }
}

/// A file read line by line as NDJSON.
struct LineStream {
    reader: BufReader<Box<dyn Read + Send>>,
    name: String,
    /// The number of the next line.
    line_no: usize,
    /// A regular file ends, so an over-long line can be skipped; a pipe or device may not.
    regular: bool,
    /// Whether a line has been seen yet (the first says whether the file is NDJSON at all).
    started: bool,
}

/// Reads files into batches of messages.
pub struct InputBatches {
    files: std::vec::IntoIter<PathBuf>,
    shape: BatchShape,
    /// Messages read but not yet handed out (from a whole file).
    pending: std::collections::VecDeque<InboundMessage>,
    pending_problems: Vec<InputProblem>,
    /// The NDJSON file being streamed.
    stream: Option<LineStream>,
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
        let limit = self.shape.max_input_bytes;
        let regular = file.metadata().is_ok_and(|m| m.is_file());
        if regular && file.metadata().is_ok_and(|m| m.len() > limit) {
            self.stream = Some(LineStream { reader: BufReader::with_capacity(1 << 20, Box::new(file)), name, line_no: 1, regular, started: false });
            return true;
        }
        // Read whole, but never more than the limit: a file that grew, or a pipe or device that
        // does not end, is streamed on from what was read.
        let mut bytes = Vec::new();
        if let Err(e) = (&file).take(limit + 1).read_to_end(&mut bytes) {
            self.pending_problems.push(problem(format!("cannot read: {e}")));
            return true;
        }
        if bytes.len() as u64 > limit {
            let reader: Box<dyn Read + Send> = Box::new(Cursor::new(bytes).chain(file));
            self.stream = Some(LineStream { reader: BufReader::with_capacity(1 << 20, reader), name, line_no: 1, regular, started: false });
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
                        Ok(l) if without_bom(l).trim().is_empty() => {}
                        Ok(l) => self.pending.push_back(InboundMessage::new(id, without_bom(l).trim_end_matches('\r'))),
                        Err(_) => self.pending_problems.push(InputProblem { id, message: "line is not valid UTF-8 text".into() }),
                    }
                }
            }
        }
        true
    }

    /// Reads the next NDJSON line of the streamed file into `pending` (or a problem); false at its end.
    fn stream_line(&mut self) -> bool {
        let limit = self.shape.max_input_bytes;
        let Some(stream) = &mut self.stream else { return false };
        loop {
            let mut line = Vec::new();
            let id = format!("{}:{}", stream.name, stream.line_no);
            let read = next_line(&mut stream.reader, limit + 1, &mut line);
            let n = match read {
                Ok(0) => {
                    self.stream = None;
                    return false;
                }
                Ok(n) => n,
                Err(e) => {
                    self.pending_problems.push(InputProblem { id, message: format!("cannot read: {e}") });
                    self.stream = None;
                    return false;
                }
            };
            self.bytes_read += n as u64;
            stream.line_no += 1;
            if n as u64 > limit && line.last() != Some(&b'\n') {
                // Refused without reading it whole. A regular file goes on at the next line; a pipe
                // or a device may never end a line (`/dev/zero`), so nothing more is read from it.
                stream.started = true;
                let mut message = format!("line is over {limit} bytes, the most read as one event ({LIMIT_RULE}): refused");
                if !stream.regular {
                    message.push_str(&format!("; the rest of {} is not read (not a regular file, it may never end)", stream.name));
                    self.pending_problems.push(InputProblem { id, message });
                    self.stream = None;
                    return false;
                }
                self.pending_problems.push(InputProblem { id, message });
                match skip_line(&mut stream.reader) {
                    Ok(skipped) => self.bytes_read += skipped,
                    Err(e) => {
                        self.pending_problems.push(InputProblem { id: stream.name.clone(), message: format!("cannot read: {e}") });
                        self.stream = None;
                    }
                }
                return true;
            }
            let mut body = match String::from_utf8(line) {
                Ok(body) => body,
                Err(_) => {
                    stream.started = true;
                    self.pending_problems.push(InputProblem { id, message: "line is not valid UTF-8 text".into() });
                    return true;
                }
            };
            let start = body.len() - without_bom(&body).len();
            let text = &body[start..];
            if text.trim().is_empty() {
                continue;
            }
            let text = text.trim_end_matches(['\n', '\r']);
            if !stream.started {
                stream.started = true;
                // A file too large to read whole is NDJSON; one whose first line is not a JSON value
                // is a single document (pretty-printed) over the limit, not thousands of bad lines.
                if serde_json::from_str::<serde::de::IgnoredAny>(text).is_err() {
                    let message = format!(
                        "{} is over {limit} bytes, the most read as one document ({LIMIT_RULE}), and is not NDJSON (its first line is not a JSON value): refused",
                        stream.name
                    );
                    self.pending_problems.push(InputProblem { id: stream.name.clone(), message });
                    self.stream = None;
                    return false;
                }
            }
            // The line's own buffer becomes the message: the BOM and the line ending cut off in place.
            body.truncate(start + text.len());
            body.drain(..start);
            self.pending.push_back(InboundMessage::new(id, body));
            return true;
        }
    }
}

/// Reads the next line, its `\n` included, into `out` (empty), taking at most `max` bytes: what
/// `take(max).read_until(b'\n', out)` reads. A line that lies whole in the reader's buffer (almost
/// every line: the buffer is 1 MiB) is copied once, into a buffer of its exact size, which then
/// becomes the message's body; the rest take the general way.
fn next_line(reader: &mut impl BufRead, max: u64, out: &mut Vec<u8>) -> std::io::Result<usize> {
    if let Ok(buffered) = reader.fill_buf() {
        if let Some(end) = memchr::memchr(b'\n', buffered).map(|i| i + 1).filter(|n| *n as u64 <= max) {
            out.reserve_exact(end);
            out.extend_from_slice(&buffered[..end]);
            reader.consume(end);
            return Ok(end);
        }
    }
    // A failed `fill_buf` is met again (or retried, if interrupted) by `read_until`.
    reader.take(max).read_until(b'\n', out)
}

/// Reads past the rest of a line without keeping it; returns the bytes skipped.
fn skip_line(reader: &mut impl BufRead) -> std::io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        let (used, done) = match buf.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (buf.len(), false),
        };
        reader.consume(used);
        skipped += used as u64;
        if done {
            return Ok(skipped);
        }
    }
}

fn without_bom(text: &str) -> &str {
    text.strip_prefix(BOM).unwrap_or(text)
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

/// The one field that makes a JSON object an SQS event; records are looked at one by one.
#[derive(Deserialize)]
struct SqsEventProbe {
    #[serde(rename = "Records")]
    records: Option<Vec<Value>>,
}

/// Splits one whole file into messages: an SQS event, a single event, or NDJSON.
pub fn parse_document(name: &str, mut text: String) -> (Vec<InboundMessage>, Vec<InputProblem>) {
    if text.starts_with(BOM) {
        text.drain(..BOM.len_utf8());
    }
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
            for (i, record) in records.into_iter().enumerate() {
                match sqs_record(name, i, record) {
                    Ok(m) => messages.push(m),
                    Err(p) => problems.push(p),
                }
            }
            return (messages, problems);
        }
        return (vec![InboundMessage::new(name, text)], Vec::new());
    }
    let messages = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i, without_bom(l)))
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| InboundMessage::new(format!("{name}:{}", i + 1), l))
        .collect();
    (messages, Vec::new())
}

/// One record of an SQS event: its body as the message, named by its `messageId` (or `FILE#INDEX`);
/// a record that cannot carry an event is a problem of its own.
fn sqs_record(name: &str, index: usize, record: Value) -> Result<InboundMessage, InputProblem> {
    let Value::Object(mut record) = record else {
        return Err(InputProblem { id: format!("{name}#{index}"), message: format!("SQS record {index} in {name} is not a JSON object") });
    };
    let id = match record.get("messageId") {
        Some(Value::String(id)) if !id.is_empty() => id.clone(),
        _ => format!("{name}#{index}"),
    };
    let sent_at_ms = record.get("attributes").and_then(|a| a.get("SentTimestamp")).and_then(Value::as_str).and_then(|t| t.parse().ok());
    match record.remove("body") {
        Some(Value::String(body)) => Ok(InboundMessage { id, body, sent_at_ms }),
        None | Some(Value::Null) => Err(InputProblem { id, message: format!("SQS record {index} in {name} has no body") }),
        Some(_) => {
            Err(InputProblem { id, message: format!("SQS record {index} in {name} has a body that is not a string (SQS carries the event as JSON text)") })
        }
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    fn ids(messages: &[InboundMessage]) -> Vec<&str> {
        messages.iter().map(|m| m.id.as_str()).collect()
    }

    #[test]
    fn a_line_is_read_the_same_whether_it_lies_in_the_buffer_or_across_its_end() {
        // A 4-byte buffer: "ab\n" lies in it, "cdefgh\n" crosses its end, "ij" has no line end.
        let mut reader = BufReader::with_capacity(4, Cursor::new(b"ab\ncdefgh\nij".to_vec()));
        let mut lines = Vec::new();
        loop {
            let mut line = Vec::new();
            match next_line(&mut reader, 100, &mut line).unwrap() {
                0 => break,
                n => assert_eq!(n, line.len()),
            }
            lines.push(String::from_utf8(line).unwrap());
        }
        assert_eq!(lines, ["ab\n", "cdefgh\n", "ij"]);
        // At most `max` bytes, as `take(max).read_until` reads: a line end beyond it is not reached.
        let mut reader = BufReader::with_capacity(64, Cursor::new(b"abcdef\ngh\n".to_vec()));
        let (mut line, mut exact) = (Vec::new(), Vec::new());
        assert_eq!(next_line(&mut reader, 3, &mut line).unwrap(), 3);
        assert_eq!(line, b"abc");
        assert_eq!(next_line(&mut reader, 4, &mut exact).unwrap(), 4, "a line of exactly `max` bytes, its end included");
        assert_eq!(exact, b"def\n");
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
        let batches: Vec<InputBatch> = InputBatches::new(files.clone(), BatchShape { max_messages: 2, max_bytes: 1 << 20, max_input_bytes: 1 << 20 }).collect();
        let sizes: Vec<usize> = batches.iter().map(|b| b.messages.len()).collect();
        assert_eq!(sizes, [2, 2]);
        assert_eq!(batches.iter().map(|b| b.bytes_read).sum::<u64>(), 24 + 7);
        // streamed: the same messages, the same names
        let streamed: Vec<InputBatch> = InputBatches::new(files, BatchShape { max_messages: 3, max_bytes: 1 << 20, max_input_bytes: 10 }).collect();
        let all: Vec<String> = streamed.iter().flat_map(|b| b.messages.iter().map(|m| format!("{}={}", m.id, m.body))).collect();
        let a = dir.join("a.ndjson").display().to_string();
        assert_eq!(
            all,
            [
                format!("{a}:1={{\"n\":1}}"),
                format!("{a}:2={{\"n\":2}}"),
                format!("{a}:3={{\"n\":3}}"),
                format!("{}={{\"n\":4}}", dir.join("sub/b.json").display())
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn temp_dir(what: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("auditstream-{what}-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn read_all(files: Vec<PathBuf>, max_input_bytes: u64) -> (Vec<String>, Vec<InputProblem>) {
        let batches = InputBatches::new(files, BatchShape { max_messages: 2, max_bytes: 1 << 20, max_input_bytes });
        let (mut messages, mut problems) = (Vec::new(), Vec::new());
        for b in batches {
            messages.extend(b.messages.into_iter().map(|m| format!("{}={}", m.id, m.body)));
            problems.extend(b.problems);
        }
        (messages, problems)
    }

    #[test]
    fn a_byte_order_mark_is_skipped_at_the_start_of_a_file_or_a_line() {
        let (m, p) = parse_document("bom.json", "\u{feff}{\"id\":\"j-1\"}\n".into());
        assert_eq!((m[0].body.as_str(), p.len()), ("{\"id\":\"j-1\"}\n", 0));
        let (m, _) = parse_document("bom.ndjson", "\u{feff}{\"a\":1}\n\u{feff}{\"a\":2}\n".into());
        assert_eq!(m.iter().map(|m| m.body.as_str()).collect::<Vec<_>>(), ["{\"a\":1}", "{\"a\":2}"]);
        let (m, _) = parse_document("bom-sqs.json", "\u{feff}{\"Records\":[{\"messageId\":\"m-1\",\"body\":\"{}\"}]}".into());
        assert_eq!(ids(&m), ["m-1"]);
        // and when the file is streamed
        let dir = temp_dir("bom");
        let file = dir.join("big.ndjson");
        std::fs::write(&file, "\u{feff}{\"a\":1}\n\u{feff}{\"a\":2}\n").unwrap();
        let (messages, problems) = read_all(vec![file.clone()], 12);
        let f = file.display();
        assert_eq!((messages, problems), (vec![format!("{f}:1={{\"a\":1}}"), format!("{f}:2={{\"a\":2}}")], vec![]));
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn one_bad_sqs_record_fails_alone_and_the_others_are_delivered() {
        let sqs = r#"{"Records":[
            {"messageId":"m-ok","body":"{\"a\":1}","attributes":{"SentTimestamp":"1700000000000"}},
            {"messageId":"m-object","body":{"a":2}},
            "not a record",
            {"messageId":7,"body":3},
            {"messageId":"m-null","body":null},
            {"messageId":"m-odd-attributes","body":"{\"a\":6}","attributes":{"SentTimestamp":1700000000000}}
        ]}"#;
        let (m, p) = parse_document("sqs.json", sqs.into());
        assert_eq!(ids(&m), ["m-ok", "m-odd-attributes"]);
        assert_eq!((m[0].sent_at_ms, m[1].sent_at_ms), (Some(1_700_000_000_000), None));
        let problems: Vec<(&str, &str)> = p.iter().map(|p| (p.id.as_str(), p.message.as_str())).collect();
        assert_eq!(
            problems,
            [
                ("m-object", "SQS record 1 in sqs.json has a body that is not a string (SQS carries the event as JSON text)"),
                ("sqs.json#2", "SQS record 2 in sqs.json is not a JSON object"),
                ("sqs.json#3", "SQS record 3 in sqs.json has a body that is not a string (SQS carries the event as JSON text)"),
                ("m-null", "SQS record 4 in sqs.json has no body"),
            ]
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_walk_reads_each_file_once_and_reports_symlink_loops() {
        use std::os::unix::fs::symlink;
        let dir = temp_dir("walk");
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join("a.json"), "{}").unwrap();
        std::fs::write(dir.join("sub/b.json"), "{}").unwrap();
        // two links to the directory itself: walked naively, paths double at every level
        symlink(".", dir.join("self-1")).unwrap();
        symlink(".", dir.join("self-2")).unwrap();
        symlink("..", dir.join("sub/up")).unwrap();
        // a second path to a file and to a directory already read
        symlink("a.json", dir.join("same.json")).unwrap();
        symlink("sub", dir.join("sub-again")).unwrap();
        // a link to itself cannot be read at all
        symlink("knot", dir.join("knot")).unwrap();

        let (files, problems) = expand_inputs(&[dir.clone(), dir.join("a.json")]);

        assert_eq!(files, [dir.join("a.json"), dir.join("sub/b.json")]);
        let problems: Vec<(String, &str)> = problems.iter().map(|p| (p.id.replace(&dir.display().to_string(), "D"), p.message.as_str())).collect();
        let loop_to = format!("symbolic link loop: leads back to {}, which is not walked again", dir.display());
        assert_eq!(problems.len(), 4, "{problems:?}");
        assert!(problems[0].0 == "D/knot" && problems[0].1.starts_with("cannot read: "), "{problems:?}");
        assert_eq!(
            problems[1..].iter().map(|(id, m)| (id.as_str(), *m)).collect::<Vec<_>>(),
            [("D/self-1", loop_to.as_str()), ("D/self-2", loop_to.as_str()), ("D/sub/up", loop_to.as_str())]
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_line_or_file_over_the_limit_is_refused_without_being_read_whole() {
        let dir = temp_dir("limit");
        let ndjson = dir.join("events.ndjson");
        std::fs::write(&ndjson, format!("{{\"n\":1}}\n{{\"blob\":\"{}\"}}\n{{\"n\":3}}\n", "x".repeat(100))).unwrap();
        let pretty = dir.join("pretty.json");
        std::fs::write(&pretty, format!("{{\n  \"blob\": \"{}\"\n}}\n", "x".repeat(100))).unwrap();
        let (messages, problems) = read_all(vec![ndjson.clone(), pretty.clone()], 50);
        let (n, p) = (ndjson.display(), pretty.display());
        assert_eq!(messages, [format!("{n}:1={{\"n\":1}}"), format!("{n}:3={{\"n\":3}}")]);
        let problems: Vec<(String, String)> = problems.into_iter().map(|p| (p.id, p.message)).collect();
        assert_eq!(
            problems,
            [
                (format!("{n}:2"), "line is over 50 bytes, the most read as one event (AUDITSTREAM_MAX_EVENT_BYTES, or 6 MiB if larger, plus 1 MiB): refused".to_owned()),
                (format!("{p}"), format!("{p} is over 50 bytes, the most read as one document (AUDITSTREAM_MAX_EVENT_BYTES, or 6 MiB if larger, plus 1 MiB), and is not NDJSON (its first line is not a JSON value): refused")),
            ]
        );
        std::fs::remove_dir_all(dir).unwrap();
        // the bound follows the event limit, with room for an SQS event as Lambda sends it
        assert_eq!(BatchShape::default().max_input_bytes, 40 * 1024 * 1024 + 1024 * 1024);
        assert_eq!(BatchShape::for_max_event_bytes(1024).max_input_bytes, 7 * 1024 * 1024);
    }

    #[cfg(unix)]
    #[test]
    fn a_device_that_never_ends_a_line_is_refused_at_its_first_line() {
        let (messages, problems) = read_all(vec![PathBuf::from("/dev/zero")], 1 << 20);
        assert!(messages.is_empty());
        assert_eq!(
            problems,
            [InputProblem {
                id: "/dev/zero:1".into(),
                message: "line is over 1048576 bytes, the most read as one event (AUDITSTREAM_MAX_EVENT_BYTES, or 6 MiB if larger, plus 1 MiB): refused; the rest of /dev/zero is not read (not a regular file, it may never end)".into()
            }]
        );
    }
}
