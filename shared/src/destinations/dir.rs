//! A local directory laid out exactly as the bucket would be: the embedded default of
//! `auditstream run` (`dir:./audit-logs`), and handy in tests.
//!
//! Create-only like the cloud stores: the object is written to a temporary file, then moved into
//! place by a rename that fails if the name exists (`renameat2(2)` with `RENAME_NOREPLACE` on Linux;
//! elsewhere, or on a file system without it, a hard link, which fails the same way, and the
//! temporary name removed). A crash mid-write therefore never leaves a partial file under the final
//! name, and an existing object is never replaced.
//!
//! Writes stay inside the directory: no symbolic link below it is followed. Each directory of a
//! key is created or opened from its parent without following a link (`openat(2)` with
//! `O_NOFOLLOW` on Unix, so a link swapped in between a check and the write is not followed
//! either): a link `out/4848 -> /elsewhere` is refused, not written through, and a link at the
//! object's own name is never taken for the object. Such a write fails permanently, naming the
//! key. The root itself may be a link: it is the directory the user chose.
//!
//! Most keys share their upper directories (user, stream, recipe, day), so the store remembers the
//! directories it made or found and opens the deepest one a key shares with them in one call that
//! refuses every link on its way (`openat2(2)` with `RESOLVE_NO_SYMLINKS | RESOLVE_BENEATH`, Linux
//! 5.6 and later), instead of creating and opening each level again. That memory is only a hint:
//! when the call fails for any reason (a directory removed, a link put in place, an older kernel)
//! the key's directories are walked level by level as above, which gives the precise error.
//!
//! The files are written by one thread of the store's own, in the order asked, with plain blocking
//! calls: on a local file system each write is a few system calls, cheaper than handing each one
//! to tokio's blocking pool (a queue under a lock and a thread woken per file), and one thread
//! never contends with itself for the directories it writes into. A batch goes to that thread as
//! one job (`ObjectStore::put_new_recorded_all`), which opens the root once and writes each object
//! in turn, each with its own outcome: one hand-off and one wake-up per batch, not per file.
//!
//! Like S3, the store keeps a manifest of every batch under `_auditstream/manifests/`
//! (`docs/integrity.md`); an object already there is read and hashed as it is on disk, never
//! taken from the body of the redelivery.

use std::collections::HashSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use bytes::Bytes;

use crate::config::PipelineSettings;
use crate::delivery::destination::{NewObject, ObjectStore, ObjectStoreDestination, PutOutcome, Recorded};
use crate::delivery::retry::DeliveryError;
use crate::destinations::Setup;
use crate::integrity::archive::{Archive, ArchiveError, Listed, PAGE};
use crate::integrity::checksum::Sha256Sum;
use crate::integrity::signature::{Ed25519Key, KeyError};
use crate::pipeline::key::{KeyPrefix, ObjectKey};
use crate::pipeline::timestamp::UtcTime;

pub struct DirStore {
    root: Arc<PathBuf>,
    /// No prefix: the directory is the archive.
    prefix: KeyPrefix,
    /// Directories below the root (as `a/b/c`) that this store made or found: see the module's docs.
    known: Arc<KnownDirs>,
    /// The thread that writes the files, started at the first write; it ends with the store.
    writer: OnceLock<std::io::Result<std::sync::mpsc::Sender<WriteJob>>>,
}

/// A write for the store's thread to run.
type WriteJob = Box<dyn FnOnce() + Send>;

/// The directories a [`DirStore`] made or found, at most [`KnownDirs::MAX`] of them (forgotten all at
/// once when full: it is a hint, and memory stays bounded however many keys a run writes).
#[derive(Default)]
struct KnownDirs(Mutex<HashSet<String>>);

impl KnownDirs {
    const MAX: usize = 4096;

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // A panic while holding it leaves a set of names, still a valid hint.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn insert(&self, dir: &str) {
        let mut known = self.lock();
        if known.len() >= Self::MAX {
            known.clear();
        }
        known.insert(dir.to_owned());
    }
}

