//! The command's output on stdout. A reader that stops early (`kaizen
//! status | head -1`) closes the pipe: that is not an error of the command,
//! so a broken pipe ends it quietly with exit status 0 — never a panic
//! (which `println!` would do) and never a backtrace.

use std::io::Write;

/// Write one line (what `out!` formats) to stdout.
pub fn line(args: std::fmt::Arguments<'_>) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_fmt(args).and_then(|()| o.write_all(b"\n")) {
        closed(&e);
    }
}

/// Write to stderr, ignoring a closed one: there is nowhere left to say it.
pub fn note(args: std::fmt::Arguments<'_>) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_fmt(args).and_then(|()| e.write_all(b"\n"));
}

/// stdout cannot be written: the reader is gone (exit 0), or something
/// else went wrong (said on stderr, exit 1).
fn closed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    note(format_args!("error: cannot write to stdout: {e}"));
    std::process::exit(1);
}

/// `println!` for the command's output: see the module.
macro_rules! out {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($t:tt)*) => {
        $crate::output::line(format_args!($($t)*))
    };
}

/// `eprintln!` that never panics.
macro_rules! note {
    ($($t:tt)*) => {
        $crate::output::note(format_args!($($t)*))
    };
}
