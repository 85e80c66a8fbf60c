//! The `framegate` command: thin glue over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use clap::{Parser, Subcommand};
use framegate::config::{Config, CredentialConfig, CredentialSource, LogFormat, Overrides};
use framegate::ops::AppState;
use framegate::{bootstrap, presign, server};

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
        /// Serve /metrics (Prometheus), /healthz and /readyz on this address
        /// (IP:PORT; "off" for none). Off unless given here or in the
        /// config; unauthenticated, so keep it on loopback or a private
        /// network.
        #[arg(long, env = "FRAMEGATE_ADMIN_LISTEN", value_name = "ADDR")]
        admin_listen: Option<String>,
        /// Log lines as "text" or "json" (one object per line).
        #[arg(long, env = "FRAMEGATE_LOG_FORMAT", value_name = "FORMAT")]
        log_format: Option<LogFormat>,
        /// Upload this file as `demo.mp4` into the default bucket if absent,
        /// queue its preview sprites, serve the demo page
        /// (/.framegate/demo/), and print a ready-to-use snapshot URL.
        #[arg(long, value_name = "FILE")]
        demo: Option<PathBuf>,
    },
    /// Take a picture from a video file or object URL, as `?ci-process=snapshot` does.
    Snapshot(SnapshotArgs),
    /// Queue screenshot tasks on a running gateway and watch them.
    Job {
        #[command(subcommand)]
        command: JobCommand,
    },
    /// Print a pre-signed URL (what a web page embeds).
    ///
    /// Example: framegate presign demo.mp4 --param ci-process=snapshot --param time=3
    Presign {
        /// The object key.
        key: String,
        /// The HTTP method the URL is for.
        #[arg(long, default_value = "GET")]
        method: String,
        /// Seconds the URL stays valid.
        #[arg(long, default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
        expires: u64,
        /// Extra query parameters to sign, NAME=VALUE (repeatable).
        #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
        params: Vec<(String, String)>,
        /// The bucket (path-style URL); default: the default bucket by bare host.
        #[arg(long)]
        bucket: Option<String>,
        /// Sign in the S3 style (AWS Signature V4) instead of COS q-sign.
        #[arg(long)]
        sigv4: bool,
        /// The gateway's base URL; default: http://<listen address>.
        #[arg(long, value_name = "URL")]
        endpoint: Option<String>,
        /// Which configured credential signs (default: the root credential).
        #[arg(long, value_name = "ID")]
        secret_id: Option<String>,
    },
}

/// `framegate job ...`.
#[derive(Debug, Subcommand)]
enum JobCommand {
    /// Queue a ProcessMedia task for an object, then watch it with a
    /// progress bar.
    ///
    /// Example: framegate job submit demo.mp4 --snapshot 10=1s,50% --sprite 10 --cover 10=Percent:30
    Submit(SubmitArgs),
    /// Watch a task until it ends, with a progress bar.
    Watch {
        /// The TaskId ProcessMedia returned.
        task_id: String,
        #[command(flatten)]
        remote: Remote,
    },
}

/// Where the gateway is and who signs.
#[derive(Debug, clap::Args)]
struct Remote {
    /// The gateway's base URL; default: http://<listen address>.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Which configured credential signs (default: the root credential).
    #[arg(long, value_name = "ID")]
    secret_id: Option<String>,
}

/// The `framegate job submit` arguments.
#[derive(Debug, clap::Args)]
struct SubmitArgs {
    /// The object key (MediaStoragePath) in the jobs bucket.
    key: String,
    /// Time-point screenshots: DEFINITION=TIMES, times like 1.5s or 50%,
    /// comma-separated (repeatable).
    #[arg(long, value_name = "DEF=TIMES")]
    snapshot: Vec<String>,
    /// Sampled screenshots with this template (repeatable).
    #[arg(long, value_name = "DEF")]
    sample: Vec<u64>,
    /// Image sprites with this template (repeatable).
    #[arg(long, value_name = "DEF")]
    sprite: Vec<u64>,
    /// A cover: DEFINITION=Time:SECONDS or DEFINITION=Percent:PERCENT.
    #[arg(long, value_name = "DEF=TYPE:VALUE")]
    cover: Option<String>,
    /// Queue priority, -10 to 10 (higher first).
    #[arg(long, default_value_t = 0, allow_negative_numbers = true, value_parser = clap::value_parser!(i64).range(-10..=10))]
    priority: i64,
    /// Print the TaskId and return without watching.
    #[arg(long)]
    no_watch: bool,
    #[command(flatten)]
    remote: Remote,
}