impl DirStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        DirStore { root: Arc::new(root.into()), prefix: KeyPrefix::default(), known: Arc::default(), writer: OnceLock::new() }
    }

    /// `--to dir:PATH`: files laid out exactly as the object keys, without a prefix.
    pub fn setup(settings: &PipelineSettings, root: impl Into<PathBuf>) -> Setup<ObjectStoreDestination<DirStore>> {
        Setup::object_store(settings, KeyPrefix::default(), DirStore::new(root))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Writes `body` at `key` unless something is there; with `read_existing`, also returns what is
    /// there already.
    fn write_new(root: &mut Root<'_>, known: &KnownDirs, key: &str, body: &[u8], read_existing: bool) -> Result<(PutOutcome, Option<Vec<u8>>), WriteError> {
        let (folder, name) = key.rsplit_once('/').unwrap_or(("", key));
        let outside = |s: &str| s.is_empty() || s == "." || s == "..";
        if outside(name) || (!folder.is_empty() && folder.split('/').any(outside)) {
            return Err(WriteError::NotInside);
        }
        // Each directory is opened from its parent (or from the deepest one known, by a call that
        // follows no link), never through a link, and the file is created, moved into place and
        // checked inside the directory opened last: a link put in place meanwhile is not followed
        // either.
        let root = root.open()?;
        let opened = Self::open_folder(root, known, folder)?;
        let dir = opened.as_ref().unwrap_or(root);
        // A short temporary name, whatever the length of the object's own.
        let mut tmp = [0u8; 40];
        let tmp = {
            let mut out = &mut tmp[..];
            std::io::Write::write_fmt(&mut out, format_args!(".tmp-{}-{:016x}", process_id(), rand::random::<u64>()))?;
            let len = 40 - out.len();
            std::str::from_utf8(&tmp[..len]).map_err(|_| std::io::Error::from(ErrorKind::InvalidInput))?
        };
        let written = dir.create_new(tmp).and_then(|mut f| std::io::Write::write_all(&mut f, body));
        if let Err(e) = written {
            let _ = dir.remove(tmp);
            return Err(e.into());
        }
        // Never follows a link at the final name: an existing name is "already there".
        let placed = dir.place(tmp, name);
        match placed {
            Ok(()) => Ok((PutOutcome::Created, None)),
            Err(e) if e.kind() == ErrorKind::AlreadyExists => match dir.is_file(name)? {
                true if read_existing => Ok((PutOutcome::AlreadyExists, Some(dir.read(name)?))),
                true => Ok((PutOutcome::AlreadyExists, None)),
                false => Err(WriteError::NotAFile),
            },
            Err(e) => Err(e.into()),
        }
    }

    /// The directory `folder` (`a/b/c`) under `root`, made where missing; `None` for the root itself.
    fn open_folder(root: &Dir, known: &KnownDirs, folder: &str) -> Result<Option<Dir>, WriteError> {
        if folder.is_empty() {
            return Ok(None);
        }
        // The deepest directory of the key that this store made or found before, as the length of
        // its path in `folder`.
        let deepest_known = {
            let known = known.lock();
            let mut end = folder.len();
            loop {
                if known.contains(&folder[..end]) {
                    break Some(end);
                }
                match folder[..end].rfind('/') {
                    Some(i) => end = i,
                    None => break None,
                }
            }
        };
        let mut dir = None;
        let mut start = 0;
        if let Some(end) = deepest_known {
            if let Ok(found) = root.beneath(&folder[..end]) {
                if end == folder.len() {
                    return Ok(Some(found));
                }
                (dir, start) = (Some(found), end + 1);
            }
        }
        // The rest level by level: each segment ends at a `/` or at the end of `folder`.
        let first = start;
        for end in folder[first..].match_indices('/').map(move |(i, _)| first + i).chain(std::iter::once(folder.len())) {
            let parent = dir.as_ref().unwrap_or(root);
            let child = parent.child(&folder[start..end])?.ok_or_else(|| WriteError::NotADirectory(folder[..end].to_owned()))?;
            dir = Some(child);
            known.insert(&folder[..end]);
            start = end + 1;
        }
        Ok(dir)
    }

    /// The outcome of a write as [`ObjectStore::put_new_recorded`] returns it: for an object already
    /// there, the size and SHA-256 of the file as it is on disk.
    fn recorded(written: (PutOutcome, Option<Vec<u8>>), size: usize, sha256: Sha256Sum) -> (PutOutcome, Recorded) {
        match written {
            (PutOutcome::Created, _) => (PutOutcome::Created, Recorded { size: size as u64, sha256 }),
            (put, existing) => {
                let existing = existing.unwrap_or_default();
                (put, Recorded { size: existing.len() as u64, sha256: Sha256Sum::of(&existing) })
            }
        }
    }
}

/// The store's root directory, opened at the first write that needs it and then kept for the
/// writes of the same call (one object, or one batch), so that a batch opens it once. Opened again
/// by the next call: a root removed or replaced in between is met afresh.
struct Root<'a> {
    path: &'a Path,
    dir: Option<Dir>,
}

impl<'a> Root<'a> {
    fn new(path: &'a Path) -> Self {
        Root { path, dir: None }
    }

    /// The open root; a failure to open it is met again by the next object, with its own error.
    fn open(&mut self) -> std::io::Result<&Dir> {
        if self.dir.is_none() {
            self.dir = Some(Dir::open_root(self.path)?);
        }
        Ok(self.dir.as_ref().expect("opened just above"))
    }
}

/// This process's id, asked of the kernel once (`getpid(2)` is a system call, and every object's
/// temporary name carries it).
fn process_id() -> u32 {
    static ID: OnceLock<u32> = OnceLock::new();
    *ID.get_or_init(std::process::id)
}

/// An open directory under the root, reached without following a link (`openat(2)` with
/// `O_NOFOLLOW`, so nothing changed by path between a check and a write).
#[cfg(unix)]
struct Dir(std::os::fd::OwnedFd);

/// A name as the system calls take it, NUL-terminated: on the stack when it is short, as every
/// name in a key is (at most 255 bytes), so that naming a file or directory allocates nothing.
#[cfg(unix)]
// Large on purpose: the short form lives on the stack, the point of the type.
#[allow(clippy::large_enum_variant)]
enum CName {
    Short([u8; CName::SHORT]),
    Long(std::ffi::CString),
}

#[cfg(unix)]
impl CName {
    const SHORT: usize = 256;

    fn new(name: &str) -> std::io::Result<CName> {
        let bytes = name.as_bytes();
        if memchr::memchr(0, bytes).is_some() {
            return Err(ErrorKind::InvalidInput.into());
        }
        if bytes.len() < Self::SHORT {
            let mut short = [0u8; Self::SHORT];
            short[..bytes.len()].copy_from_slice(bytes);
            return Ok(CName::Short(short));
        }
        std::ffi::CString::new(name).map(CName::Long).map_err(|_| ErrorKind::InvalidInput.into())
    }

    fn as_ptr(&self) -> *const libc::c_char {
        match self {
            CName::Short(short) => short.as_ptr().cast(),
            CName::Long(long) => long.as_ptr(),
        }
    }
}

#[cfg(unix)]
impl Dir {
    fn name(name: &str) -> std::io::Result<CName> {
        CName::new(name)
    }

