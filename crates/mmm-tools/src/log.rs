//! The tools' log on stderr in 2.2.1's Log4perl layout `%p: %m%n` (`INFO: Directory is ok`).

use std::fmt::Write as _;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// `LEVEL: message`.
struct PerlLayout;

impl<S, N> FormatEvent<S, N> for PerlLayout
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let word = match *event.metadata().level() {
            Level::ERROR => "ERROR",
            Level::WARN => "WARN",
            Level::INFO => "INFO",
            Level::DEBUG => "DEBUG",
            Level::TRACE => "TRACE",
        };
        write!(writer, "{word}: ")?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Logs INFO and above (DEBUG with `MMM_TOOLS_DEBUG` set) to stderr.
pub fn init() {
    let level = if std::env::var_os("MMM_TOOLS_DEBUG").is_some() {
        Level::DEBUG
    } else {
        Level::INFO
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .event_format(PerlLayout)
        .try_init();
}

/// `n` bytes in MiB with one decimal (`12.3 MiB`).
pub fn mib(n: u64) -> String {
    let mut s = String::new();
    let _ = write!(s, "{:.1} MiB", n as f64 / (1024.0 * 1024.0));
    s
}