/// The `framegate snapshot` arguments.
#[derive(Debug, clap::Args)]
struct SnapshotArgs {
    /// A local video file, or an object URL (s3://bucket/key, gs://...,
    /// az://..., http(s)://...; credentials from AWS_*/GOOGLE_*/AZURE_*).
    input: String,
    /// Seconds from the start.
    #[arg(long)]
    time: f64,
    /// Output width (0: follow the aspect ratio).
    #[arg(long, default_value_t = 0)]
    width: u32,
    /// Output height (0: follow the aspect ratio).
    #[arg(long, default_value_t = 0)]
    height: u32,
    /// jpg, png, webp or avif (default: from the output file's extension,
    /// else jpg).
    #[arg(long)]
    format: Option<String>,
    /// With both sides set: stretch, pad, blur or crop (`fg-fit`).
    #[arg(long, default_value = "stretch")]
    fit: String,
    /// auto (apply rotation metadata) or off.
    #[arg(long, default_value = "auto")]
    rotate: String,
    /// exactframe or keyframe.
    #[arg(long, default_value = "exactframe")]
    mode: String,
    /// Encoder quality, 1 to 100 (default: 85 for JPEG, 80 for WebP, 60
    /// for AVIF).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=100))]
    quality: Option<u8>,
    /// Seconds before giving up.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    /// Where to write the picture ("-" for standard output).
    #[arg(short, long, default_value = "snapshot.jpg")]
    output: PathBuf,
    /// Benchmark: open the video once, take the picture once untimed, then
    /// N more times (seek, decode, rotate/scale, encode) and print one JSON
    /// line of timings: {"runs","median_ms","p95_ms","min_ms","open_ms"}, and
    /// how many pictures the last run cut ("pictures_cut").
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=100_000))]
    repeat: Option<u32>,
}

