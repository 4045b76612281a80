//! PostgreSQL set-up shared by the load generator and the soak run: a fresh
//! database per run on the server the caller names.

type Error = Box<dyn std::error::Error + Send + Sync>;

async fn admin_sql(server: &str, sql: &str) -> Result<(), Error> {
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(server)
        .await
        .map_err(|e| format!("connecting to {server}: {e}"))?;
    let result = sqlx::raw_sql(sql).execute(&admin).await;
    admin.close().await;
    result.map_err(|e| format!("{sql}: {e}"))?;
    Ok(())
}

/// Drops `db` if it exists and creates it empty.
pub async fn create_database(server: &str, db: &str) -> Result<(), Error> {
    admin_sql(server, &format!("DROP DATABASE IF EXISTS {db}")).await?;
    admin_sql(server, &format!("CREATE DATABASE {db}")).await
}

/// Drops `db` if it exists.
pub async fn drop_database(server: &str, db: &str) -> Result<(), Error> {
    admin_sql(server, &format!("DROP DATABASE IF EXISTS {db}")).await
}
