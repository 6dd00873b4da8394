//! The `kaizen` command: the service (`serve`, `demo`), a client for a
//! running host, and tools for plugin authors.

#[macro_use]
mod output;
mod backtest;
mod client;
mod logs;
mod plugin;
mod serve;
mod table;

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use client::Remote;
use logs::init_logs;

#[derive(Parser)]
#[command(
    name = "kaizen",
    version,
    about = "A WebAssembly plugin host that keeps services improving themselves, safely"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the host: HTTP API, dashboard, watch folder, loop.
    Serve(serve::ServeArgs),
    /// The seed story on the real service: calculator 1.0.0 crashes on a
    /// third of its calls, 2.0.0 is proven and rolled out stepwise, the slow
    /// 3.0.0 is failed by the judge and rolled back — in the terminal and on
    /// the dashboard. Same as `kaizen serve --demo`.
    Demo(serve::DemoArgs),
    /// Loop state, slots with current and previous versions, recent findings.
    Status(Remote),
    /// Per unit and version: calls answered, refused as the caller's error
    /// (invalid-input) and failed by the unit, since start and in the last
    /// minute, with latency.
    Units(Remote),
    /// Upload a module: detectors and strategies deploy at once; a unit
    /// becomes a candidate for the loop (or deploys with --now).
    Deploy {
        /// The module to upload (a `.wasm` plugin component).
        file: PathBuf,
        /// Deploy a unit directly instead of through the loop's proving.
        #[arg(long)]
        now: bool,
        /// Replace the bytes of a version the host already has with other
        /// bytes (audited). Without it such a module is refused: a
        /// version's bytes never change, so bump the version instead.
        #[arg(long)]
        replace: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Propose new values for a unit's tunables (`chunk_size=64 …`): a
    /// config candidate of the module it serves, proven and rolled out
    /// stepwise like a new version; a tunable not declared or a value out of
    /// bounds is refused.
    Tune {
        /// The unit, e.g. `batcher`.
        unit: String,
        /// KEY=VALUE for each tunable to change.
        #[arg(required = true)]
        settings: Vec<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Roll a slot back to its previous version.
    Rollback {
        /// The slot (plugin name) to roll back, e.g. `calculator`.
        slot: String,
        /// Why, for the audit trail (default: "operator rollback from the CLI").
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Abort the rollout of a unit: its candidate is taken back and the
    /// version it started from serves every call. While a rollout runs,
    /// direct deploys and rollbacks of its slot are refused.
    Abort {
        /// The unit whose rollout to abort.
        unit: String,
        /// Why, for the audit trail (default: "operator abort from the CLI").
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Pause the loop (calls keep being served and recorded).
    Pause {
        /// Why, shown in the status and the audit trail (default: "pause from the CLI").
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resume the loop.
    Resume {
        /// Why, for the audit trail (default: "resume from the CLI").
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Emergency stop: freeze every rollout where it stands (persisted).
    Stop {
        /// Lift the stop instead.
        #[arg(long)]
        release: bool,
        /// Why, shown in the status and the audit trail (default: "stop from the CLI").
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Declare a change freeze: no rollout starts, and rollouts in progress
    /// hold at their step until it ends (persisted; it lapses by itself).
    Freeze {
        /// How long, e.g. `2h`, `3d`, `90s`.
        #[arg(long = "for", value_parser = client::parse_duration, required_unless_present = "lift")]
        duration: Option<u64>,
        /// Lift the declared freeze instead.
        #[arg(long, conflicts_with = "duration")]
        lift: bool,
        /// Why, shown wherever the freeze holds something.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run one loop cycle now and print its report: each attempt, and why
    /// each finding that led to none did not.
    Cycle(Remote),
    /// Findings: list them, or acknowledge, snooze or close one (each
    /// audited).
    Findings {
        #[command(subcommand)]
        command: FindingsCommand,
    },
    /// Candidates waiting for the loop: list them with why each waits, or
    /// withdraw one before the loop takes it up (audited).
    Candidates {
        #[command(subcommand)]
        command: CandidatesCommand,
    },
    /// Circuit breakers: list them, or force one open (calls fail fast
    /// with `circuit-open`) or closed (each audited).
    Breakers {
        #[command(subcommand)]
        command: BreakersCommand,
    },
    /// A slot's deployment history.
    History {
        /// The slot (plugin name) whose history to show.
        slot: String,
        /// At most this many entries (and improvements), newest first.
        #[arg(long, default_value_t = 20)]
        limit: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// What fixed what: each change promoted after a finding, by target and
    /// finding kind, with what the judge measured and how often it held.
    Knowledge {
        /// Only this unit.
        unit: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Invoke a unit; PAYLOAD is the request (or `@FILE`, or stdin when absent).
    Invoke {
        /// The unit to call.
        unit: String,
        /// The request: the text itself, `@FILE` for a file's bytes, or
        /// nothing to read stdin.
        payload: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run detectors over recorded telemetry (a database or a CSV of
    /// executions) and print what they would have found.
    Backtest(backtest::BacktestArgs),
    /// Print the HTTP API's OpenAPI 3 document (also served at /openapi.json).
    Openapi,
    /// Tools for plugin authors.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
    /// Test harness: record executions forever, printing `acked N` after
    /// each flush (used by the crash-consistency test, which kills it).
    #[command(name = "__telemetry-soak", hide = true)]
    TelemetrySoak {
        /// The SQLite file to record into.
        #[arg(long)]
        db: PathBuf,
    },
}

#[derive(Subcommand)]
enum CandidatesCommand {
    /// Every queued candidate in its place in line, with why the loop has
    /// not taken it up yet (no such unit hosted, an improvement under way,
    /// the safety controller's reason, ...).
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Take a queued candidate out of the queue before the loop takes it
    /// up (one taken up already is aborted with `kaizen abort UNIT`).
    Withdraw {
        /// The unit it is for.
        unit: String,
        /// Its version, or its sha256 (a prefix of six or more characters).
        candidate: String,
        /// Why, for the audit trail (default: "withdrawn from the CLI").
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum BreakersCommand {
    /// Every unit's breaker: closed (with its recent failures), open (how
    /// long more, and why) or half-open.
    List {
        #[command(flatten)]
        remote: Remote,
    },
    /// Open a unit's breaker: its calls fail fast with `circuit-open` (or go
    /// to its circuit fallback) until it half-opens.
    Open {
        /// The unit whose breaker to open.
        unit: String,
        /// How long, e.g. `90s`, `30m` (default 30s; at most a year).
        #[arg(long = "for", value_parser = client::parse_duration)]
        duration: Option<u64>,
        /// Why, for the audit trail and the breaker's state.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Close a unit's breaker: its calls are made again.
    Close {
        /// The unit whose breaker to close.
        unit: String,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum FindingsCommand {
    /// Findings newest first, with their state, version and why the loop
    /// made no attempt on them.
    List {
        /// Only findings in this state: open, addressed, acknowledged,
        /// snoozed, resolved or closed.
        #[arg(long)]
        status: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        remote: Remote,
    },
    /// Acknowledge a finding: no more notifications about it; the loop may
    /// still act on it, and it resolves by itself when it clears.
    Ack {
        /// The finding's id (`kaizen findings list`).
        id: i64,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Snooze a finding: the loop leaves it alone for a while, then it
    /// opens again if still reported.
    Snooze {
        /// The finding's id (`kaizen findings list`).
        id: i64,
        /// How long: 90s, 30m, 2h, 1d.
        #[arg(long = "for", value_parser = client::parse_duration)]
        duration: u64,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Close a finding: the loop leaves it alone until it clears and
    /// recurs, which opens a new occurrence linked to this one.
    Close {
        /// The finding's id (`kaizen findings list`).
        id: i64,
        /// Why, for the audit trail.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate a module against the contract without deploying it: world,
    /// self-description, imports, size, and why it would be refused.
    ///
    /// The compiled module is cached by its sha256 and the engine's
    /// configuration, so a second check of the same file takes
    /// milliseconds: in `$KAIZEN_CACHE_DIR` when set, else the platform's
    /// cache directory (`$XDG_CACHE_HOME/kaizen/compiled`, by default
    /// `~/.cache/kaizen/compiled` on Linux).
    Check {
        /// The module to check (a `.wasm` file).
        file: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
        /// Compile afresh, neither reading nor writing the cache.
        #[arg(long)]
        no_cache: bool,
    },
    /// Scaffold a plugin that builds and passes its own test.
    New(plugin::new::NewArgs),
    /// Write a world's C bindings (and the WIT) for a C plugin.
    Bindings(plugin::build::BindingsArgs),
    /// Wrap a core module (e.g. from clang) into a plugin component.
    Componentize(plugin::build::ComponentizeArgs),
}

/// Errors end the process with their chain of causes on one line and exit
/// status 1 — never a backtrace: they are ordinary failures (a refused
/// request, a bad setting), not bugs, even where `RUST_BACKTRACE` is set.
fn main() -> std::process::ExitCode {
    match run_cli() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, never a captured backtrace.
            note!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// `e` and its causes on one line, each said once: a link whose message
/// already spells its cause's (thiserror's `"…: {0}"` beside `#[from]`)
/// does not repeat it.
fn one_line(e: &anyhow::Error) -> String {
    let mut said: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !said.last().is_some_and(|last| last.contains(&text)) {
            said.push(text);
        }
    }
    said.join(": ")
}

fn run_cli() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::serve(args),
        Command::Demo(args) => serve::demo(args),
        command => {
            init_logs("warn", false);
            run(command)
        }
    }
}

fn run(command: Command) -> anyhow::Result<()> {
    use client::Client;
    match command {
        Command::Status(r) => Client::new(&r, false)?.status(),
        Command::Units(r) => Client::new(&r, false)?.units(),
        Command::Deploy { file, now, replace, remote } => Client::new(&remote, false)?.deploy(&file, now, replace),
        Command::Tune { unit, settings, remote } => Client::new(&remote, false)?.tune(&unit, &settings),
        Command::Rollback { slot, reason, remote } => Client::new(&remote, false)?.rollback(&slot, reason),
        Command::Abort { unit, reason, remote } => Client::new(&remote, false)?.abort(&unit, reason),
        Command::Pause { reason, remote } => Client::new(&remote, false)?.control("pause", reason),
        Command::Resume { reason, remote } => Client::new(&remote, false)?.control("resume", reason),
        Command::Stop { release, reason, remote } => {
            Client::new(&remote, false)?.control(if release { "release" } else { "stop" }, reason)
        }
        Command::Freeze { duration, lift, reason, remote } => {
            Client::new(&remote, false)?.freeze(if lift { None } else { duration }, reason)
        }
        Command::Cycle(r) => Client::new(&r, false)?.cycle(),
        Command::Findings { command } => match command {
            FindingsCommand::List { status, limit, remote } => {
                Client::new(&remote, false)?.findings(status.as_deref(), limit)
            }
            FindingsCommand::Ack { id, reason, remote } => {
                Client::new(&remote, false)?.finding_action(id, "acknowledge", reason, None)
            }
            FindingsCommand::Snooze { id, duration, reason, remote } => {
                Client::new(&remote, false)?.finding_action(id, "snooze", reason, Some(duration))
            }
            FindingsCommand::Close { id, reason, remote } => {
                Client::new(&remote, false)?.finding_action(id, "close", reason, None)
            }
        },
        Command::Candidates { command } => match command {
            CandidatesCommand::List { remote } => Client::new(&remote, false)?.candidates(),
            CandidatesCommand::Withdraw { unit, candidate, reason, remote } => {
                Client::new(&remote, false)?.withdraw(&unit, &candidate, reason)
            }
        },
        Command::Breakers { command } => match command {
            BreakersCommand::List { remote } => Client::new(&remote, false)?.breakers(),
            BreakersCommand::Open { unit, duration, reason, remote } => {
                Client::new(&remote, false)?.force_breaker(&unit, "open", duration.map(|s| s * 1000), reason)
            }
            BreakersCommand::Close { unit, reason, remote } => {
                Client::new(&remote, false)?.force_breaker(&unit, "closed", None, reason)
            }
        },
        Command::History { slot, limit, remote } => Client::new(&remote, false)?.history(&slot, limit),
        Command::Knowledge { unit, remote } => Client::new(&remote, false)?.knowledge(unit.as_deref()),
        Command::Invoke { unit, payload, remote } => Client::new(&remote, true)?.invoke(&unit, payload),
        Command::Backtest(args) => backtest::run(args),
        Command::Openapi => {
            out!("{}", kaizen_service::api::openapi().to_pretty_json()?);
            Ok(())
        }
        Command::Plugin { command: PluginCommand::Check { file, json, no_cache } } => {
            plugin::check::run(&file, json, !no_cache)
        }
        Command::Plugin { command: PluginCommand::New(args) } => plugin::new::run(args),
        Command::Plugin { command: PluginCommand::Bindings(args) } => plugin::build::bindings(args),
        Command::Plugin { command: PluginCommand::Componentize(args) } => plugin::build::componentize(args),
        Command::TelemetrySoak { db } => soak(&db),
        Command::Serve(_) | Command::Demo(_) => unreachable!("handled in main"),
    }
}

fn soak(path: &std::path::Path) -> anyhow::Result<()> {
    use kaizen_host::store::executions::{Execution, Outcome};
    use kaizen_host::telemetry::{FullPolicy, Telemetry, TelemetryConfig};
    use std::io::Write;
    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async {
        let db = kaizen_host::store::Db::open_sqlite_file(path).await?;
        let config = TelemetryConfig {
            full_policy: FullPolicy::Block { max_wait_ms: 60_000 },
            max_batch: 700,
            ..Default::default()
        };
        let t = Telemetry::start(db, config).await?;
        let mut seq = 0u64;
        loop {
            for _ in 0..500 {
                t.recorder().record(Execution {
                    target: "calculator".into(),
                    version: "1.0.0".into(),
                    started_at: kaizen_host::store::now_ms(),
                    duration_us: 100,
                    outcome: Outcome::Ok,
                    error_class: None,
                    message: Some(format!("seq={seq}")),
                    request: None,
                });
                seq += 1;
            }
            t.recorder().flush().await;
            out!("acked {seq}");
            std::io::stdout().flush()?;
        }
    })
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every command, positional argument and option says what it is in
    /// `--help`: walk the whole command tree.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            let path = format!("{path} {}", cmd.get_name());
            if cmd.get_about().is_none() && !cmd.is_hide_set() && path.contains(' ') && cmd.get_name() != "help" {
                missing.push(format!("{path} (the command)"));
            }
            for arg in cmd.get_arguments() {
                let builtin = matches!(arg.get_id().as_str(), "help" | "version");
                if !builtin && arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                walk(sub, &path, missing);
            }
        }
        let mut missing = Vec::new();
        let mut cmd = super::Cli::command();
        cmd.build();
        walk(&cmd, "", &mut missing);
        assert!(missing.is_empty(), "arguments without help text: {missing:#?}");
        cmd.debug_assert();
    }
}