/// Runs the snapshot pipeline on a file or object URL, as the gateway does.
fn snapshot_command(args: SnapshotArgs) -> Result<(), String> {
    use framegate::media::source::{ByteSource, FileSource};
    use framegate::media::{self, Limits};
    use framegate::proto::{query::Query, snapshot};
    let format = args.format.clone().unwrap_or_else(|| {
        let extension = args.output.extension().and_then(|e| e.to_str());
        extension
            .and_then(media::ImageFormat::from_name)
            .unwrap_or(media::ImageFormat::Jpeg)
            .name()
            .to_owned()
    });
    let mut query = format!(
        "time={}&width={}&height={}&format={format}&rotate={}&mode={}&fg-fit={}",
        args.time, args.width, args.height, args.rotate, args.mode, args.fit
    );
    if let Some(quality) = args.quality {
        query.push_str(&format!("&fg-quality={quality}"));
    }
    let query = Query::parse(Some(&query)).map_err(|e| e.to_string())?;
    let params = snapshot::parse(&query).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    let source: Box<dyn ByteSource> = if args.input.contains("://") {
        let reader =
            framegate::storage::ObjectReader::open_url(&args.input, runtime.handle().clone())
                .map_err(|e| format!("{}: {e}", args.input))?;
        Box::new(reader)
    } else {
        Box::new(
            FileSource::open(Path::new(&args.input)).map_err(|e| format!("{}: {e}", args.input))?,
        )
    };
    let mut limits = Limits::with_timeout(Duration::from_secs(args.timeout));
    limits.decode_threads = params.mode.decode_threads();
    limits.conceal_errors = params.mode == media::SeekMode::Keyframe;
    let started = Instant::now();
    let mut video = media::Video::open(source, &limits).map_err(|e| e.to_string())?;
    let open_ms = started.elapsed().as_secs_f64() * 1e3;
    let image = media::snapshot_of(&mut video, &params, &limits).map_err(|e| e.to_string())?;
    if let Some(runs) = args.repeat {
        let mut times = Vec::with_capacity(runs as usize);
        for _ in 0..runs {
            // As the gateway does with a cached video: the last decoder is
            // closed after the answer (untimed), then a fresh decoder and
            // deadline on the open container.
            let (opened, closing) = video.into_parts();
            drop(closing);
            let started = Instant::now();
            limits.deadline = started + Duration::from_secs(args.timeout);
            video = opened.into_video(&limits).map_err(|e| e.to_string())?;
            media::snapshot_of(&mut video, &params, &limits).map_err(|e| e.to_string())?;
            times.push(started.elapsed().as_secs_f64() * 1e3);
        }
        times.sort_by(f64::total_cmp);
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        println!(
            "{}",
            serde_json::json!({
                "runs": runs,
                "median_ms": at(0.5),
                "p95_ms": at(0.95),
                "min_ms": times[0],
                "open_ms": open_ms,
                // Reference pictures the last run cut to their headers.
                "pictures_cut": video.pictures_cut(),
            })
        );
    }
    if args.output.as_os_str() == "-" {
        use std::io::Write as _;
        std::io::stdout()
            .write_all(&image.bytes)
            .map_err(|e| e.to_string())?;
    } else {
        std::fs::write(&args.output, &image.bytes)
            .map_err(|e| format!("{}: {e}", args.output.display()))?;
        eprintln!(
            "{}: {}x{} {} from the frame at {:.3}s",
            args.output.display(),
            image.width,
            image.height,
            image.content_type,
            image.pts_seconds
        );
    }
    Ok(())
}

/// `framegate job submit|watch`: API 3.0 calls to a running gateway.
fn job_command(
    config_path: Option<&Path>,
    data_dir: Option<PathBuf>,
    command: JobCommand,
) -> Result<(), String> {
    use framegate::api_client::Client;
    use serde_json::json;
    let remote = match &command {
        JobCommand::Submit(args) => &args.remote,
        JobCommand::Watch { remote, .. } => remote,
    };
    let config = load_config(
        config_path,
        Overrides {
            data_dir,
            root_credential: env_credential(),
            ..Overrides::default()
        },
    )?;
    let credential = match &remote.secret_id {
        Some(id) => config.credentials.iter().find(|c| &c.secret_id == id),
        None => config.credentials.first(),
    }
    .ok_or("no such credential in the configuration")?
    .clone();
    let endpoint = remote
        .endpoint
        .clone()
        .unwrap_or_else(|| format!("http://{}", config.listen));
    let client = Client::new(&endpoint, credential, &config.region).map_err(|e| e.to_string())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let task_id = match command {
            JobCommand::Watch { task_id, .. } => task_id,
            JobCommand::Submit(args) => {
                let mut task = serde_json::Map::new();
                let mut snapshots = Vec::new();
                for spec in &args.snapshot {
                    let (def, times) = spec
                        .split_once('=')
                        .ok_or_else(|| format!("--snapshot {spec:?} is not DEF=TIMES"))?;
                    let def: u64 = def
                        .parse()
                        .map_err(|_| format!("bad Definition in {spec:?}"))?;
                    let times: Vec<&str> = times.split(',').collect();
                    snapshots.push(json!({"Definition": def, "ExtTimeOffsetSet": times}));
                }
                let defs = |list: &[u64]| -> Vec<serde_json::Value> {
                    list.iter().map(|d| json!({"Definition": d})).collect()
                };
                task.insert("SnapshotByTimeOffsetTaskSet".into(), json!(snapshots));
                task.insert("SampleSnapshotTaskSet".into(), json!(defs(&args.sample)));
                task.insert("ImageSpriteTaskSet".into(), json!(defs(&args.sprite)));
                if let Some(cover) = &args.cover {
                    let parsed = cover.split_once('=').and_then(|(def, pos)| {
                        let (kind, value) = pos.split_once(':')?;
                        Some((def.parse::<u64>().ok()?, kind, value.parse::<f64>().ok()?))
                    });
                    let (def, kind, value) = parsed.ok_or_else(|| {
                        format!("--cover {cover:?} is not DEF=Time:S or DEF=Percent:P")
                    })?;
                    task.insert(
                        "CoverBySnapshotTaskSet".into(),
                        json!([{"Definition": def, "PositionType": kind, "PositionValue": value}]),
                    );
                }
                let answer = client
                    .call(
                        "ProcessMedia",
                        &json!({
                            "MediaStoragePath": format!("/{}", args.key.trim_start_matches('/')),
                            "MediaProcessTask": task,
                            "TasksPriority": args.priority,
                        }),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                let task_id = answer["TaskId"].as_str().unwrap_or_default().to_owned();
                println!("{task_id}");
                if args.no_watch {
                    return Ok(());
                }
                task_id
            }
        };
        watch_task(&client, &task_id).await
    })
}

