//! Log set-up: human text for terminals, one JSON object per line for
//! production (`--log-format json`). Logs go to stderr; stdout is for
//! command output.

use tracing::Level;

use crate::config::{LogConfig, LogFormat};

pub fn init(config: &LogConfig) {
    let level = match config.level.as_str() {
        "error" => Level::ERROR,
        "warn" => Level::WARN,
        "debug" => Level::DEBUG,
        "trace" => Level::TRACE,
        _ => Level::INFO,
    };
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr);
    let _ = match config.format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
