//! What a guest prints. Its stdout and stderr go to the host's log line by
//! line (target `kaizen::guest`, with the plugin, its version, the call id
//! and the stream), at most [`LOGGED_PER_CALL`] bytes per call — the rest is
//! counted and the cut is marked in the log — and the last lines are kept to
//! explain a trap: a Python traceback or a Rust panic message reaches the
//! call's error.
//!
//! A call id names one caller's call across its attempts and in the log:
//! whoever takes a call runs it in [`CallId::scope`] (the HTTP invoke does,
//! and answers with the id in `x-kaizen-call-id`); a call made outside one
//! (the loop's detector passes, proofs) gets an id of its own per attempt.

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::task::{Context, Poll};

use wasmtime_wasi::cli::{IsTerminal, StdoutStream};

/// Bytes of one call's output that reach the log.
pub const LOGGED_PER_CALL: usize = 16 << 10;
/// Bytes of output kept (the newest) to explain a trap.
const TAIL_BYTES: usize = 4096;
/// Lines of that tail a trap's error carries.
const TAIL_LINES: usize = 12;
/// A line longer than this is logged in pieces of this size.
const MAX_LINE: usize = 2048;

/// The id of one caller's call, as it appears in the log and in
/// `x-kaizen-call-id`: 16 hex digits, unique within the host's run and
/// (started from the clock) across restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CallId(pub u64);

tokio::task_local! {
    static CURRENT: CallId;
}

/// The next id: started from the clock (µs), so a restarted host does not
/// reuse the ids of its previous run.
static NEXT: LazyLock<AtomicU64> = LazyLock::new(|| {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    AtomicU64::new(now.as_micros() as u64)
});

impl CallId {
    /// A new id.
    pub fn next() -> CallId {
        CallId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// The id of the call the current task runs, if it runs in a scope.
    pub fn current() -> Option<CallId> {
        CURRENT.try_with(|c| *c).ok()
    }

    /// Run `f` as the call `self`: the guests it calls log with this id.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        CURRENT.scope(self, f).await
    }
}

impl fmt::Display for CallId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// Which of the guest's streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One store's output: both streams, one budget.
#[derive(Clone)]
pub struct GuestOutput(Arc<Mutex<Capture>>);

struct Capture {
    plugin: String,
    version: String,
    call: Option<CallId>,
    /// Bytes logged in this call, and those past the budget.
    logged: usize,
    dropped: usize,
    /// The unfinished line of each stream.
    partial: [Vec<u8>; 2],
    /// The newest bytes of both streams as printed.
    tail: VecDeque<u8>,
}

impl GuestOutput {
    pub fn new(plugin: &str, version: &str) -> GuestOutput {
        GuestOutput(Arc::new(Mutex::new(Capture {
            plugin: plugin.into(),
            version: version.into(),
            call: None,
            logged: 0,
            dropped: 0,
            partial: [Vec::new(), Vec::new()],
            tail: VecDeque::new(),
        })))
    }

    /// The pipe WASI writes `stream` into.
    pub fn pipe(&self, stream: Stream) -> Pipe {
        Pipe { output: self.clone(), stream }
    }

    /// A new call begins on this store: what the previous one left
    /// unfinished is logged, and the budget and the tail start afresh.
    pub fn begin(&self, call: CallId) {
        let mut c = self.0.lock().unwrap();
        c.finish();
        c.call = Some(call);
        c.logged = 0;
        c.dropped = 0;
        c.tail.clear();
    }

    /// The call this store runs now.
    pub fn call(&self) -> Option<CallId> {
        self.0.lock().unwrap().call
    }

    /// Everything kept of this call's output, oldest first.
    pub fn tail_text(&self) -> String {
        let c = self.0.lock().unwrap();
        let (a, b) = c.tail.as_slices();
        let mut bytes = a.to_vec();
        bytes.extend_from_slice(b);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The last lines of this call's output, for a trap's error; `None`
    /// when it printed nothing.
    pub fn last_lines(&self) -> Option<String> {
        let text = self.tail_text();
        let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        if lines.is_empty() {
            return None;
        }
        let from = lines.len().saturating_sub(TAIL_LINES);
        Some(lines[from..].join("\n"))
    }
}

impl Capture {
    fn write(&mut self, stream: Stream, buf: &[u8]) {
        self.tail.extend(buf);
        let excess = self.tail.len().saturating_sub(TAIL_BYTES);
        self.tail.drain(..excess);
        let i = stream as usize;
        self.partial[i].extend_from_slice(buf);
        while let Some(end) = self.partial[i].iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial[i].drain(..=end).collect();
            self.emit(stream, &line);
        }
        while self.partial[i].len() >= MAX_LINE {
            let piece: Vec<u8> = self.partial[i].drain(..MAX_LINE).collect();
            self.emit(stream, &piece);
        }
    }

