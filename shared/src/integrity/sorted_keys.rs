//! Keys sorted within bounded memory: an external merge sort. Verification collects the key of
//! every object a manifest lists (as many as the archive holds) to walk them, in order, beside
//! the archive's own listing; here they are held up to [`Limits::keys_in_memory`] at a time, each
//! such run sorted and written to a temporary file (deleted when done), and the files merged,
//! [`Limits::files_merged`] at a time, so that only so many are ever open.
//!
//! It knows nothing of what the keys are: its user says how much it may hold ([`Limits`]) and what
//! it sorts, which a [`SpillError`] names.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, Write};
use std::path::PathBuf;

/// How much a [`SortedKeys`] holds in memory at once.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Keys held before they are sorted and spilled to a temporary file.
    pub keys_in_memory: usize,
    /// Sorted files merged into one at a time, so that only so many are open.
    pub files_merged: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits { keys_in_memory: 200_000, files_merged: 64 }
    }
}

/// A temporary file could not be written or read back. `dir` is where they go (`TMPDIR`); `what`
/// is what was being sorted, as the sorter's user named it.
#[derive(Debug, thiserror::Error)]
#[error("cannot sort {what} in a temporary file under {dir} (set TMPDIR to a folder with room): {source}")]
pub struct SpillError {
    pub what: &'static str,
    pub dir: String,
    pub source: std::io::Error,
}

/// Keys added in any order, to be read back sorted and each once.
pub struct SortedKeys {
    /// What the keys are, for a [`SpillError`].
    what: &'static str,
    limits: Limits,
    keys: Vec<String>,
    /// Sorted files, each with its level: a file of level `n + 1` merges `files_merged` of level `n`.
    runs: Vec<(u32, Run)>,
    /// The most keys held in memory at once, for the tests that hold it to its bound.
    pub most_held: usize,
}

impl SortedKeys {
    /// A sorter of `what` (named in its errors), holding no more than `limits` says.
    pub fn new(what: &'static str, limits: Limits) -> SortedKeys {
        SortedKeys {
            what,
            limits: Limits { keys_in_memory: limits.keys_in_memory.max(1), files_merged: limits.files_merged.max(2) },
            keys: Vec::new(),
            runs: Vec::new(),
            most_held: 0,
        }
    }

    pub fn add(&mut self, key: String) -> Result<(), SpillError> {
        self.keys.push(key);
        self.most_held = self.most_held.max(self.keys.len());
        if self.keys.len() >= self.limits.keys_in_memory {
            self.spill().map_err(|e| spill_error(self.what, e))?;
        }
        Ok(())
    }

    /// How many files the keys went to (merged ones counted once).
    pub fn files(&self) -> usize {
        self.runs.len()
    }

    /// The keys held, sorted, to a new file; then files of one level merged into one of the next
    /// while there are enough of them.
    fn spill(&mut self) -> std::io::Result<()> {
        let mut keys = std::mem::take(&mut self.keys);
        keys.sort_unstable();
        keys.dedup();
        let run = Run::write(keys.into_iter().map(Ok))?;
        self.runs.push((0, run));
        loop {
            let level = self.runs.last().map_or(0, |(level, _)| *level);
            let same = self.runs.iter().rev().take_while(|(l, _)| *l == level).count();
            if same < self.limits.files_merged {
                return Ok(());
            }
            let merged: Vec<Run> = self.runs.drain(self.runs.len() - same..).map(|(_, run)| run).collect();
            let run = Run::write(Merge::of(merged)?)?;
            self.runs.push((level + 1, run));
        }
    }

    /// The keys in order, each once.
    pub fn into_sorted(mut self) -> Result<Sorted, SpillError> {
        if self.runs.is_empty() {
            let mut keys = std::mem::take(&mut self.keys);
            keys.sort_unstable();
            keys.dedup();
            return Ok(Sorted { what: self.what, source: Source::Memory(keys.into_iter()), last: None, distinct: 0 });
        }
        let what = self.what;
        if !self.keys.is_empty() {
            self.spill().map_err(|e| spill_error(what, e))?;
        }
        let runs = std::mem::take(&mut self.runs).into_iter().map(|(_, run)| run).collect();
        let merge = Merge::of(runs).map_err(|e| spill_error(what, e))?;
        Ok(Sorted { what, source: Source::Files(merge), last: None, distinct: 0 })
    }
}

/// The keys of a [`SortedKeys`], in order, each once.
pub struct Sorted {
    what: &'static str,
    source: Source,
    last: Option<String>,
    distinct: usize,
}

enum Source {
    Memory(std::vec::IntoIter<String>),
    Files(Merge),
}

