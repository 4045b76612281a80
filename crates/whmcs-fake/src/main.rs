//! `whmcs-fake`: the WHMCS contract fake as a process, for the PHP test
//! harness and shell scripts. The first line on stdout is the bound URL
//! (`http://127.0.0.1:PORT`); it then serves until SIGINT or SIGTERM.
//!
//! ```sh
//! whmcs-fake --listen 127.0.0.1:0 --identifier ID --secret S --seed seed.json
//! ```

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use whmcs_fake::{Admin, CheckOrder, Credential, FakeConfig, Seed};

/// A contract fake of the WHMCS External API (POST /includes/api.php),
/// with inspection routes under /_fake/.
#[derive(Debug, Parser)]
#[command(name = "whmcs-fake", version)]
struct Args {
    /// Address to listen on; port 0 picks a free one [default: the config's, else 127.0.0.1:0]
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// A FakeConfig JSON file; the flags below override it
    #[arg(long, value_name = "FILE.json")]
    config: Option<PathBuf>,
    /// Seed JSON (clients, services, invoices, billable_items, currencies, module_errors)
    #[arg(long, value_name = "FILE.json")]
    seed: Option<PathBuf>,
    /// API credential identifier (with --secret; replaces the default credential)
    #[arg(long, requires = "secret")]
    identifier: Option<String>,
    /// API credential secret
    #[arg(long, requires = "identifier")]
    secret: Option<String>,
    /// Actions the credential may call (repeatable; default: all)
    #[arg(long = "allow-action", value_name = "ACTION")]
    allow_actions: Vec<String>,
    /// Admin login for the legacy username + md5(password) authentication
    #[arg(long, value_name = "USER:PASSWORD")]
    admin: Vec<String>,
    /// Turns on the API IP allow-list with this address (repeatable)
    #[arg(long = "allow-ip", value_name = "IP")]
    allow_ips: Vec<String>,
    /// The API access key that bypasses the IP allow-list
    #[arg(long)]
    access_key: Option<String>,
    /// Check credentials before the caller's IP
    #[arg(long)]
    credentials_first: bool,
    /// Answer AddBillableItem with `status` instead of `result`
    #[arg(long)]
    quirk_status: bool,
    /// Every number in every answer as a string
    #[arg(long)]
    quirk_string_numbers: bool,
    /// Accept AddBillableItem without `unit`
    #[arg(long)]
    lenient_unit: bool,
    /// "Today" for invoice dates and due checks (YYYY-mm-dd)
    #[arg(long, value_name = "YYYY-mm-dd")]
    today: Option<String>,
    /// Log each connection problem to stderr
    #[arg(long)]
    verbose: bool,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.verbose {
        tracing_subscriber::fmt()
            .with_writer(std::io::stderr)
            .with_max_level(tracing::Level::DEBUG)
            .init();
    }
    let mut config = match &args.config {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_slice::<FakeConfig>(&text).with_context(|| format!("parsing {}", path.display()))?
        }
        None => FakeConfig::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let (Some(identifier), Some(secret)) = (args.identifier, args.secret) {
        config.credentials = vec![Credential {
            identifier,
            secret,
            allowed_actions: None,
        }];
    }
    if !args.allow_actions.is_empty() {
        let allowed: std::collections::BTreeSet<String> = args.allow_actions.into_iter().collect();
        for c in &mut config.credentials {
            c.allowed_actions = Some(allowed.clone());
        }
    }
    for admin in args.admin {
        let (username, password) = admin.split_once(':').context("--admin takes USER:PASSWORD")?;
        config.admins.push(Admin {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    if !args.allow_ips.is_empty() {
        config.allowed_ips = Some(args.allow_ips);
    }
    if args.access_key.is_some() {
        config.access_key = args.access_key;
    }
    if args.credentials_first {
        config.check_order = CheckOrder::CredentialsFirst;
    }
    config.quirks.add_billable_item_status_key |= args.quirk_status;
    config.quirks.all_numbers_as_strings |= args.quirk_string_numbers;
    if args.lenient_unit {
        config.behaviour.require_unit = false;
    }
    if args.today.is_some() {
        config.behaviour.today = args.today;
    }
    let seed: Option<Seed> = match &args.seed {
        Some(path) => {
            let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
            Some(serde_json::from_slice(&text).with_context(|| format!("parsing {}", path.display()))?)
        }
        None => None,
    };

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let fake = whmcs_fake::start(config).await?;
        if let Some(seed) = seed {
            fake.seed(seed);
        }
        // The first line is the contract with whoever started the process.
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", fake.url())?;
        out.flush()?;
        drop(out);
        shutdown_signal().await;
        fake.shutdown();
        Ok(())
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
