//! The `framegate` command: thin glue over the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use framegate::config::{Config, CredentialConfig, Overrides};
use framegate::ops::AppState;
use framegate::{bootstrap, server};

/// A Tencent COS / S3 compatible gateway that turns videos into pictures on
/// the fly.
///
/// Configuration comes from a TOML file (--config; see
/// framegate.example.toml), environment variables and flags; flags win over
/// the environment, which wins over the file.
#[derive(Debug, Parser)]
#[command(name = "framegate", version, about, long_about)]
struct Cli {
    /// The TOML configuration file.
    #[arg(long, global = true, env = "FRAMEGATE_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Directory for local buckets, credentials and state.
    #[arg(long, global = true, env = "FRAMEGATE_DATA_DIR", value_name = "DIR")]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        /// Address to listen on (IP:PORT; port 0 picks a free port).
        #[arg(long, env = "FRAMEGATE_LISTEN", value_name = "ADDR")]
        listen: Option<String>,
        /// Upload this file as `demo.mp4` into the default bucket if absent,
        /// and print a ready-to-use snapshot URL.
        #[arg(long, value_name = "FILE")]
        demo: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("framegate: cannot start the runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = match cli.command {
        Command::Serve { listen, demo } => runtime.block_on(serve(
            cli.config,
            Overrides {
                listen,
                data_dir: cli.data_dir,
                root_credential: env_credential(),
            },
            demo,
        )),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("framegate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMEGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

fn env_credential() -> Option<CredentialConfig> {
    let secret_id = std::env::var("FRAMEGATE_SECRET_ID").ok()?;
    let secret_key = std::env::var("FRAMEGATE_SECRET_KEY").ok()?;
    Some(CredentialConfig {
        secret_id,
        secret_key,
        allow: Vec::new(),
    })
}

async fn serve(
    config_path: Option<PathBuf>,
    mut overrides: Overrides,
    demo: Option<PathBuf>,
) -> Result<(), String> {
    let mut config =
        Config::load(config_path.as_deref(), overrides.clone()).map_err(|e| e.to_string())?;
    if config.credentials.is_empty() {
        let root = bootstrap::root_credential(&config.data_dir)
            .map_err(|e| format!("root credential: {e}"))?;
        overrides.root_credential = Some(root);
        config = Config::load(config_path.as_deref(), overrides).map_err(|e| e.to_string())?;
    }
    let state = Arc::new(AppState::new(config)?);
    let config = &state.config;
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    let bucket = state
        .buckets
        .get(&config.default_bucket)
        .expect("validated default bucket");
    if let Some(file) = &demo {
        let uploaded = bootstrap::seed_demo(bucket, "demo.mp4", file)
            .await
            .map_err(|e| format!("demo upload of {}: {e}", file.display()))?;
        if uploaded {
            tracing::info!(file = %file.display(), "uploaded demo.mp4");
        }
    }
    println!("framegate listening on http://{address}");
    print_banner(&state, address, demo.is_some());
    tracing::info!(%address, buckets = state.buckets.names().len(), "ready");
    server::run(listener, state.clone(), shutdown_signal())
        .await
        .map_err(|e| e.to_string())
}

fn print_banner(state: &AppState, address: std::net::SocketAddr, demo: bool) {
    let config = &state.config;
    for name in state.buckets.names() {
        let bucket = state.buckets.get(name).expect("listed bucket");
        let default = if *name == config.default_bucket {
            " (default)"
        } else {
            ""
        };
        println!("  bucket     {name}{default} -> {}", bucket.location);
    }
    if let Some(root) = config.credentials.first() {
        println!("  SecretId   {}", root.secret_id);
        println!("  SecretKey  {}", root.secret_key);
    }
    if demo {
        println!(
            "  try        curl -o demo.mp4 'http://{address}/demo.mp4'   (needs a signature unless the bucket is public)"
        );
    }
}

async fn shutdown_signal() {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown signal received");
}