    /// Log one line, within the call's budget.
    fn emit(&mut self, stream: Stream, line: &[u8]) {
        let text = String::from_utf8_lossy(line);
        let text = text.trim_end_matches(['\n', '\r']);
        if self.logged + line.len() > LOGGED_PER_CALL {
            if self.dropped == 0 {
                let (plugin, version, call) = (&self.plugin, &self.version, self.call_text());
                tracing::warn!(target: "kaizen::guest", plugin, version, call, "[output truncated: this call printed more than {LOGGED_PER_CALL} bytes; the rest is not logged]");
            }
            self.dropped += line.len();
            return;
        }
        self.logged += line.len();
        let (plugin, version, call, stream) = (&self.plugin, &self.version, self.call_text(), stream.name());
        tracing::info!(target: "kaizen::guest", plugin, version, call, stream, "{text}");
    }

    /// Log the unfinished lines and how much was not logged.
    fn finish(&mut self) {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let rest = std::mem::take(&mut self.partial[stream as usize]);
            if !rest.is_empty() {
                self.emit(stream, &rest);
            }
        }
        if self.dropped > 0 {
            let (plugin, version, call, dropped) = (&self.plugin, &self.version, self.call_text(), self.dropped);
            tracing::warn!(target: "kaizen::guest", plugin, version, call, dropped, "[output truncated: {dropped} bytes of this call's output were not logged]");
            self.dropped = 0;
        }
    }

    fn call_text(&self) -> String {
        self.call.map(|c| c.to_string()).unwrap_or_default()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        self.finish();
    }
}

/// One stream of a store's output, as WASI sees it. Never fails a write.
#[derive(Clone)]
pub struct Pipe {
    output: GuestOutput,
    stream: Stream,
}

impl IsTerminal for Pipe {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for Pipe {
    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }
}

impl tokio::io::AsyncWrite for Pipe {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.output.0.lock().unwrap().write(self.stream, buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_split_per_stream_and_the_tail_keeps_the_last_ones() {
        let out = GuestOutput::new("p", "1.0.0");
        out.begin(CallId(7));
        {
            let mut c = out.0.lock().unwrap();
            c.write(Stream::Stdout, b"one\ntw");
            c.write(Stream::Stderr, b"err\n");
            c.write(Stream::Stdout, b"o\n");
            assert!(c.partial.iter().all(Vec::is_empty), "complete lines are logged at once");
            for i in 0..100 {
                c.write(Stream::Stdout, format!("line {i}\n").as_bytes());
            }
        }
        let last = out.last_lines().unwrap();
        assert_eq!(last.lines().count(), TAIL_LINES);
        assert!(last.ends_with("line 99"), "{last}");
        out.begin(CallId(8));
        assert_eq!(out.last_lines(), None, "a new call starts with an empty tail");
    }

    #[test]
    fn the_budget_counts_what_was_logged_and_what_was_not() {
        let out = GuestOutput::new("p", "1.0.0");
        out.begin(CallId(1));
        let line = [b'x'; 1023].iter().copied().chain([b'\n']).collect::<Vec<u8>>();
        let mut c = out.0.lock().unwrap();
        for _ in 0..20 {
            c.write(Stream::Stdout, &line);
        }
        assert_eq!((c.logged, c.dropped), (LOGGED_PER_CALL, 4 * 1024));
    }

    #[test]
    fn ids_are_unique_and_scoped() {
        let (a, b) = (CallId::next(), CallId::next());
        assert_ne!(a, b);
        assert_eq!(CallId::current(), None);
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        assert_eq!(rt.block_on(a.scope(async { CallId::current() })), Some(a));
        assert_eq!(a.to_string().len(), 16);
    }
}
