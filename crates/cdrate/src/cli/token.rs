//! `cdrate token create|list|revoke`: API tokens. The secret is printed
//! once at creation and never stored.

use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;
use crate::imports::now_ms;

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print its secret (shown only this once).
    Create {
        /// What the token is for, e.g. "whmcs-hook".
        #[arg(long)]
        name: String,
        /// ingest, read, billing or admin; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
    },
    /// List tokens (never their secrets).
    List,
    /// Revoke a token by id or name.
    Revoke { token: String },
}

pub async fn run(cmd: TokenCommand, config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::serve::open_store(config).await?;
    let code = match cmd {
        TokenCommand::Create { name, scopes } => {
            let (token, secret) = crate::auth::new_token(&name, &scopes, now_ms())?;
            store.insert_token(&token).await?;
            eprintln!(
                "token {} ({}) created with scopes: {}",
                token.id, token.name, token.scopes
            );
            eprintln!("the secret below is shown only now; store it where it is needed:");
            println!("{secret}");
            ExitCode::SUCCESS
        }
        TokenCommand::List => {
            for t in store.list_tokens().await? {
                let state = if t.revoked_at_ms.is_some() { "revoked" } else { "active" };
                println!("{}\t{}\t{}\t{state}", t.id, t.name, t.scopes);
            }
            ExitCode::SUCCESS
        }
        TokenCommand::Revoke { token } => {
            if store.revoke_token(&token, now_ms()).await? {
                println!("revoked {token}");
                ExitCode::SUCCESS
            } else {
                eprintln!("no active token {token:?}");
                ExitCode::from(1)
            }
        }
    };
    store.close().await;
    Ok(code)
}
