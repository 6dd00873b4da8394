//! Content-addressed module bytes on disk: every version ever loaded is kept
//! under its sha256, so a rollback, even after a restart, restores exactly
//! the bytes that served before.

use std::io::Write;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Hex sha256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// A directory of `<sha256>.wasm` files.
#[derive(Debug, Clone)]
pub struct Blobs {
    dir: PathBuf,
}

impl Blobs {
    pub fn open(dir: impl Into<PathBuf>) -> std::io::Result<Blobs> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Blobs { dir })
    }

    /// Where the bytes of `sha` live (whether or not they exist).
    pub fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}.wasm"))
    }

    /// Store `bytes` (a no-op when already present) and return their sha256.
    /// Written to a temporary name, synced, then renamed: a crash never leaves
    /// a partial file under a valid name, and writers racing on the same
    /// bytes each succeed (the last rename replaces identical content).
    pub fn put(&self, bytes: &[u8]) -> std::io::Result<String> {
        let sha = sha256_hex(bytes);
        let path = self.path(&sha);
        if !path.exists() {
            write_atomic(&path, bytes)?;
        }
        Ok(sha)
    }

    /// The bytes of `sha`, checked against their hash.
    pub fn get(&self, sha: &str) -> std::io::Result<Vec<u8>> {
        let bytes = std::fs::read(self.path(sha))?;
        if sha256_hex(&bytes) != sha {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("module {sha} is corrupt on disk (hash mismatch)"),
            ));
        }
        Ok(bytes)
    }
}

/// Write `bytes` to `path` through a synced temporary file of a unique name
/// in the same directory, a rename over `path`, and a sync of the
/// directory (so the rename itself survives a crash). Concurrent writers
/// never share a temporary file; each rename is atomic, so a reader sees
/// the old file or a whole new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new().prefix(".partial-").tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    if let Ok(d) = std::fs::File::open(dir) {
        // Best effort: some filesystems refuse to sync a directory handle.
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two uploads of the same new module at once once failed one time in
    /// three: both wrote one temporary name and the second rename found it
    /// gone. Every racing writer must succeed and leave the exact bytes.
    #[test]
    fn racing_puts_of_the_same_bytes_all_succeed() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let bytes: Vec<u8> = (0..256 * 1024).map(|i| (i % 251) as u8).collect();
        for round in 0..20 {
            let mut bytes = bytes.clone();
            bytes[0] = round;
            let shas: Vec<String> = std::thread::scope(|s| {
                let handles: Vec<_> = (0..8).map(|_| s.spawn(|| blobs.put(&bytes))).collect();
                handles.into_iter().map(|h| h.join().unwrap().expect("every racing put succeeds")).collect()
            });
            assert!(shas.windows(2).all(|w| w[0] == w[1]));
            assert_eq!(blobs.get(&shas[0]).unwrap(), bytes);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| !e.file_name().to_string_lossy().ends_with(".wasm"))
            .collect();
        assert!(leftovers.is_empty(), "no temporary file is left behind: {leftovers:?}");
    }
}