impl Sorted {
    pub fn next_key(&mut self) -> Result<Option<String>, SpillError> {
        loop {
            let key = match &mut self.source {
                Source::Memory(keys) => keys.next(),
                Source::Files(merge) => merge.next().transpose().map_err(|e| spill_error(self.what, e))?,
            };
            match key {
                // Two files may both hold a key (added again after a spill).
                Some(key) if self.last.as_ref() == Some(&key) => continue,
                Some(key) => {
                    self.distinct += 1;
                    self.last = Some(key.clone());
                    return Ok(Some(key));
                }
                None => return Ok(None),
            }
        }
    }

    /// How many keys were read so far.
    pub fn distinct(&self) -> usize {
        self.distinct
    }
}

fn spill_error(what: &'static str, source: std::io::Error) -> SpillError {
    SpillError { what, dir: std::env::temp_dir().display().to_string(), source }
}

/// A temporary file of sorted keys, each as its length (4 bytes, little-endian) and its bytes;
/// removed when dropped.
struct Run {
    path: PathBuf,
    file: Option<File>,
}

impl Run {
    fn write(keys: impl Iterator<Item = std::io::Result<String>>) -> std::io::Result<Run> {
        let path = std::env::temp_dir().join(format!("auditstream-verify-{:016x}.keys", rand::random::<u64>()));
        let file = std::fs::OpenOptions::new().read(true).write(true).create_new(true).open(&path)?;
        let mut run = Run { path, file: None };
        let mut out = BufWriter::new(file);
        for key in keys {
            let key = key?;
            out.write_all(&(key.len() as u32).to_le_bytes()).and_then(|()| out.write_all(key.as_bytes()))?;
        }
        let mut file = out.into_inner().map_err(|e| e.into_error())?;
        file.rewind()?;
        run.file = Some(file);
        Ok(run)
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        drop(self.file.take());
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Sorted files read side by side, smallest key first.
struct Merge {
    readers: Vec<(BufReader<File>, Run)>,
    heads: BinaryHeap<Reverse<(String, usize)>>,
}

impl Merge {
    fn of(runs: Vec<Run>) -> std::io::Result<Merge> {
        let mut merge = Merge { readers: Vec::new(), heads: BinaryHeap::new() };
        for mut run in runs {
            let file = run.file.take().expect("a run is written before it is read");
            merge.readers.push((BufReader::new(file), run));
        }
        for i in 0..merge.readers.len() {
            merge.advance(i)?;
        }
        Ok(merge)
    }

    fn advance(&mut self, i: usize) -> std::io::Result<()> {
        let reader = &mut self.readers[i].0;
        let mut len = [0u8; 4];
        match reader.read_exact(&mut len) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut key = vec![0u8; u32::from_le_bytes(len) as usize];
        reader.read_exact(&mut key)?;
        let key = String::from_utf8(key).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        self.heads.push(Reverse((key, i)));
        Ok(())
    }
}

impl Iterator for Merge {
    type Item = std::io::Result<String>;

    fn next(&mut self) -> Option<Self::Item> {
        let Reverse((key, i)) = self.heads.pop()?;
        Some(self.advance(i).map(|()| key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(limits: Limits, keys: &[String]) -> (Vec<String>, usize, usize) {
        let mut sorter = SortedKeys::new("keys", limits);
        for key in keys {
            sorter.add(key.clone()).unwrap();
        }
        let (most_held, files) = (sorter.most_held, sorter.files());
        let mut sorted = sorter.into_sorted().unwrap();
        let mut out = Vec::new();
        while let Some(key) = sorted.next_key().unwrap() {
            out.push(key);
        }
        assert_eq!(sorted.distinct(), out.len());
        (out, most_held, files)
    }

    #[test]
    fn keys_come_back_sorted_and_once_holding_no_more_than_the_limit() {
        // 500 keys, each twice, in a scrambled order; held 7 at a time, merged 3 files at a time
        let keys: Vec<String> = (0..1000u64).map(|i| format!("1/jobs/{:04}.json", (i * 7919) % 500)).collect();
        let mut expected: Vec<String> = keys.clone();
        expected.sort();
        expected.dedup();
        let (out, most_held, files) = sorted(Limits { keys_in_memory: 7, files_merged: 3 }, &keys);
        assert_eq!(out, expected);
        assert_eq!(most_held, 7);
        assert!(files < 3 * 6, "merged as they came: {files} files open");
        // all in memory when they fit: no file
        let (out, _, files) = sorted(Limits::default(), &keys);
        assert_eq!((out, files), (expected, 0));
        assert_eq!(sorted(Limits::default(), &[]).0, Vec::<String>::new());
    }
}