/// Polls DescribeTaskDetail with a progress bar until the task ends; fails
/// if a subtask failed.
async fn watch_task(client: &framegate::api_client::Client, task_id: &str) -> Result<(), String> {
    use serde_json::json;
    let bar = indicatif::ProgressBar::new(100);
    bar.set_style(
        indicatif::ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:40} {pos:>3}% {msg}",
        )
        .map_err(|e| e.to_string())?,
    );
    let detail = loop {
        let detail = client
            .call("DescribeTaskDetail", &json!({ "TaskId": task_id }))
            .await
            .map_err(|e| e.to_string())?;
        let status = detail["Status"].as_str().unwrap_or_default().to_owned();
        let results = detail["ProcedureTask"]["MediaProcessResultSet"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let progress: Vec<u64> = results
            .iter()
            .filter_map(|r| {
                r.as_object()?
                    .values()
                    .find_map(|v| v.get("Progress")?.as_u64())
            })
            .collect();
        let overall = progress.iter().sum::<u64>() / progress.len().max(1) as u64;
        bar.set_position(overall);
        bar.set_message(status.clone());
        if status == "FINISH" || status == "ABORTED" {
            bar.finish();
            break detail;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let task = &detail["ProcedureTask"];
    let mut failed = detail["Status"] == "ABORTED";
    for result in task["MediaProcessResultSet"]
        .as_array()
        .into_iter()
        .flatten()
    {
        let kind = result["Type"].as_str().unwrap_or_default();
        let Some(sub) = result
            .as_object()
            .and_then(|o| o.values().find(|v| v.get("Status").is_some()))
        else {
            continue;
        };
        let status = sub["Status"].as_str().unwrap_or_default();
        failed |= status != "SUCCESS";
        let output = &sub["Output"];
        let urls: Vec<&str> = ["PicInfoSet", "ImageUrlSet"]
            .iter()
            .filter_map(|f| output[f].as_array())
            .flatten()
            .filter_map(|v| v.get("Url").unwrap_or(v).as_str())
            .chain(
                ["WebVttUrl", "CoverUrl"]
                    .iter()
                    .filter_map(|f| output[f].as_str()),
            )
            .collect();
        println!(
            "{kind}: {status} {} {}",
            sub["ErrCodeExt"].as_str().unwrap_or_default(),
            sub["Message"].as_str().unwrap_or_default()
        );
        for url in urls {
            println!("  {url}");
        }
    }
    if failed {
        Err(format!("task {task_id} did not fully succeed"))
    } else {
        Ok(())
    }
}

fn parse_param(text: &str) -> Result<(String, String), String> {
    text.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{text:?} is not NAME=VALUE"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Serve { .. }) {
        init_logging(LogFormat::Text);
    }
    let result = match cli.command {
        Command::Serve {
            listen,
            admin_listen,
            log_format,
            demo,
        } => load_config_noting_credential(
            cli.config.as_deref(),
            Overrides {
                listen,
                admin_listen,
                log_format,
                data_dir: cli.data_dir,
                root_credential: env_credential(),
                demo: demo.is_some(),
            },
        )
        .and_then(|(config, credentials)| {
            init_logging(config.log_format);
            tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .map_err(|e| format!("cannot start the runtime: {e}"))
                .and_then(|runtime| runtime.block_on(serve(config, credentials, demo)))
        }),
        Command::Snapshot(args) => snapshot_command(args),
        Command::Job { command } => job_command(cli.config.as_deref(), cli.data_dir, command),
        Command::Presign {
            key,
            method,
            expires,
            params,
            bucket,
            sigv4,
            endpoint,
            secret_id,
        } => load_config(
            cli.config.as_deref(),
            Overrides {
                data_dir: cli.data_dir,
                root_credential: env_credential(),
                ..Overrides::default()
            },
        )
        .and_then(|config| {
            let credential = match &secret_id {
                Some(id) => config.credentials.iter().find(|c| c.secret_id == *id),
                None => config.credentials.first(),
            }
            .ok_or_else(|| {
                format!(
                    "no credential {:?} in the configuration",
                    secret_id.unwrap_or_default()
                )
            })?;
            let endpoint = endpoint.unwrap_or_else(|| format!("http://{}", config.listen));
            let request = presign::PresignRequest {
                endpoint: &endpoint,
                method: &method.to_ascii_uppercase(),
                bucket: bucket.as_deref(),
                key: &key,
                params: &params,
                expires_in: Duration::from_secs(expires),
                region: &config.region,
            };
            let style = if sigv4 {
                presign::Style::SigV4
            } else {
                presign::Style::Cos
            };
            let url = presign::presign(credential, &request, style, SystemTime::now())?;
            println!("{url}");
            Ok(())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("framegate: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("FRAMEGATE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        // One object per line; the request span (id, method, path) as
        // `span`, the event's fields at the top level.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

fn env_credential() -> Option<CredentialConfig> {
    let secret_id = std::env::var("FRAMEGATE_SECRET_ID").ok()?;
    let secret_key = std::env::var("FRAMEGATE_SECRET_KEY").ok()?;
    Some(CredentialConfig {
        secret_id,
        secret_key,
        security_token: None,
        allow: Vec::new(),
    })
}

/// Loads the configuration; without any credential, adds the root
/// credential kept in (or generated into) the data directory.
fn load_config(path: Option<&Path>, overrides: Overrides) -> Result<Config, String> {
    load_config_noting_credential(path, overrides).map(|(config, _)| config)
}

/// `load_config`, also saying where the credentials came from.
fn load_config_noting_credential(
    path: Option<&Path>,
    mut overrides: Overrides,
) -> Result<(Config, CredentialSource), String> {
    let config = Config::load(path, overrides.clone()).map_err(|e| e.to_string())?;
    if !config.credentials.is_empty() {
        return Ok((config, CredentialSource::Configured));
    }
    let root = bootstrap::root_credential(&config.data_dir)
        .map_err(|e| format!("root credential: {e}"))?;
    overrides.root_credential = Some(root);
    let config = Config::load(path, overrides).map_err(|e| e.to_string())?;
    Ok((config, CredentialSource::GeneratedOnThisNode))
}

/// Whether a bucket store lives on this machine only (the local disk or
/// memory), as opposed to an object store other nodes reach.
fn is_node_local(store: &str) -> bool {
    store.starts_with("file://") || store.starts_with("memory://")
}

async fn serve(
    config: Config,
    credentials: CredentialSource,
    demo: Option<PathBuf>,
) -> Result<(), String> {
    for warning in config.node_local_warnings(credentials) {
        tracing::warn!("{warning}");
    }
    if !config.shares_job_store() && config.buckets.iter().any(|b| !is_node_local(&b.store)) {
        tracing::info!(
            "the job queue is this node's SQLite file: run one gateway on these buckets, or \
             set jobs.store to PostgreSQL for several (docs/deploy.md)"
        );
    }
    match server::connections::raise_open_file_limit() {
        Ok(limits) => tracing::info!(
            soft_before = limits
                .soft_before
                .map_or_else(|| "unlimited".into(), |n| n.to_string()),
            soft = limits
                .soft
                .map_or_else(|| "unlimited".into(), |n| n.to_string()),
            hard = limits
                .hard
                .map_or_else(|| "unlimited".into(), |n| n.to_string()),
            "open-file limit"
        ),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-file limit"),
    }
    // Recording starts before the pool exists, so its gauges count from 0.
    if config.admin_listen.is_some() {
        framegate::metrics::enable();
    }
    let state = Arc::new(AppState::new(config).await?);
    let config = &state.config;
    let listener = server::connections::listen(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let address = listener
        .local_addr()
        .map_err(|e| format!("listener address: {e}"))?;
    let admin = match config.admin_listen {
        Some(admin_address) => {
            let admin = tokio::net::TcpListener::bind(admin_address)
                .await
                .map_err(|e| format!("cannot listen on {admin_address} (admin): {e}"))?;
            let bound = admin
                .local_addr()
                .map_err(|e| format!("admin listener address: {e}"))?;
            Some((admin, bound))
        }
        None => None,
    };
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
        let info = bucket
            .head("demo.mp4")
            .await
            .map_err(|e| format!("demo.mp4: {e}"))?;
        match state
            .jobs
            .ensure_demo_previews("demo.mp4", &info.etag)
            .await
        {
            Ok(task) => tracing::info!(%task, "demo preview sprites queued"),
            Err(err) => tracing::warn!(error = %err, "cannot queue the demo preview sprites"),
        }
    }
    // Listen for SIGTERM before announcing the address: a supervisor (or a
    // test) that stops the gateway right after start gets a graceful stop.
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("SIGTERM handler: {e}"))?;
    state.jobs.set_endpoint(address);
    framegate::jobs::worker::start(&state);
    framegate::jobs::events::start(&state);
    framegate::jobs::upload_session::start(&state);
    println!("framegate listening on http://{address}");
    let draining = server::admin::Draining::default();
    let (admin_done, admin_stop) = tokio::sync::oneshot::channel::<()>();
    if let Some((admin, bound)) = admin {
        println!("framegate admin listening on http://{bound} (/metrics, /healthz, /readyz)");
        tracing::info!(address = %bound, "admin listener");
        tokio::spawn(server::admin::run(
            admin,
            state.clone(),
            draining.clone(),
            async move {
                let _ = admin_stop.await;
            },
        ));
    }
    print_banner(&state, address, demo.is_some());
    tracing::info!(%address, buckets = state.buckets.names().len(), "ready");
    let stopping = state.clone();
    let shutdown = async move {
        shutdown_signal(terminate).await;
        // Not ready from now on: load balancers stop sending traffic while
        // the work in hand finishes.
        draining.start();
        let grace = stopping.config.shutdown_grace();
        framegate::jobs::worker::stop(&stopping.jobs, grace).await;
    };
    let served = server::run(listener, state.clone(), shutdown)
        .await
        .map_err(|e| e.to_string());
    // The admin listener answers (readyz 503) until connections drained.
    drop(admin_done);
    served
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
    let Some(root) = config.credentials.first() else {
        return;
    };
    if demo {
        let endpoint = format!("http://{address}");
        let params = [
            ("ci-process".to_owned(), "snapshot".to_owned()),
            ("time".to_owned(), "1.5".to_owned()),
            ("width".to_owned(), "320".to_owned()),
        ];
        let request = presign::PresignRequest {
            endpoint: &endpoint,
            method: "GET",
            bucket: None,
            key: "demo.mp4",
            params: &params,
            expires_in: Duration::from_secs(24 * 3600),
            region: &config.region,
        };
        if let Ok(url) = presign::presign(root, &request, presign::Style::Cos, SystemTime::now()) {
            println!("  try (valid 24 h):\n    curl -o frame.jpg '{url}'");
        }
    }
    if config.demo.enabled {
        println!("  demo page  http://{address}/.framegate/demo/");
    }
}

async fn shutdown_signal(mut terminate: tokio::signal::unix::Signal) {
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    tracing::info!("shutdown signal received");
}