    fn check(result: libc::c_int) -> std::io::Result<libc::c_int> {
        if result < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(result)
        }
    }

    /// The root itself may be a link: it is the directory the user chose. Made if missing.
    fn open_root(root: &Path) -> std::io::Result<Dir> {
        use std::os::unix::fs::OpenOptionsExt;
        let open = || std::fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(root);
        let opened = match open() {
            Err(e) if e.kind() == ErrorKind::NotFound => std::fs::create_dir_all(root).and_then(|()| open()),
            opened => opened,
        };
        match opened {
            Ok(dir) => Ok(Dir(dir.into())),
            // Said as the check and the messages have always said it ("not a directory").
            Err(e) if e.kind() == ErrorKind::NotADirectory => Err(ErrorKind::NotADirectory.into()),
            Err(e) => Err(e),
        }
    }

    /// The directory at `path` (`a/b/c`) below this one, opened in one call that fails on any
    /// symbolic link on the way or at the end, and on anything that would leave this directory.
    #[cfg(target_os = "linux")]
    fn beneath(&self, path: &str) -> std::io::Result<Dir> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let c = Self::name(path)?;
        // SAFETY: an all-zero `open_how` is valid (no flags); the fields are set before the call.
        let mut how: libc::open_how = unsafe { std::mem::zeroed() };
        how.flags = (libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC) as u64;
        how.resolve = libc::RESOLVE_NO_SYMLINKS | libc::RESOLVE_BENEATH;
        // SAFETY: a valid directory descriptor, a NUL-terminated path and an `open_how` of the size
        // passed, all alive for the call; the descriptor returned is owned by the `OwnedFd` alone.
        use std::sync::atomic::{AtomicBool, Ordering};
        /// Set when the kernel has no `openat2(2)` (before 5.6) or a sandbox refuses it.
        static NO_OPENAT2: AtomicBool = AtomicBool::new(false);
        if NO_OPENAT2.load(Ordering::Relaxed) {
            return Err(ErrorKind::Unsupported.into());
        }
        let fd =
            unsafe { libc::syscall(libc::SYS_openat2, self.0.as_raw_fd(), c.as_ptr(), &how as *const libc::open_how, std::mem::size_of::<libc::open_how>()) };
        match Self::check(fd as libc::c_int) {
            Ok(fd) => Ok(Dir(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) })),
            Err(e) => {
                if matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EPERM)) {
                    NO_OPENAT2.store(true, Ordering::Relaxed);
                }
                Err(e)
            }
        }
    }

    /// Without `openat2(2)`, the walk level by level.
    #[cfg(not(target_os = "linux"))]
    fn beneath(&self, _path: &str) -> std::io::Result<Dir> {
        Err(ErrorKind::Unsupported.into())
    }

    /// The directory `name` in this one, created if missing; `None` if a link or a file is there.
    fn child(&self, name: &str) -> std::io::Result<Option<Dir>> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let c = Self::name(name)?;
        // SAFETY: a valid directory descriptor and a NUL-terminated name, both alive for the call.
        if let Err(e) = Self::check(unsafe { libc::mkdirat(self.0.as_raw_fd(), c.as_ptr(), 0o777) }) {
            if e.kind() != ErrorKind::AlreadyExists {
                return Err(e);
            }
        }
        let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: as above; the descriptor returned is owned by the `OwnedFd` alone.
        match Self::check(unsafe { libc::openat(self.0.as_raw_fd(), c.as_ptr(), flags) }) {
            Ok(fd) => Ok(Some(Dir(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// A new file `name` in this directory; fails if anything, a link included, is there.
    fn create_new(&self, name: &str) -> std::io::Result<std::fs::File> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let c = Self::name(name)?;
        let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: as in `child`.
        let fd = Self::check(unsafe { libc::openat(self.0.as_raw_fd(), c.as_ptr(), flags, 0o666 as libc::c_uint) })?;
        Ok(std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }))
    }

    /// Moves the file `from` to `to` in this directory unless something is at `to`: a rename that
    /// refuses to replace (Linux), else a hard link and the removal of `from`. Neither follows a link
    /// at `to`; either way `from` is gone afterwards.
    fn place(&self, from: &str, to: &str) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let (from_c, to_c) = (Self::name(from)?, Self::name(to)?);
        let fd = self.0.as_raw_fd();
        #[cfg(target_os = "linux")]
        {
            use std::sync::atomic::{AtomicBool, Ordering};
            /// Set when the file system (or the kernel) refused `RENAME_NOREPLACE`: links from then on.
            static NO_RENAME_NOREPLACE: AtomicBool = AtomicBool::new(false);
            if !NO_RENAME_NOREPLACE.load(Ordering::Relaxed) {
                // SAFETY: as in `child`.
                match Self::check(unsafe { libc::renameat2(fd, from_c.as_ptr(), fd, to_c.as_ptr(), libc::RENAME_NOREPLACE) }) {
                    Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOSYS)) => NO_RENAME_NOREPLACE.store(true, Ordering::Relaxed),
                    Err(e) => {
                        let _ = self.remove(from);
                        return Err(e);
                    }
                    Ok(_) => return Ok(()),
                }
            }
        }
        // SAFETY: as in `child`.
        let linked = Self::check(unsafe { libc::linkat(fd, from_c.as_ptr(), fd, to_c.as_ptr(), 0) }).map(drop);
        let _ = self.remove(from);
        linked
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let c = Self::name(name)?;
        // SAFETY: as in `child`.
        Self::check(unsafe { libc::unlinkat(self.0.as_raw_fd(), c.as_ptr(), 0) }).map(drop)
    }

    /// The bytes of the file `name` in this directory, not through a link.
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        use std::os::fd::{AsRawFd, FromRawFd};
        let c = Self::name(name)?;
        let flags = libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_CLOEXEC;
        // SAFETY: as in `child`.
        let fd = Self::check(unsafe { libc::openat(self.0.as_raw_fd(), c.as_ptr(), flags) })?;
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::fs::File::from(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) }), &mut bytes)?;
        Ok(bytes)
    }

    /// Whether `name` is a regular file (a link is not).
    fn is_file(&self, name: &str) -> std::io::Result<bool> {
        use std::os::fd::AsRawFd;
        let c = Self::name(name)?;
        let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
        // SAFETY: as in `child`; `stat` is written by a successful call before it is read.
        Self::check(unsafe { libc::fstatat(self.0.as_raw_fd(), c.as_ptr(), stat.as_mut_ptr(), libc::AT_SYMLINK_NOFOLLOW) })?;
        let mode = unsafe { stat.assume_init() }.st_mode;
        Ok(mode & libc::S_IFMT == libc::S_IFREG)
    }
}

