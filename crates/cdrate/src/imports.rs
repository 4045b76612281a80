//! Importing tariff directories and account files into the store as new
//! versions, after the same validation `tariff check` does. Shared by
//! `cdrate tariff import`, `cdrate accounts import` and `serve`'s start-up
//! import; running workers pick a new version up at their next batch.

use std::path::Path;

use anyhow::{bail, Context};
use cdrate_store::{AccountTexts, Store, TariffTexts};

use crate::config::ImportConfig;

fn read(path: &Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

/// Validates `dir` and stores it as the newest tariff version. Returns the
/// version and whether it is new. Accounts already stored are checked
/// against the new plans, so an import cannot orphan an account.
pub async fn import_tariffs(store: &Store, dir: &Path) -> anyhow::Result<(i64, bool)> {
    let set = cdrate_rating::load_dir(dir).map_err(|e| {
        anyhow::anyhow!(
            "tariffs in {} are invalid ({} problem(s)):\n{e}",
            dir.display(),
            e.len()
        )
    })?;
    if let Some(accounts) = store.latest_accounts().await? {
        let book = cdrate_rating::accounts::parse_accounts(&accounts.texts.accounts, &accounts.texts.identities)
            .map_err(|e| anyhow::anyhow!("stored accounts do not load:\n{e}"))?;
        let problems = book.check_plans(&set);
        if !problems.is_empty() {
            let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
            bail!("the stored accounts do not fit these tariffs:\n{}", list.join("\n"));
        }
    }
    let bands_path = dir.join("bands.csv");
    let texts = TariffTexts {
        plans: read(&dir.join("plans.csv"))?,
        bands: if bands_path.exists() {
            read(&bands_path)?
        } else {
            String::new()
        },
        rates: read(&dir.join("rates.csv"))?,
    };
    Ok(store
        .import_tariffs(&texts, &dir.display().to_string(), now_ms())
        .await?)
}

/// Validates the two account files (and their plans against the tariffs in
/// force) and stores them as the newest accounts version.
pub async fn import_accounts(store: &Store, accounts: &Path, identities: &Path) -> anyhow::Result<(i64, bool)> {
    let book = cdrate_rating::accounts::load_accounts(accounts, identities)
        .map_err(|e| anyhow::anyhow!("accounts are invalid ({} problem(s)):\n{e}", e.len()))?;
    let Some(tariffs) = store.latest_tariffs().await? else {
        bail!("import a tariff directory first (cdrate tariff import DIR): accounts name its plans");
    };
    let set = cdrate_rating::parse_tariffs(&tariffs.texts.plans, &tariffs.texts.bands, &tariffs.texts.rates)
        .map_err(|e| anyhow::anyhow!("stored tariff version {} does not load:\n{e}", tariffs.version))?;
    let problems = book.check_plans(&set);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        bail!(
            "accounts do not fit tariff version {}:\n{}",
            tariffs.version,
            list.join("\n")
        );
    }
    let texts = AccountTexts {
        accounts: read(accounts)?,
        identities: read(identities)?,
    };
    let origin = format!("{} + {}", accounts.display(), identities.display());
    Ok(store.import_accounts(&texts, &origin, now_ms()).await?)
}

/// `serve`'s start-up import of the configured files, when they changed.
pub async fn import_configured(store: &Store, import: &ImportConfig) -> anyhow::Result<()> {
    if let Some(dir) = &import.tariffs_dir {
        let (v, new) = import_tariffs(store, dir).await?;
        tracing::info!(version = v, new, dir = %dir.display(), "tariffs imported");
    }
    match (&import.accounts_file, &import.identities_file) {
        (Some(a), Some(i)) => {
            // Only a file changed since it was last imported is imported
            // again: versions made since through the accounts API (WHMCS
            // provisioning) must not be undone by a restart.
            let origin = format!("{} + {}", a.display(), i.display());
            let current = AccountTexts {
                accounts: read(a)?,
                identities: read(i)?,
            };
            if store.accounts_from(&origin).await?.as_ref() == Some(&current) {
                tracing::info!(origin, "configured accounts files unchanged since their import");
            } else {
                let (v, new) = import_accounts(store, a, i).await?;
                tracing::info!(version = v, new, "accounts imported");
            }
        }
        (None, None) => {}
        _ => bail!("import.accounts_file and import.identities_file go together"),
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}
