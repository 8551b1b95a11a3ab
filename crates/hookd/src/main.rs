//! The `hookd` binary: parses the command line and runs a subcommand.

use std::process::ExitCode;

use clap::Parser;
use hookd::cli::{self, Cli, Command};

/// mimalloc instead of glibc's allocator: under load glibc's spent about a fifth of the request
/// threads' time in `malloc`, `free` and their consolidation (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format == "json");
    if let Command::Verify(args) = cli.command {
        return cli::verify::run(args);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("hookd: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Serve(args) => cli::serve::run(args).await,
            Command::Token(cmd) => cli::token::run(cmd).await,
            Command::Migrate(args) => cli::migrate::run(args).await,
            Command::Catalog(cmd) => cli::catalog::run(cmd).await,
            Command::Listen(args) => cli::listen::run(args).await,
            Command::Trigger(args) => cli::trigger::run(args).await,
            Command::Receive(args) => cli::receive::run(args).await,
            Command::Openapi(args) => cli::openapi::run(args).await,
            Command::Prune(args) => cli::prune::run(args).await,
            Command::Secrets(cmd) => cli::secrets::run(cmd).await,
            Command::Verify(_) => unreachable!("handled above"),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hookd: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs go to stderr (stdout is for output such as tokens); `RUST_LOG` sets the level,
/// `--log-format json` (or `HOOKD_LOG_FORMAT=json`) switches to JSON lines.
fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}
