//! `hookd verify`: check a received webhook against its endpoint secret.

use std::path::PathBuf;
use std::process::ExitCode;

use hookd_signing::{verify, Secret, WebhookHeaders, DEFAULT_TOLERANCE_SECS};

/// Flags of `hookd verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// Endpoint secret (`whsec_…`).
    #[arg(long, env = "HOOKD_WEBHOOK_SECRET")]
    pub secret: String,
    /// Value of the `webhook-id` header.
    #[arg(long = "id")]
    pub id: String,
    /// Value of the `webhook-timestamp` header.
    #[arg(long)]
    pub timestamp: String,
    /// Value of the `webhook-signature` header.
    #[arg(long)]
    pub signature: String,
    /// File with the raw body; `-` or absent reads standard input.
    #[arg(long, value_name = "FILE")]
    pub payload: Option<PathBuf>,
    /// Allowed clock difference in seconds.
    #[arg(long, default_value_t = DEFAULT_TOLERANCE_SECS)]
    pub tolerance: i64,
}

/// Prints `valid` or `invalid: <reason>`; exit 0 or 1 (2 for unusable input).
pub fn run(args: VerifyArgs) -> ExitCode {
    let body = match &args.payload {
        Some(p) if p.as_os_str() != "-" => std::fs::read(p),
        _ => {
            let mut buf = Vec::new();
            std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf).map(|_| buf)
        }
    };
    let body = match body {
        Ok(b) => b,
        Err(e) => {
            eprintln!("cannot read payload: {e}");
            return ExitCode::from(2);
        }
    };
    let secret = match Secret::parse(&args.secret) {
        Ok(s) => s,
        Err(e) => {
            println!("invalid: secret: {e}");
            return ExitCode::from(1);
        }
    };
    let headers = WebhookHeaders {
        id: args.id,
        timestamp: args.timestamp,
        signature: args.signature,
    };
    match verify(&secret, &headers, &body, chrono::Utc::now().timestamp(), args.tolerance) {
        Ok(()) => {
            println!("valid");
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("invalid: {e}");
            ExitCode::from(1)
        }
    }
}