/// Elsewhere, the same checks by path: each directory is looked at without following a link.
#[cfg(not(unix))]
struct Dir(PathBuf);

#[cfg(not(unix))]
impl Dir {
    fn open_root(root: &Path) -> std::io::Result<Dir> {
        match std::fs::metadata(root) {
            Ok(found) if found.is_dir() => {}
            Ok(_) => return Err(ErrorKind::NotADirectory.into()),
            Err(_) => std::fs::create_dir_all(root)?,
        }
        Ok(Dir(root.to_path_buf()))
    }

    fn child(&self, name: &str) -> std::io::Result<Option<Dir>> {
        let path = self.0.join(name);
        match std::fs::create_dir(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        let found = std::fs::symlink_metadata(&path)?;
        Ok((!found.file_type().is_symlink() && found.is_dir()).then_some(Dir(path)))
    }

    fn create_new(&self, name: &str) -> std::io::Result<std::fs::File> {
        std::fs::OpenOptions::new().write(true).create_new(true).open(self.0.join(name))
    }

    fn beneath(&self, _path: &str) -> std::io::Result<Dir> {
        Err(ErrorKind::Unsupported.into())
    }

    fn place(&self, from: &str, to: &str) -> std::io::Result<()> {
        let linked = std::fs::hard_link(self.0.join(from), self.0.join(to));
        let _ = self.remove(from);
        linked
    }

    fn remove(&self, name: &str) -> std::io::Result<()> {
        std::fs::remove_file(self.0.join(name))
    }

    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.0.join(name))
    }

    fn is_file(&self, name: &str) -> std::io::Result<bool> {
        Ok(std::fs::symlink_metadata(self.0.join(name))?.is_file())
    }
}

/// Why an object could not be written.
#[derive(Debug, thiserror::Error)]
enum WriteError {
    #[error("{0} is a symbolic link or not a directory, and this store follows no link inside its directory")]
    NotADirectory(String),
    #[error("a symbolic link or something other than a file is at its name, and this store follows no link inside its directory")]
    NotAFile,
    #[error("the key has an empty, `.` or `..` segment, which would leave the directory")]
    NotInside,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl WriteError {
    /// Links and odd keys will not change by trying again; some I/O errors will.
    fn is_permanent(&self) -> bool {
        match self {
            WriteError::Io(e) => {
                matches!(e.kind(), ErrorKind::PermissionDenied | ErrorKind::ReadOnlyFilesystem | ErrorKind::NotADirectory | ErrorKind::InvalidInput)
                    || is_name_too_long(e)
            }
            _ => true,
        }
    }

    /// What to do about it, when the error alone does not say.
    fn hint(&self) -> &'static str {
        match self {
            WriteError::Io(e) if is_name_too_long(e) => {
                " (every key fits a file name, so the directory's own path is too long: choose a shorter --to dir: path)"
            }
            _ => "",
        }
    }
}

#[async_trait]
impl ObjectStore for DirStore {
    fn describe(&self) -> String {
        format!("dir:{}", self.root.display())
    }

    async fn put_new(&self, key: &ObjectKey, body: Bytes) -> Result<PutOutcome, DeliveryError> {
        self.write(key, body, false).await.map(|(put, _)| put)
    }

    fn manifests(&self) -> Option<&KeyPrefix> {
        Some(&self.prefix)
    }

    async fn put_new_recorded(&self, key: &ObjectKey, body: Bytes, sha256: Sha256Sum) -> Result<(PutOutcome, Recorded), DeliveryError> {
        let size = body.len();
        Ok(Self::recorded(self.write(key, body, true).await?, size, sha256))
    }

    async fn put_new_recorded_all(&self, objects: &[NewObject]) -> Option<Vec<Result<(PutOutcome, Recorded), DeliveryError>>> {
        Some(self.write_all(objects).await)
    }

    async fn read_back(&self, key: &ObjectKey, body: &[u8]) -> Option<Result<String, String>> {
        Some(self.read_back_probe(key, body).await)
    }
}

impl DirStore {
    async fn write(&self, key: &ObjectKey, body: Bytes, read_existing: bool) -> Result<(PutOutcome, Option<Vec<u8>>), DeliveryError> {
        let (root, known) = (Arc::clone(&self.root), Arc::clone(&self.known));
        let written = {
            let key = key.clone();
            self.on_writer(move || Self::write_new(&mut Root::new(&root), &known, key.as_str(), &body, read_existing)).await
        };
        let describe = ObjectStore::describe(self);
        written.map_err(|e| Self::interrupted(&describe, key, &e))?.map_err(|e| Self::failed(&describe, key, e))
    }

    /// Every object of a batch written by one job on the writer thread, in order, the root opened
    /// once: see [`ObjectStore::put_new_recorded_all`]. Each object has its own outcome.
    async fn write_all(&self, objects: &[NewObject]) -> Vec<Result<(PutOutcome, Recorded), DeliveryError>> {
        let (root, known) = (Arc::clone(&self.root), Arc::clone(&self.known));
        let jobs: Vec<(ObjectKey, Bytes)> = objects.iter().map(|o| (o.key.clone(), o.body.clone())).collect();
        let written = self
            .on_writer(move || {
                let mut root = Root::new(&root);
                jobs.iter().map(|(key, body)| Self::write_new(&mut root, &known, key.as_str(), body, true)).collect::<Vec<_>>()
            })
            .await;
        let describe = ObjectStore::describe(self);
        match written {
            Ok(written) => written
                .into_iter()
                .zip(objects)
                .map(|(w, o)| w.map(|w| Self::recorded(w, o.body.len(), o.sha256)).map_err(|e| Self::failed(&describe, &o.key, e)))
                .collect(),
            Err(e) => objects.iter().map(|o| Err(Self::interrupted(&describe, &o.key, &e))).collect(),
        }
    }

