//! `cdrate ready`: asks the engine this configuration describes whether it
//! is ready (`GET /ready` on `server.listen`), for container health checks
//! and scripts. Exit status 0 when it answers 200, 1 otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use crate::config::Config;

/// Where to reach a server listening on `listen`: an unspecified address
/// (all interfaces) is reached on loopback.
fn probe_address(listen: &str) -> anyhow::Result<SocketAddr> {
    let mut addr: SocketAddr = listen
        .parse()
        .with_context(|| format!("server.listen {listen:?} is not an address:port"))?;
    match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        IpAddr::V6(ip) if ip.is_unspecified() => addr.set_ip(IpAddr::V6(Ipv6Addr::LOCALHOST)),
        _ => {}
    }
    Ok(addr)
}

pub fn run(config: &Config) -> anyhow::Result<ExitCode> {
    let addr = probe_address(&config.server.listen)?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(5)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{addr}/ready");
    match agent.get(&url).call() {
        Ok(mut r) => {
            let status = r.status().as_u16();
            let body = r
                .body_mut()
                .with_config()
                .limit(64 * 1024)
                .read_to_string()
                .unwrap_or_default();
            println!("{status} {}", body.trim());
            Ok(if status == 200 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        Err(e) => {
            println!("not reachable at {url}: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_interfaces_are_probed_on_loopback() {
        for (listen, want) in [
            ("0.0.0.0:8080", "127.0.0.1:8080"),
            ("[::]:8080", "[::1]:8080"),
            ("127.0.0.1:9000", "127.0.0.1:9000"),
            ("10.1.2.3:80", "10.1.2.3:80"),
        ] {
            assert_eq!(probe_address(listen).unwrap().to_string(), want, "{listen}");
        }
        assert!(probe_address("localhost:8080").is_err());
    }
}
