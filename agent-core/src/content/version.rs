//! Which version of a file a request means (ARCHITECTURE §10.1): its size and modification time,
//! as the owner's disk says now and as the reader's document said when it was indexed.
//!
//! - The owner answers every response with an `ETag` made of the version it read.
//! - A request may name the version it expects (`?version=SIZE-MTIME_NS`): when the disk no
//!   longer has it, the answer is 409 `changed` and nothing is sent, so a reader never stores
//!   bytes of one version under another.
//! - `If-Range: "ETAG"` (RFC 9110 §13.1.5): the range is sent only while the file is still that
//!   version, else the whole file (a resumed download never mixes versions).

use std::fs::Metadata;

/// A file's size and modification time (nanoseconds since the epoch).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FileVersion {
    pub size: u64,
    pub mtime_ns: i64,
}

impl FileVersion {
    /// The version on disk now.
    pub fn of(meta: &Metadata) -> Option<FileVersion> {
        let mtime = meta.modified().ok()?;
        let ns = match mtime.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).ok()?,
            Err(e) => -i64::try_from(e.duration().as_nanos()).ok()?,
        };
        Some(FileVersion { size: meta.len(), mtime_ns: ns })
    }

    /// The version a file document describes.
    pub fn of_doc(f: &crate::doc::FileDoc) -> FileVersion {
        FileVersion { size: f.size, mtime_ns: f.mtime.timestamp_nanos_opt().unwrap_or(i64::MAX) }
    }

    /// `SIZE-MTIME_NS` (the `version` query parameter).
    pub fn token(&self) -> String {
        format!("{}-{}", self.size, self.mtime_ns)
    }

    pub fn parse_token(s: &str) -> Option<FileVersion> {
        let (size, mtime) = s.trim().split_once('-').filter(|(a, _)| !a.is_empty())?;
        // mtime may be negative (before 1970): "SIZE--NS".
        Some(FileVersion { size: size.parse().ok()?, mtime_ns: mtime.parse().ok()? })
    }

    /// The strong entity tag of this version: `"SIZE-MTIME_NS"`.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.token())
    }

    /// Whether an `If-Range` value names this version (a date or a weak tag never does).
    pub fn matches_if_range(&self, if_range: &str) -> bool {
        let v = if_range.trim();
        v.strip_prefix('"').and_then(|v| v.strip_suffix('"')) == Some(self.token().as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_and_tags_round_trip() {
        let v = FileVersion { size: 4096, mtime_ns: 1_700_000_000_123_456_789 };
        assert_eq!(v.token(), "4096-1700000000123456789");
        assert_eq!(FileVersion::parse_token(&v.token()), Some(v));
        let old = FileVersion { size: 1, mtime_ns: -5 };
        assert_eq!(FileVersion::parse_token(&old.token()), Some(old));
        assert_eq!(v.etag(), "\"4096-1700000000123456789\"");
        assert!(v.matches_if_range(&v.etag()));
        assert!(!v.matches_if_range("W/\"4096-1700000000123456789\""), "weak tags never match");
        assert!(!v.matches_if_range("Wed, 21 Oct 2015 07:28:00 GMT"));
        for bad in ["", "-", "x-1", "1-", "-1", "1-2-3x"] {
            assert_eq!(FileVersion::parse_token(bad), None, "{bad:?}");
        }
    }
}