    /// A write that did not finish (the writer thread stopped, or the job panicked): worth another try.
    fn interrupted(describe: &str, key: &ObjectKey, e: &str) -> DeliveryError {
        DeliveryError::transient(format!("{describe}: writing {key} was interrupted: {e}"))
    }

    fn failed(describe: &str, key: &ObjectKey, e: WriteError) -> DeliveryError {
        let message = format!("{describe}: cannot write {key}: {e}{}", e.hint());
        if e.is_permanent() {
            DeliveryError::permanent(message)
        } else {
            DeliveryError::transient(message)
        }
    }
}

impl DirStore {
    /// Runs `job` on the store's writer thread and waits for its result. A job that panics fails
    /// alone (the thread goes on with the next).
    async fn on_writer<T: Send + 'static>(&self, job: impl FnOnce() -> T + Send + 'static) -> Result<T, String> {
        let writer = self.writer.get_or_init(|| {
            let (jobs, queue) = std::sync::mpsc::channel::<WriteJob>();
            let thread = std::thread::Builder::new().name("auditstream-dir-writer".into()).spawn(move || {
                while let Ok(job) = queue.recv() {
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                }
            });
            thread.map(|_| jobs)
        });
        let writer = writer.as_ref().map_err(|e| format!("the writer thread could not start: {e}"))?;
        let (done, result) = tokio::sync::oneshot::channel();
        writer.send(Box::new(move || drop(done.send(job())))).map_err(|_| "the writer thread has stopped".to_owned())?;
        result.await.map_err(|_| "the write panicked".to_owned())
    }

    /// A probe read back: the file at its key holds what was written. The probe is then removed,
    /// since nothing expires files in a local directory; it is the check's own file, under
    /// `_auditstream/health/`, never an audit object.
    async fn read_back_probe(&self, key: &ObjectKey, body: &[u8]) -> Result<String, String> {
        let path = self.root.join(key.as_str());
        let found = tokio::fs::read(&path).await.map_err(|e| format!("{}: cannot read the probe {key} back: {e}", self.describe()))?;
        if found != body {
            return Err(format!("{}: the probe {key} reads back different from what was written", self.describe()));
        }
        let _ = tokio::fs::remove_file(&path).await;
        Ok(format!("probe read back ({} bytes) and removed", found.len()))
    }
}

/// The archive as the digest step and verification read it (`docs/integrity.md`). Files are
/// looked at without following links; a link or a leftover temporary file (`.tmp-…`, from a
/// write that stopped) is no object.
#[async_trait]
impl Archive for DirStore {
    fn name(&self) -> String {
        ObjectStore::describe(self)
    }

    fn key_prefix(&self) -> &KeyPrefix {
        &self.prefix
    }

    async fn list_page(&self, prefix: &str, after: Option<&str>) -> Result<Vec<Listed>, ArchiveError> {
        let root = self.root.clone();
        let (prefix, after) = (prefix.to_owned(), after.map(str::to_owned));
        let describe = ObjectStore::describe(self);
        let listed = tokio::task::spawn_blocking(move || {
            // From the deepest folder the prefix names.
            let folder = prefix.rfind('/').map_or("", |i| &prefix[..i]);
            let mut out = Vec::new();
            list_sorted(&root.join(folder), folder, &prefix, after.as_deref(), &mut out)?;
            Ok::<_, std::io::Error>(out)
        })
        .await;
        match listed {
            Ok(Ok(out)) => Ok(out),
            Ok(Err(e)) => Err(ArchiveError(format!("{describe}: cannot list it: {e}"))),
            Err(e) => Err(ArchiveError(format!("{describe}: listing was interrupted: {e}"))),
        }
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ArchiveError> {
        match tokio::fs::read(self.root.join(key)).await {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ArchiveError(format!("{}: cannot read {key}: {e}", ObjectStore::describe(self)))),
        }
    }

    async fn recorded(&self, key: &str) -> Result<Option<Recorded>, ArchiveError> {
        Ok(self.get(key).await?.map(|bytes| Recorded { size: bytes.len() as u64, sha256: Sha256Sum::of(&bytes) }))
    }

    async fn put_record(&self, key: &str, body: Vec<u8>) -> Result<bool, ArchiveError> {
        let written = self.write(&ObjectKey::integrity_record(key.to_owned()), Bytes::from(body), false).await;
        written.map(|(put, _)| put == PutOutcome::Created).map_err(|e| ArchiveError(e.message))
    }
}

/// Adds to `out`, in key order, the files below `dir` (whose key is `key`) that are under `prefix`
/// and sort after `after`, until it holds [`PAGE`]. Only one folder's names are read at a time:
/// each folder's, sorted as the keys below it sort (a folder's name with its `/`), so a walk in
/// that order gives the keys in S3's order, and a folder wholly before `after` is not entered.
fn list_sorted(dir: &Path, key: &str, prefix: &str, after: Option<&str>, out: &mut Vec<Listed>) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let mut children = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        // The kind readdir(3) reports, without a stat of every entry (each page reads again the
        // folders it starts in); a link is not followed, so a folder is not entered through one.
        let is_dir = entry.file_type()?.is_dir();
        let child = if key.is_empty() { name.clone() } else { format!("{key}/{name}") };
        // A leftover temporary file (`.tmp-…`, from a write that stopped) is no object.
        if is_dir {
            children.push((format!("{child}/"), true, entry.path()));
        } else if !name.starts_with(".tmp-") {
            children.push((child, false, entry.path()));
        }
    }
    children.sort_by(|a, b| a.0.cmp(&b.0));
    for (child, is_dir, path) in children {
        if out.len() >= PAGE {
            break;
        }
        match is_dir {
            true => {
                let reaches_prefix = child.starts_with(prefix) || prefix.starts_with(&child);
                let wholly_before = after.is_some_and(|after| after > child.as_str() && !after.starts_with(&child));
                if reaches_prefix && !wholly_before {
                    list_sorted(&path, &child[..child.len() - 1], prefix, after, out)?;
                }
            }
            false if child.starts_with(prefix) && after.is_none_or(|after| child.as_str() > after) => {
                let since_epoch = std::fs::symlink_metadata(&path)?.modified()?.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
                let modified = UtcTime { millis: since_epoch.subsec_millis() as u16, ..UtcTime::from_epoch_seconds(since_epoch.as_secs() as i64) };
                out.push(Listed { key: child, modified });
            }
            false => {}
        }
    }
    Ok(())
}

