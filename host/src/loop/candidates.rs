//! Where candidates come from: a queue per target (filled by the watch
//! folder or the API), and an optional generator command asked for one when
//! a finding has none.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use crate::runtime::Plugin;
use crate::store::findings::FindingRecord;

/// A new version of a unit waiting to be proven.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub plugin: Arc<Plugin>,
    /// `watch`, `api`, `generator`, ...
    pub source: String,
}

/// Candidates per target, oldest first.
#[derive(Default)]
pub struct CandidateQueue {
    queues: Mutex<HashMap<String, VecDeque<Candidate>>>,
}

impl CandidateQueue {
    pub fn push(&self, c: Candidate) {
        add(&mut self.queues.lock(), c);
    }

    /// Put `c` first in its target's line (a candidate queued again takes
    /// the place it had); the same bytes already waiting move there.
    pub fn push_front(&self, c: Candidate) {
        let mut q = self.queues.lock();
        let queue = q.entry(c.plugin.name().to_string()).or_default();
        queue.retain(|x| x.plugin.id() != c.plugin.id());
        queue.push_front(c);
    }

    /// The candidate with these bytes waiting for `target`, if any.
    pub fn get(&self, target: &str, sha256: &str) -> Option<Candidate> {
        self.queues.lock().get(target)?.iter().find(|c| c.plugin.id() == sha256).cloned()
    }

    /// Hold exactly `candidates`, in their order (the same bytes twice for
    /// one target are one).
    pub fn replace(&self, candidates: Vec<Candidate>) {
        let mut q = self.queues.lock();
        q.clear();
        for c in candidates {
            add(&mut q, c);
        }
    }

    /// Take these bytes out of `target`'s line (an operator withdrew them).
    pub fn remove(&self, target: &str, sha256: &str) {
        if let Some(q) = self.queues.lock().get_mut(target) {
            q.retain(|c| c.plugin.id() != sha256);
        }
    }

    pub fn pop(&self, target: &str) -> Option<Candidate> {
        self.queues.lock().get_mut(target).and_then(|q| q.pop_front())
    }

    /// Whether these exact bytes wait in `target`'s queue.
    pub fn contains(&self, target: &str, sha256: &str) -> bool {
        self.queues.lock().get(target).is_some_and(|q| q.iter().any(|c| c.plugin.id() == sha256))
    }

    pub fn has(&self, target: &str) -> bool {
        self.queues.lock().get(target).is_some_and(|q| !q.is_empty())
    }

    pub fn len(&self) -> usize {
        self.queues.lock().values().map(|q| q.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Append `c` to its target's queue; the same bytes twice are one
/// candidate.
fn add(queues: &mut HashMap<String, VecDeque<Candidate>>, c: Candidate) {
    let queue = queues.entry(c.plugin.name().to_string()).or_default();
    if !queue.iter().any(|x| x.plugin.id() == c.plugin.id()) {
        queue.push_back(c);
    }
}

/// An external program that writes an improved module on request. It gets
/// the finding, the current module's path and the evidence as JSON on stdin,
/// and the path it must write the `.wasm` to in `KAIZEN_OUTPUT` (also in the
/// JSON as `output`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorConfig {
    /// Program and arguments.
    pub command: Vec<String>,
    pub timeout_secs: u64,
}

/// Why the generator produced nothing.
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    #[error("generator command is empty")]
    Empty,
    #[error("cannot start generator `{0}`: {1}")]
    Spawn(String, std::io::Error),
    #[error("generator timed out after {0} s")]
    Timeout(u64),
    #[error("generator exited with {status}: {stderr}")]
    Failed { status: String, stderr: String },
    #[error("generator wrote no module to {0}")]
    NoOutput(PathBuf),
}

/// Run the generator for `finding`; returns the bytes it wrote.
pub async fn generate(
    cfg: &GeneratorConfig,
    finding: &FindingRecord,
    current_module: &std::path::Path,
    scratch: &std::path::Path,
) -> Result<Vec<u8>, GeneratorError> {
    let (program, args) = cfg.command.split_first().ok_or(GeneratorError::Empty)?;
    std::fs::create_dir_all(scratch).map_err(|e| GeneratorError::Spawn(program.clone(), e))?;
    let output = scratch.join(format!("{}-{}.wasm", finding.target, crate::store::now_ms()));
    let input = serde_json::json!({
        "finding": finding,
        "evidence": finding.evidence,
        "current_module": current_module,
        "output": output,
    });
    let mut child = tokio::process::Command::new(program)
        .args(args)
        .env("KAIZEN_OUTPUT", &output)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| GeneratorError::Spawn(program.clone(), e))?;
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(input.to_string().as_bytes()).await;
    }
    let out = tokio::time::timeout(Duration::from_secs(cfg.timeout_secs.max(1)), child.wait_with_output())
        .await
        .map_err(|_| GeneratorError::Timeout(cfg.timeout_secs))?
        .map_err(|e| GeneratorError::Spawn(program.clone(), e))?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(GeneratorError::Failed {
            status: out.status.to_string(),
            stderr: stderr.chars().take(500).collect(),
        });
    }
    let bytes = std::fs::read(&output).map_err(|_| GeneratorError::NoOutput(output.clone()))?;
    let _ = std::fs::remove_file(&output);
    Ok(bytes)
}

/// Why no candidate came from the generator.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    #[error(transparent)]
    Load(#[from] crate::runtime::LoadError),
    #[error("cannot record the generated module: {0}")]
    Store(#[from] crate::store::StoreError),
}

/// Ask the generator for a candidate for `finding`, load it and record its
/// module.
pub async fn from_generator(
    ctx: &super::Ctx,
    finding: &FindingRecord,
    cfg: &GeneratorConfig,
    current: &Arc<Plugin>,
) -> Result<Candidate, GenerateError> {
    let scratch = ctx.runtime.data_dir().join("generated");
    let bytes = generate(cfg, finding, current.module_path(), &scratch).await?;
    let plugin = ctx.runtime.load("generated.wasm", &bytes)?;
    super::record_module(&ctx.db, &plugin).await?;
    Ok(Candidate { plugin, source: "generator".into() })
}
