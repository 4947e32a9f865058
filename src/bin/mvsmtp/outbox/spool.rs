//! The outbox directory of `mvsmtp outbox`: its lock, the message files waiting in it, and
//! the moves into its `sent/` and `failed/` subdirectories.
//!
//! Every move is a rename within one file system, followed by an fsync of both directories,
//! so a crash at any point leaves each message file in exactly one place. A `.reason` file
//! is written and synced before its message is moved, so a moved message never lacks one.

use std::ffi::{OsStr, OsString};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// The lock file in the outbox directory. Its name starts with a dot, so it is never taken
/// for a message.
pub const LOCK_FILE: &str = ".mvsmtp-outbox.lock";

/// The subdirectory for messages that the server accepted.
pub const SENT_DIR: &str = "sent";

/// The subdirectory for messages that the server rejected permanently.
pub const FAILED_DIR: &str = "failed";

/// The suffix of a message that a writer has not finished yet.
pub const UNFINISHED_SUFFIX: &str = ".tmp";

/// The suffix of the file that explains why a message was rejected.
pub const REASON_SUFFIX: &str = ".reason";

/// A reason the outbox directory cannot be used.
#[derive(Debug)]
pub enum OpenError {
    /// The path is missing or not a directory.
    NotADirectory(PathBuf, Option<io::Error>),
    /// Another run holds the lock.
    Locked(PathBuf),
    /// Creating or locking a file failed. The message names the file and the fix.
    Io(String),
}

/// A locked outbox directory. The lock is released when the value is dropped or the
/// process ends, however it ends.
pub struct Spool {
    dir: PathBuf,
    _lock: File,
}

/// A subdirectory that messages are moved into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    Sent,
    Failed,
}

impl Destination {
    pub fn dir_name(self) -> &'static str {
        match self {
            Destination::Sent => SENT_DIR,
            Destination::Failed => FAILED_DIR,
        }
    }
}

