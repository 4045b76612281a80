//! `whmcs-fake`: the WHMCS contract fake as a process, for the PHP test
//! harness and by-hand runs. Prints its URL as the first line of stdout.
//!
//! ```sh
//! whmcs-fake --listen 127.0.0.1:0 --identifier ID --secret S [--seed seed.json]
//! ```

use std::net::SocketAddr;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut config = whmcs_fake::FakeConfig::default();
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    let (mut identifier, mut secret) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => config.listen = value()?.parse::<SocketAddr>()?,
            "--seed" => seed = Some(std::fs::read(value()?)?),
            "--identifier" => identifier = Some(value()?),
            "--secret" => secret = Some(value()?),
            "--access-key" => config.access_key = Some(value()?),
            "--allow-ip" => config.allowed_ips.get_or_insert_with(Vec::new).push(value()?),
            "--quirk-status" => config.quirk_status_instead_of_result = true,
            "-h" | "--help" => {
                println!("usage: whmcs-fake [--listen ADDR] [--identifier ID --secret S] [--seed FILE.json] [--access-key K] [--allow-ip IP]... [--quirk-status]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    if let (Some(identifier), Some(secret)) = (identifier, secret) {
        config.credentials = vec![whmcs_fake::Credential {
            identifier,
            secret,
            allowed_actions: None,
        }];
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let fake = whmcs_fake::start(config).await?;
        if let Some(bytes) = seed {
            fake.seed(serde_json::from_slice(&bytes)?);
        }
        println!("{}", fake.url());
        // Ends when the process is killed.
        std::future::pending::<()>().await;
        Ok::<(), Box<dyn std::error::Error>>(())
    })
}
