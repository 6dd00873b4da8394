//! Compiled components on disk, keyed by the module's sha256 and the engine's
//! compatibility hash, so each module is compiled once per engine
//! configuration and later loads are a `deserialize` (an mmap) instead of a
//! Cranelift run.

use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use wasmtime::Engine;
use wasmtime::component::Component;

use super::blobs::write_atomic;

/// Where a loaded component's machine code lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    /// Mapped from the cached artifact: loads of one module share the pages.
    Shared,
    /// Copied into pages of its own: a rollout's matched control, whose
    /// code must be as cold in the CPU's caches as a candidate's own,
    /// not kept warm by the serving version's calls on the same pages.
    Private,
}

/// The compiled-component cache.
pub struct CompiledCache {
    dir: PathBuf,
    engine_key: String,
}

/// Where a component came from, for the loading-cost figures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheOutcome {
    Hit,
    Compiled,
}

impl CompiledCache {
    pub fn open(dir: impl Into<PathBuf>, engine: &Engine) -> std::io::Result<CompiledCache> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut h);
        env!("CARGO_PKG_VERSION").hash(&mut h);
        Ok(CompiledCache { dir, engine_key: format!("{:016x}", h.finish()) })
    }

    fn path(&self, sha: &str) -> PathBuf {
        self.dir.join(format!("{sha}-{}.cwasm", self.engine_key))
    }

    /// The compiled component for `bytes` (whose hash is `sha`): from the
    /// cache when present and loadable, else compiled and stored. A cached
    /// artifact is mapped from its file, so every load of one module shares
    /// its machine code's pages.
    pub fn load(&self, engine: &Engine, sha: &str, bytes: &[u8]) -> wasmtime::Result<(Component, CacheOutcome)> {
        self.load_as(engine, sha, bytes, Code::Shared)
    }

    /// [`CompiledCache::load`], with the machine code in pages of its own
    /// ([`Code::Private`]) or mapped from the cached file.
    pub fn load_as(
        &self,
        engine: &Engine,
        sha: &str,
        bytes: &[u8],
        code: Code,
    ) -> wasmtime::Result<(Component, CacheOutcome)> {
        let path = self.path(sha);
        if path.exists() {
            // SAFETY: the file was written by `Engine::precompile_component`
            // of an engine with the same compatibility hash (the key in its
            // name), under our data directory; wasmtime re-checks the header.
            let loaded = match code {
                Code::Shared => unsafe { Component::deserialize_file(engine, &path) },
                Code::Private => std::fs::read(&path)
                    .map_err(wasmtime::Error::from)
                    .and_then(|compiled| unsafe { Component::deserialize(engine, &compiled) }),
            };
            match loaded {
                Ok(c) => return Ok((c, CacheOutcome::Hit)),
                Err(e) => {
                    tracing::warn!(file = %path.display(), "stale compiled artifact, recompiling: {e:#}");
                    let _ = std::fs::remove_file(&path);
                }
            }
        }
        let compiled = engine.precompile_component(bytes)?;
        if let Err(e) = write_atomic(&path, &compiled) {
            tracing::warn!(file = %path.display(), "cannot cache compiled component: {e}");
        }
        // SAFETY: `compiled` was produced just now by this engine.
        let component = unsafe { Component::deserialize(engine, &compiled)? };
        Ok((component, CacheOutcome::Compiled))
    }
}
