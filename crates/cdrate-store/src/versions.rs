//! Imported tariff and account versions. Each import is stored whole (the
//! CSV texts), numbered 1, 2, …; the newest is the one in force. Storing the
//! texts keeps every version re-readable and lets any process parse exactly
//! what was validated at import. An import identical to the newest version
//! is not stored again.

use sqlx::Row;

use crate::migrate::fnv1a;
use crate::{Store, StoreError};

/// The three files of a tariff directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffTexts {
    pub plans: String,
    pub bands: String,
    pub rates: String,
}

/// The two files of an accounts import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountTexts {
    pub accounts: String,
    pub identities: String,
}

/// A stored version and its texts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion<T> {
    pub version: i64,
    pub imported_at_ms: i64,
    pub origin: String,
    pub texts: T,
}

fn digest(parts: &[&str]) -> String {
    let mut all = Vec::new();
    for p in parts {
        all.extend_from_slice(p.as_bytes());
        all.push(0);
    }
    format!("{:016x}", fnv1a(&all))
}

impl Store {
    /// Stores a validated tariff directory as the newest version; returns its
    /// number and whether it is new (false: identical to the newest).
    pub async fn import_tariffs(
        &self,
        texts: &TariffTexts,
        origin: &str,
        now_ms: i64,
    ) -> Result<(i64, bool), StoreError> {
        let d = digest(&[&texts.plans, &texts.bands, &texts.rates]);
        let mut tx = self.write.begin().await?;
        let latest = sqlx::query("SELECT version, digest FROM tariff_versions ORDER BY version DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let next = match latest {
            Some(row) if row.try_get::<String, _>(1)? == d => return Ok((row.try_get(0)?, false)),
            Some(row) => row.try_get::<i64, _>(0)? + 1,
            None => 1,
        };
        sqlx::query("INSERT INTO tariff_versions (version, imported_at_ms, origin, digest, plans, bands, rates) VALUES ($1,$2,$3,$4,$5,$6,$7)")
            .bind(next)
            .bind(now_ms)
            .bind(origin)
            .bind(d)
            .bind(&texts.plans)
            .bind(&texts.bands)
            .bind(&texts.rates)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok((next, true))
    }

    /// The newest tariff version number, if any (cheap: checked per batch).
    pub async fn tariff_version(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MAX(version) FROM tariff_versions")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    pub async fn latest_tariffs(&self) -> Result<Option<StoredVersion<TariffTexts>>, StoreError> {
        let row = sqlx::query("SELECT version, imported_at_ms, origin, plans, bands, rates FROM tariff_versions ORDER BY version DESC LIMIT 1")
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(StoredVersion {
                version: r.try_get(0)?,
                imported_at_ms: r.try_get(1)?,
                origin: r.try_get(2)?,
                texts: TariffTexts {
                    plans: r.try_get(3)?,
                    bands: r.try_get(4)?,
                    rates: r.try_get(5)?,
                },
            })
        })
        .transpose()
    }

    /// Stores a validated accounts import as the newest version.
    pub async fn import_accounts(
        &self,
        texts: &AccountTexts,
        origin: &str,
        now_ms: i64,
    ) -> Result<(i64, bool), StoreError> {
        let d = digest(&[&texts.accounts, &texts.identities]);
        let mut tx = self.write.begin().await?;
        let latest = sqlx::query("SELECT version, digest FROM account_versions ORDER BY version DESC LIMIT 1")
            .fetch_optional(&mut *tx)
            .await?;
        let next = match latest {
            Some(row) if row.try_get::<String, _>(1)? == d => return Ok((row.try_get(0)?, false)),
            Some(row) => row.try_get::<i64, _>(0)? + 1,
            None => 1,
        };
        insert_account_version(&mut tx, next, texts, origin, &d, now_ms, false).await?;
        tx.commit().await?;
        Ok((next, true))
    }

    /// Stores `texts` as version `base + 1` only if `base` is still the
    /// newest version (optimistic concurrency for edits made through the
    /// API); `None` when another version got there first.
    pub async fn edit_accounts(
        &self,
        base: i64,
        texts: &AccountTexts,
        origin: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let d = digest(&[&texts.accounts, &texts.identities]);
        let mut tx = self.write.begin().await?;
        let latest: Option<i64> = sqlx::query("SELECT MAX(version) FROM account_versions")
            .fetch_one(&mut *tx)
            .await?
            .try_get(0)?;
        if latest != Some(base) {
            return Ok(None);
        }
        // On PostgreSQL a concurrent edit can still take `base + 1` between
        // the check and the insert: that is a lost race, not an error.
        let inserted = insert_account_version(&mut tx, base + 1, texts, origin, &d, now_ms, true).await?;
        tx.commit().await?;
        Ok(inserted.then_some(base + 1))
    }

    /// The texts most recently imported with this `origin` (e.g. the
    /// configured files), whatever versions came after.
    pub async fn accounts_from(&self, origin: &str) -> Result<Option<AccountTexts>, StoreError> {
        let row = sqlx::query(
            "SELECT accounts, identities FROM account_versions WHERE origin = $1 ORDER BY version DESC LIMIT 1",
        )
        .bind(origin)
        .fetch_optional(&self.read)
        .await?;
        row.map(|r| {
            Ok(AccountTexts {
                accounts: r.try_get(0)?,
                identities: r.try_get(1)?,
            })
        })
        .transpose()
    }

    pub async fn account_version(&self) -> Result<Option<i64>, StoreError> {
        let row = sqlx::query("SELECT MAX(version) FROM account_versions")
            .fetch_one(&self.read)
            .await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    pub async fn latest_accounts(&self) -> Result<Option<StoredVersion<AccountTexts>>, StoreError> {
        let row = sqlx::query("SELECT version, imported_at_ms, origin, accounts, identities FROM account_versions ORDER BY version DESC LIMIT 1")
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            Ok(StoredVersion {
                version: r.try_get(0)?,
                imported_at_ms: r.try_get(1)?,
                origin: r.try_get(2)?,
                texts: AccountTexts {
                    accounts: r.try_get(3)?,
                    identities: r.try_get(4)?,
                },
            })
        })
        .transpose()
    }
}

/// Inserts one accounts version; with `if_free`, a version number already
/// taken is skipped (returns `false`) instead of failing.
async fn insert_account_version(
    tx: &mut sqlx::Transaction<'static, sqlx::Any>,
    version: i64,
    texts: &AccountTexts,
    origin: &str,
    digest: &str,
    now_ms: i64,
    if_free: bool,
) -> Result<bool, StoreError> {
    let conflict = if if_free {
        " ON CONFLICT (version) DO NOTHING"
    } else {
        ""
    };
    let inserted = sqlx::query(&format!(
        "INSERT INTO account_versions (version, imported_at_ms, origin, digest, accounts, identities) \
         VALUES ($1,$2,$3,$4,$5,$6){conflict}"
    ))
    .bind(version)
    .bind(now_ms)
    .bind(origin)
    .bind(digest)
    .bind(&texts.accounts)
    .bind(&texts.identities)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(inserted == 1)
}
