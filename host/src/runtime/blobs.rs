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
    /// a partial file under a valid name.
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

/// Write `bytes` to `path` through a synced temporary file and a rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(&tmp, path)
}