/// The Ed25519 key that signs a `dir:` archive's digests, read from `path`; created there on
/// first use (mode 0600 on Unix), with its public half beside it (`PATH.pub.pem`) to hand to
/// whoever verifies. Keep it outside the archive: whoever holds it can sign a forged chain.
pub fn digest_key(path: &Path) -> Result<Ed25519Key, KeyFileError> {
    let at = |e: std::io::Error| KeyFileError::Io(path.display().to_string(), e);
    match std::fs::read(path) {
        Ok(pem) => Ed25519Key::from_pem(&pem).map_err(|e| KeyFileError::Bad(path.display().to_string(), e)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(at)?;
            }
            let key = Ed25519Key::generate();
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(path).map_err(at)?;
            std::io::Write::write_all(&mut file, key.to_pem().as_bytes()).map_err(at)?;
            std::fs::write(public_key_path(path), key.public_pem()).map_err(at)?;
            tracing::info!(key = %path.display(), "created a new Ed25519 key to sign this archive's digests");
            Ok(key)
        }
        Err(e) => Err(at(e)),
    }
}

/// Where [`digest_key`] writes the public half of the key at `path`.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub.pem");
    PathBuf::from(name)
}

#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("digest key file {0}: {1}")]
    Io(String, std::io::Error),
    #[error("digest key file {0}: {1}")]
    Bad(String, KeyError),
}

