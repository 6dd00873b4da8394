//! Test unit `chatty`: prints to its stdout and stderr, as guests in every
//! language do (a `print`, a `console.log`, a traceback), then answers or
//! traps, chosen by the request:
//! `talk:<n>` prints `n` numbered lines of 64 bytes to stdout and one to
//! stderr, then answers `said <n>`; `trap` prints three lines to each
//! stream (the last stdout line without a newline), then panics.

use std::io::Write;

use kaizen_sdk::{CallContext, Config, PluginInfo, PluginKind, Unit, UnitError};

pub struct Chatty;

impl Unit for Chatty {
    fn describe() -> PluginInfo {
        PluginInfo::new(
            "chatty",
            PluginKind::Unit,
            env!("CARGO_PKG_VERSION"),
            "Test unit that prints, then answers or traps",
        )
    }

    fn invoke(_ctx: &CallContext, request: &[u8], _config: &Config) -> Result<Vec<u8>, UnitError> {
        match request {
            b"trap" => {
                for i in 1..=3 {
                    println!("stdout before the trap {i}");
                    eprintln!("stderr before the trap {i}");
                }
                print!("unfinished stdout line");
                let _ = std::io::stdout().flush();
                panic!("chatty asked to trap");
            }
            other if other.starts_with(b"talk:") => {
                let n: usize = std::str::from_utf8(&other[5..]).ok().and_then(|t| t.parse().ok()).unwrap_or(0);
                let mut out = std::io::stdout().lock();
                for i in 0..n {
                    // 64 bytes with the newline.
                    let _ = writeln!(out, "chatty line {i:06} {}", "x".repeat(44));
                }
                let _ = out.flush();
                eprintln!("chatty said {n} lines");
                Ok(format!("said {n}").into_bytes())
            }
            other => Ok(other.to_vec()),
        }
    }
}

kaizen_sdk::export_unit!(Chatty);