impl Spool {
    /// Locks `dir` for this run and creates its `sent/` and `failed/` subdirectories.
    pub fn open(dir: &Path) -> Result<Spool, OpenError> {
        match fs::metadata(dir) {
            Ok(metadata) if metadata.is_dir() => {}
            Ok(_) => return Err(OpenError::NotADirectory(dir.to_path_buf(), None)),
            Err(error) => return Err(OpenError::NotADirectory(dir.to_path_buf(), Some(error))),
        }

        let lock_path = dir.join(LOCK_FILE);
        let lock = match try_lock(&lock_path) {
            Ok(Some(file)) => file,
            Ok(None) => return Err(OpenError::Locked(lock_path)),
            Err(error) => {
                return Err(OpenError::Io(format!("Creating or locking {} failed: {error}. Check the permissions of the outbox directory.", lock_path.display())))
            }
        };

        for name in [SENT_DIR, FAILED_DIR] {
            let path = dir.join(name);
            match fs::create_dir(&path) {
                Ok(()) => sync_directory(dir).map_err(|error| OpenError::Io(format!("Syncing the directory {} failed: {error}.", dir.display())))?,
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists && path.is_dir() => {}
                Err(error) if error.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(OpenError::Io(format!("{} exists but is not a directory, and the outbox needs that name for its subdirectory. Rename the file.", path.display())));
                }
                Err(error) => {
                    return Err(OpenError::Io(format!("Creating the directory {} failed: {error}. Check the permissions of the outbox directory.", path.display())))
                }
            }
        }
        Ok(Spool { dir: dir.to_path_buf(), _lock: lock })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Lists the message files waiting in the directory, sorted by name.
    pub fn pending(&self) -> io::Result<Vec<OsString>> {
        let mut names = Vec::new();
        for entry in fs::read_dir(&self.dir)? {
            let entry = entry?;
            // The file type of a directory entry does not follow symbolic links, so links,
            // subdirectories (sent/ and failed/ among them) and devices are all left alone.
            if entry.file_type()?.is_file() && is_message_name(&entry.file_name()) {
                names.push(entry.file_name());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Moves the message `name` into `destination`, with a `.reason` file beside it when
    /// `reason` is given, and returns the name it got there.
    ///
    /// An earlier message of the same name is never overwritten: the moved file then gets
    /// the first free name of `NAME.1`, `NAME.2` and so on.
    pub fn move_message(&self, name: &OsStr, destination: Destination, reason: Option<&str>) -> io::Result<OsString> {
        let target_dir = self.dir.join(destination.dir_name());
        let target_name = free_name(&target_dir, name)?;

        if let Some(reason) = reason {
            let reason_path = target_dir.join(with_suffix(&target_name, REASON_SUFFIX));
            let mut file = File::create(&reason_path)?;
            file.write_all(reason.as_bytes())?;
            file.sync_all()?;
        }

        fs::rename(self.dir.join(name), target_dir.join(&target_name))?;
        sync_directory(&target_dir)?;
        sync_directory(&self.dir)?;
        Ok(target_name)
    }
}

/// Reports whether a file name in the outbox is a message: not a dotfile, and not a file
/// that its writer is still filling.
pub fn is_message_name(name: &OsStr) -> bool {
    let bytes = name.as_encoded_bytes();
    !bytes.starts_with(b".") && !bytes.ends_with(UNFINISHED_SUFFIX.as_bytes())
}

/// Returns the first of `name`, `name.1`, `name.2`, ... for which neither the file nor its
/// `.reason` file exists in `dir`.
fn free_name(dir: &Path, name: &OsStr) -> io::Result<OsString> {
    let mut candidate = name.to_os_string();
    let mut counter = 0u32;
    loop {
        let taken = dir.join(&candidate).symlink_metadata().is_ok() || dir.join(with_suffix(&candidate, REASON_SUFFIX)).symlink_metadata().is_ok();
        if !taken {
            return Ok(candidate);
        }
        counter += 1;
        if counter == u32::MAX {
            return Err(io::Error::other(format!("no free name for {} in {}", name.to_string_lossy(), dir.display())));
        }
        candidate = with_suffix(name, &format!(".{counter}"));
    }
}

fn with_suffix(name: &OsStr, suffix: &str) -> OsString {
    let mut with = name.to_os_string();
    with.push(suffix);
    with
}

/// Takes an exclusive lock on the file at `path`, creating it. Returns `None` when another
/// process holds the lock.
#[cfg(unix)]
fn try_lock(path: &Path) -> io::Result<Option<File>> {
    use std::os::unix::fs::OpenOptionsExt;
    use std::os::unix::io::AsRawFd;

    let file = OpenOptions::new().read(true).write(true).create(true).truncate(false).mode(0o600).open(path)?;
    loop {
        // SAFETY: the descriptor belongs to `file`, which is open for the whole call.
        let result = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if result == 0 {
            return Ok(Some(file));
        }
        let error = io::Error::last_os_error();
        match error.kind() {
            io::ErrorKind::Interrupted => continue,
            io::ErrorKind::WouldBlock => return Ok(None),
            _ => return Err(error),
        }
    }
}

/// Takes an exclusive lock on the file at `path` by opening it without sharing. Returns
/// `None` when another process has it open.
// NOTE: this Windows form has not been compiled or run by the tests, which run on Linux.
#[cfg(windows)]
fn try_lock(path: &Path) -> io::Result<Option<File>> {
    use std::os::windows::fs::OpenOptionsExt;

    const ERROR_SHARING_VIOLATION: i32 = 32;
    match OpenOptions::new().read(true).write(true).create(true).truncate(false).share_mode(0).open(path) {
        Ok(file) => Ok(Some(file)),
        Err(error) if error.raw_os_error() == Some(ERROR_SHARING_VIOLATION) => Ok(None),
        Err(error) => Err(error),
    }
}

#[cfg(not(any(unix, windows)))]
fn try_lock(_path: &Path) -> io::Result<Option<File>> {
    Err(io::Error::new(io::ErrorKind::Unsupported, "file locks are not supported on this system"))
}

/// Flushes a directory's entries to disk, so that a rename or a new file in it survives a
/// power failure.
#[cfg(unix)]
fn sync_directory(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Windows cannot open a directory as a file without extra flags, and NTFS journals
/// renames itself.
#[cfg(not(unix))]
fn sync_directory(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A directory for one test, removed when the test ends.
    struct TestDir(PathBuf);

    impl TestDir {
        fn new(tag: &str) -> TestDir {
            let path = std::env::temp_dir().join(format!("mvsmtp-spool-{tag}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&path);
            fs::create_dir_all(&path).unwrap();
            TestDir(path)
        }

        fn write(&self, name: &str, contents: &[u8]) {
            fs::write(self.0.join(name), contents).unwrap();
        }

        fn read(&self, relative: &str) -> Vec<u8> {
            fs::read(self.0.join(relative)).unwrap()
        }
    }

    impl Drop for TestDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn message_names_filtered() {
        for name in ["0001.eml", "invoice 42", "a.tmp.eml", "tmp"] {
            assert!(is_message_name(OsStr::new(name)), "{name}");
        }
        for name in [".hidden", ".mvsmtp-outbox.lock", "0002.eml.tmp", ".tmp"] {
            assert!(!is_message_name(OsStr::new(name)), "{name}");
        }
    }

    #[test]
    fn pending_sorted_without_others() {
        let dir = TestDir::new("pending");
        let spool = Spool::open(&dir.0).unwrap();
        for name in ["b", "a", "c.tmp", ".d"] {
            dir.write(name, b"x");
        }
        fs::create_dir(dir.0.join("subdir")).unwrap();
        assert_eq!(spool.pending().unwrap(), ["a", "b"]);
    }

    #[test]
    fn second_lock_rejected() {
        let dir = TestDir::new("lock");
        let first = Spool::open(&dir.0).unwrap();
        assert!(matches!(Spool::open(&dir.0), Err(OpenError::Locked(_))));
        drop(first);
        assert!(Spool::open(&dir.0).is_ok());
    }

    #[test]
    fn move_never_overwrites() {
        let dir = TestDir::new("move");
        let spool = Spool::open(&dir.0).unwrap();
        dir.write("m", b"first");
        assert_eq!(spool.move_message(OsStr::new("m"), Destination::Failed, Some("reason one\n")).unwrap(), "m");
        dir.write("m", b"second");
        assert_eq!(spool.move_message(OsStr::new("m"), Destination::Failed, Some("reason two\n")).unwrap(), "m.1");

        assert_eq!(dir.read("failed/m"), b"first");
        assert_eq!(dir.read("failed/m.reason"), b"reason one\n");
        assert_eq!(dir.read("failed/m.1"), b"second");
        assert_eq!(dir.read("failed/m.1.reason"), b"reason two\n");
        assert!(!dir.0.join("m").exists());
    }

    #[test]
    fn reason_name_not_reused() {
        let dir = TestDir::new("reason-name");
        let spool = Spool::open(&dir.0).unwrap();
        // A message whose own name ends in .reason must not be taken for the reason of "x".
        dir.write("x.reason", b"a message");
        spool.move_message(OsStr::new("x.reason"), Destination::Sent, None).unwrap();
        dir.write("x", b"another");
        assert_eq!(spool.move_message(OsStr::new("x"), Destination::Sent, Some("partial\n")).unwrap(), "x.1");
        assert_eq!(dir.read("sent/x.reason"), b"a message");
        assert_eq!(dir.read("sent/x.1.reason"), b"partial\n");
    }
}
