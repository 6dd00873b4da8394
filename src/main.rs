//! The `kaizen` command.

mod demo;
mod plugin_check;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

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
    /// Run the seed story on the real host and bundled plugins: the buggy
    /// calculator v1 is detected, v2 is proven and rolled out stepwise, the
    /// slow v3 is failed by the judge and rolled back.
    Demo {
        /// Where modules and compiled artifacts are kept.
        #[arg(long, default_value = "kaizen-data", env = "KAIZEN_DATA_DIR")]
        data_dir: PathBuf,
        /// `postgres://…` to keep the state in PostgreSQL instead of the
        /// SQLite file in the data directory.
        #[arg(long, env = "DATABASE_URL")]
        database_url: Option<String>,
        /// Calls per second the built-in traffic generator offers.
        #[arg(long, default_value_t = 500)]
        rate: u64,
    },
    /// Test harness: record executions forever, printing `acked N` after
    /// each flush (used by the crash-consistency test, which kills it).
    #[command(name = "__telemetry-soak", hide = true)]
    TelemetrySoak {
        #[arg(long)]
        db: PathBuf,
    },
    /// Tools for plugin authors.
    Plugin {
        #[command(subcommand)]
        command: PluginCommand,
    },
}

#[derive(Subcommand)]
enum PluginCommand {
    /// Validate a module against the contract without deploying it: world,
    /// self-description, imports, size, and why it would be refused.
    Check {
        file: PathBuf,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("KAIZEN_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    match Cli::parse().command {
        Command::Demo { data_dir, database_url, rate } => demo::run(&data_dir, database_url, rate),
        Command::Plugin { command: PluginCommand::Check { file, json } } => plugin_check::run(&file, json),
        Command::TelemetrySoak { db } => soak(&db),
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
            println!("acked {seq}");
            std::io::stdout().flush()?;
        }
    })
}
