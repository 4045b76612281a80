//! `cdrate accounts import ACCOUNTS.csv IDENTITIES.csv`: validate billing
//! accounts and source identities (against the tariffs in force) and store
//! them as the new version; the rating worker re-queues quarantined records
//! when it picks the new version up.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum AccountsCommand {
    /// Validate and store accounts.csv + identities.csv as the version in force.
    Import {
        /// accounts.csv: account,plan,currency,country_code,national_prefix,… (DESIGN §6)
        accounts: PathBuf,
        /// identities.csv: source,account_key,account
        identities: PathBuf,
    },
}

pub async fn run(cmd: AccountsCommand, config: &Config) -> anyhow::Result<ExitCode> {
    match cmd {
        AccountsCommand::Import { accounts, identities } => {
            let store = crate::serve::open_store(config).await?;
            let result = crate::imports::import_accounts(&store, &accounts, &identities).await;
            store.close().await;
            let (version, new) = result?;
            if new {
                println!("imported accounts version {version}");
            } else {
                println!("identical to accounts version {version}; nothing imported");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
