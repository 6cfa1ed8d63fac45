//! UTC timestamps of backup files and records. (Private files and directories, atomic
//! replacement: the `mpcium-fs` crate, shared with the identity files.)

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A UTC calendar time, to the second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UtcTime(OffsetDateTime);

impl UtcTime {
    /// The current time.
    pub fn now() -> Self {
        let secs = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        Self::from_unix(secs)
    }

    /// Converts seconds since the Unix epoch (a time past what `time` represents gives the epoch).
    pub fn from_unix(secs: u64) -> Self {
        let t = i64::try_from(secs).ok().and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok());
        UtcTime(t.unwrap_or(OffsetDateTime::UNIX_EPOCH))
    }

    /// RFC 3339, e.g. `2026-11-21T20:18:23Z` (empty past the year 9999).
    pub fn rfc3339(&self) -> String {
        self.0.format(&Rfc3339).unwrap_or_default()
    }

    /// The backup file-name form, e.g. `2026-11-21_20-18-23`.
    pub fn file_stamp(&self) -> String {
        let t = self.0;
        format!(
            "{:04}-{:02}-{:02}_{:02}-{:02}-{:02}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_formatting() {
        assert_eq!(UtcTime::from_unix(0).rfc3339(), "1970-01-01T00:00:00Z");
        // 2024-02-29 12:34:56 UTC (leap day).
        assert_eq!(UtcTime::from_unix(1_709_210_096).file_stamp(), "2024-02-29_12-34-56");
        assert_eq!(UtcTime::from_unix(1_795_292_303).rfc3339(), "2026-11-21T20:18:23Z");
    }
}