/// ENAMETOOLONG. Keys never hold a name over 255 bytes (see [`crate::pipeline::key`]), so this comes from a
/// root path near the system's path limit: the same for every retry, so permanent.
fn is_name_too_long(e: &std::io::Error) -> bool {
    #[cfg(unix)]
    return e.raw_os_error() == Some(libc::ENAMETOOLONG);
    #[cfg(not(unix))]
    return e.kind() == ErrorKind::InvalidInput;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::event::{EventMeta, JobMeta};
    use crate::pipeline::key::{KeyLayout, KeyPrefix};
    use crate::pipeline::timestamp::UtcTime;

    fn key() -> ObjectKey {
        let meta = EventMeta::Job(JobMeta {
            id: "j-1".into(),
            recipe_id: "2".into(),
            status: "succeeded".into(),
            user_id: "3".into(),
            time: UtcTime::from_epoch_seconds(0),
        });
        ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), b"")
    }

    #[tokio::test]
    async fn writes_once_at_the_key_path_and_never_overwrites() {
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let store = DirStore::new(&dir);
        assert_eq!(store.put_new(&key(), Bytes::from_static(b"{\"a\":1}")).await.unwrap(), PutOutcome::Created);
        assert_eq!(store.put_new(&key(), Bytes::from_static(b"{\"a\":2}")).await.unwrap(), PutOutcome::AlreadyExists);
        let path = dir.join("3/jobs/2/19700101/j-1/3-2-j-1-19700101000000-succeeded.json");
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}");
        // no temporary files are left behind
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_batch_records_its_objects_in_a_manifest_and_a_found_object_with_the_checksum_of_the_file() {
        use crate::delivery::destination::{Destination, ObjectStoreDestination};
        use crate::delivery::retry::{Deadline, RetryPolicy};
        use crate::integrity::manifest::{Manifest, ManifestEntry};
        use crate::pipeline::Document;

        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let dest = ObjectStoreDestination::new(DirStore::new(&dir), 2, RetryPolicy::default());
        let meta = EventMeta::Job(JobMeta {
            id: "j-1".into(),
            recipe_id: "2".into(),
            status: "succeeded".into(),
            user_id: "3".into(),
            time: UtcTime::from_epoch_seconds(0),
        });
        let doc = |body: &str| Document { key: key(), body: body.as_bytes().to_vec(), meta: meta.clone(), masked_lines: 0, truncated: false };
        dest.deliver(vec![doc("{\"a\":1}")], Deadline::NONE).await.into_iter().for_each(|r| assert!(r.is_ok(), "{r:?}"));
        dest.deliver(vec![doc("{\"a\":22}")], Deadline::NONE).await.into_iter().for_each(|r| assert!(r.is_ok(), "{r:?}"));

        let mut manifests = Vec::new();
        let mut folders = vec![dir.join("_auditstream/manifests")];
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap().flatten() {
                match entry.file_type().unwrap().is_dir() {
                    true => folders.push(entry.path()),
                    false => manifests.push(Manifest::parse("m", &std::fs::read(entry.path()).unwrap()).unwrap()),
                }
            }
        }
        let first = ManifestEntry { key: key().to_string(), size: 7, sha256: Sha256Sum::of(b"{\"a\":1}") };
        assert_eq!(manifests.len(), 2, "one manifest per batch");
        assert!(manifests.iter().all(|m| m.objects == [first.clone()]), "the second batch found the first body: {manifests:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    fn job_key(id: &str) -> ObjectKey {
        let meta = EventMeta::Job(JobMeta {
            id: id.into(),
            recipe_id: "2".into(),
            status: "succeeded".into(),
            user_id: "3".into(),
            time: UtcTime::from_epoch_seconds(0),
        });
        ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), b"")
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_link_put_in_place_of_a_directory_the_store_made_before_is_not_followed() {
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let elsewhere = std::env::temp_dir().join(format!("auditstream-elsewhere-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&elsewhere).unwrap();
        let store = DirStore::new(&dir);
        assert_eq!(store.put_new(&job_key("j-1"), Bytes::from_static(b"{}")).await.unwrap(), PutOutcome::Created);
        // The store made 3/jobs/2/19700101; now 3/jobs/2 is moved away and a link takes its place.
        std::fs::rename(dir.join("3/jobs/2"), dir.join("3/jobs/moved")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("3/jobs/2")).unwrap();
        let err = store.put_new(&job_key("j-2"), Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(err.is_permanent() && err.message.contains(": 3/jobs/2 is a symbolic link"), "{err:?}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing was written outside");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(elsewhere).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_batch_is_written_create_only_in_one_go_and_each_object_gets_its_own_outcome() {
        use crate::delivery::destination::NewObject;
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let elsewhere = std::env::temp_dir().join(format!("auditstream-elsewhere-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&elsewhere).unwrap();
        let store = DirStore::new(&dir);
        // j-old is there already, with other bytes than this batch sends
        assert_eq!(store.put_new(&job_key("j-old"), Bytes::from_static(b"{\"old\":1}")).await.unwrap(), PutOutcome::Created);
        // the folder of j-link is a link out of the directory
        let linked = dir.join(job_key("j-link").as_str());
        std::os::unix::fs::symlink(&elsewhere, linked.parent().unwrap()).unwrap();
        let object = |id: &str, body: &'static [u8]| NewObject { key: job_key(id), body: Bytes::from_static(body), sha256: Sha256Sum::of(body) };
        let batch = [object("j-new", b"{\"new\":1}"), object("j-old", b"{\"old\":2}"), object("j-link", b"{}"), object("j-new", b"{\"new\":2}")];

        let outcomes = store.put_new_recorded_all(&batch).await.expect("the directory writes batches in one go");
        assert_eq!(outcomes.len(), 4, "{outcomes:?}");
        let recorded = |body: &[u8]| Recorded { size: body.len() as u64, sha256: Sha256Sum::of(body) };
        assert_eq!(outcomes[0], Ok((PutOutcome::Created, recorded(b"{\"new\":1}"))));
        assert_eq!(outcomes[1], Ok((PutOutcome::AlreadyExists, recorded(b"{\"old\":1}"))), "what is on disk, not what was sent");
        let err = outcomes[2].as_ref().unwrap_err();
        assert!(
            err.is_permanent() && err.message.contains(&format!("cannot write {}: ", job_key("j-link"))) && err.message.contains("symbolic link"),
            "{err:?}"
        );
        assert_eq!(outcomes[3], Ok((PutOutcome::AlreadyExists, recorded(b"{\"new\":1}"))), "the batch's own first write is not replaced");

        assert_eq!(std::fs::read(dir.join(job_key("j-new").as_str())).unwrap(), b"{\"new\":1}");
        assert_eq!(std::fs::read(dir.join(job_key("j-old").as_str())).unwrap(), b"{\"old\":1}");
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing was written outside");
        let folder = dir.join(job_key("j-new").as_str());
        assert_eq!(std::fs::read_dir(folder.parent().unwrap()).unwrap().count(), 1, "no temporary file is left behind");
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(elsewhere).unwrap();
    }

    #[tokio::test]
    async fn a_batch_to_an_unwritable_root_fails_each_object_permanently_naming_its_key() {
        use crate::delivery::destination::NewObject;
        let file = std::env::temp_dir().join(format!("auditstream-file-{}", rand::random::<u64>()));
        std::fs::write(&file, b"").unwrap();
        let batch: Vec<NewObject> = ["j-1", "j-2"].iter().map(|id| NewObject { key: job_key(id), body: Bytes::new(), sha256: Sha256Sum::of(b"") }).collect();
        let outcomes = DirStore::new(&file).put_new_recorded_all(&batch).await.unwrap();
        for (outcome, object) in outcomes.iter().zip(&batch) {
            let err = outcome.as_ref().unwrap_err();
            assert!(err.is_permanent() && err.message.contains(&format!("cannot write {}: not a directory", object.key)), "{err:?}");
        }
        assert_eq!(outcomes.len(), 2);
        std::fs::remove_file(file).unwrap();
    }

    #[tokio::test]
    async fn a_directory_removed_after_the_store_made_it_is_made_again() {
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let store = DirStore::new(&dir);
        assert_eq!(store.put_new(&job_key("j-1"), Bytes::from_static(b"{\"a\":1}")).await.unwrap(), PutOutcome::Created);
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(store.put_new(&job_key("j-2"), Bytes::from_static(b"{\"a\":2}")).await.unwrap(), PutOutcome::Created);
        assert_eq!(std::fs::read(dir.join(job_key("j-2").as_str())).unwrap(), b"{\"a\":2}");
        // and an object already there is still found, not replaced
        assert_eq!(store.put_new(&job_key("j-2"), Bytes::from_static(b"{\"a\":3}")).await.unwrap(), PutOutcome::AlreadyExists);
        assert_eq!(std::fs::read(dir.join(job_key("j-2").as_str())).unwrap(), b"{\"a\":2}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[tokio::test]
    async fn a_key_from_an_event_with_a_400_byte_id_is_written() {
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let meta = EventMeta::Job(JobMeta {
            id: "j".repeat(400),
            recipe_id: "2".into(),
            status: "/..".repeat(100),
            user_id: "3".into(),
            time: UtcTime::from_epoch_seconds(0),
        });
        let key = ObjectKey::for_event(&meta, KeyLayout::Standard, &KeyPrefix::default(), b"");
        let store = DirStore::new(&dir);
        assert_eq!(store.put_new(&key, Bytes::from_static(b"{}")).await.unwrap(), PutOutcome::Created);
        assert_eq!(store.put_new(&key, Bytes::from_static(b"{}")).await.unwrap(), PutOutcome::AlreadyExists);
        assert_eq!(std::fs::read(dir.join(key.as_str())).unwrap(), b"{}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_root_too_long_for_the_file_system_is_a_permanent_error() {
        // Linux allows 4,096 bytes per path: a root of 20 folders of 250 bytes leaves no room.
        let mut root = std::env::temp_dir().join(format!("auditstream-long-{}", rand::random::<u64>()));
        let top = root.clone();
        for i in 0..20 {
            root.push(format!("{i:03}{}", "d".repeat(247)));
        }
        let err = DirStore::new(&root).put_new(&key(), Bytes::new()).await.unwrap_err();
        assert!(err.is_permanent(), "{err:?}");
        assert!(err.message.contains("choose a shorter --to dir: path"), "{err}");
        let _ = std::fs::remove_dir_all(top);
    }

    #[tokio::test]
    async fn an_unwritable_root_is_a_clear_permanent_error() {
        let file = std::env::temp_dir().join(format!("auditstream-file-{}", rand::random::<u64>()));
        std::fs::write(&file, b"").unwrap();
        let err = DirStore::new(&file).put_new(&key(), Bytes::new()).await.unwrap_err();
        assert!(err.is_permanent(), "{err:?}");
        assert!(err.message.contains("cannot write 3/jobs/2/19700101/j-1/") && err.message.contains(": not a directory"), "{err}");
        std::fs::remove_file(file).unwrap();
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symbolic_link_inside_the_directory_is_never_written_through() {
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        let elsewhere = std::env::temp_dir().join(format!("auditstream-elsewhere-{}", rand::random::<u64>()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::create_dir_all(&elsewhere).unwrap();
        let store = DirStore::new(&dir);
        // the key's first directory is a link out of the tree
        std::os::unix::fs::symlink(&elsewhere, dir.join("3")).unwrap();
        let err = store.put_new(&key(), Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(err.is_permanent(), "{err:?}");
        assert_eq!(
            err.message,
            format!(
                "dir:{}: cannot write {}: 3 is a symbolic link or not a directory, and this store follows no link inside its directory",
                dir.display(),
                key()
            )
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing was written outside");

        // a link deeper down, and a link at the object's own name
        std::fs::remove_file(dir.join("3")).unwrap();
        std::fs::create_dir_all(dir.join("3/jobs")).unwrap();
        std::os::unix::fs::symlink(&elsewhere, dir.join("3/jobs/2")).unwrap();
        let err = store.put_new(&key(), Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(err.is_permanent() && err.message.contains(": 3/jobs/2 is a symbolic link"), "{err:?}");
        std::fs::remove_file(dir.join("3/jobs/2")).unwrap();
        let object = dir.join(key().as_str());
        std::fs::create_dir_all(object.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(elsewhere.join("target.json"), &object).unwrap();
        let err = store.put_new(&key(), Bytes::from_static(b"{}")).await.unwrap_err();
        assert!(
            err.is_permanent()
                && err.message.ends_with("a symbolic link or something other than a file is at its name, and this store follows no link inside its directory"),
            "{err:?}"
        );
        assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0, "nothing was written outside");
        // no temporary files are left behind
        assert_eq!(std::fs::read_dir(object.parent().unwrap()).unwrap().count(), 1);

        // the root itself may be a link: it is the directory the user chose
        let via_link = std::env::temp_dir().join(format!("auditstream-link-{}", rand::random::<u64>()));
        std::os::unix::fs::symlink(&elsewhere, &via_link).unwrap();
        assert_eq!(DirStore::new(&via_link).put_new(&key(), Bytes::from_static(b"{}")).await.unwrap(), PutOutcome::Created);
        assert!(elsewhere.join(key().as_str()).is_file());
        std::fs::remove_file(via_link).unwrap();
        std::fs::remove_dir_all(dir).unwrap();
        std::fs::remove_dir_all(elsewhere).unwrap();
    }

    #[tokio::test]
    async fn a_listing_comes_in_s3_key_order_a_page_at_a_time_from_any_key() {
        use crate::integrity::archive::{Archive, Listing, PAGE};
        let dir = std::env::temp_dir().join(format!("auditstream-dir-{}", rand::random::<u64>()));
        // '.' sorts before '/': the file a.b comes before the folder a/, and a/ before ab
        let mut files = vec!["a.b".to_owned(), "a/b".into(), "a/c/d".into(), "ab".into(), "_auditstream/manifests/x.json".into()];
        files.extend((0..PAGE + 5).map(|i| format!("p/{i:05}.json")));
        for file in &files {
            let path = dir.join(file);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, b"{}").unwrap();
        }
        std::fs::write(dir.join("a/.tmp-123"), b"").unwrap();
        files.sort();
        let store = DirStore::new(&dir);
        let mut listing = Listing::new(&store, "");
        let mut listed = Vec::new();
        while let Some(l) = listing.next().await.unwrap() {
            listed.push(l.key);
        }
        assert_eq!(listed, files, "every file once, in byte order, no leftover temporary file");
        assert_eq!(store.list_page("", None).await.unwrap().len(), PAGE);
        let after_b: Vec<String> = store.list_page("a", Some("a/b")).await.unwrap().into_iter().map(|l| l.key).collect();
        assert_eq!(after_b, ["a/c/d", "ab"]);
        let under: Vec<String> = store.list_page("p/0100", Some("p/01003.json")).await.unwrap().into_iter().map(|l| l.key).collect();
        assert_eq!(under, ["p/01004.json"], "the last of the {} files", PAGE + 5);
        assert_eq!(store.list_page("p/0099", None).await.unwrap().len(), 10);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
