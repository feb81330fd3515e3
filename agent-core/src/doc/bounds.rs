//! Bounds on what a document may hold (ARCHITECTURE §2.5, §5.1): a node's documents reach every
//! other node's replica and mount, so nothing in them may be large enough, or odd enough, to
//! break another node's view. Checked by `Document::validate`, so the hub refuses such a push
//! and a replica skips such a pulled document.
//!
//! - A whole document is at most [`MAX_DOC_BYTES`] of JSON (the hub checks it on receipt).
//! - Names (a file's, a node's) are 1–255 bytes (`NAME_MAX`) without NUL or `/`: a longer one
//!   cannot be listed by a mount (the kernel refuses it, and the whole directory failed), and
//!   `x\0y` is shown as `x`.
//! - Paths are at most 4,096 bytes (`PATH_MAX`) without NUL; other text fields are bounded too.
//! - Revisions are at most [`MAX_REV`] (2^53 − 1: exact in JSON, never wraps an `i64` column or
//!   `current_rev + 1`).

/// The largest document, as JSON.
pub const MAX_DOC_BYTES: usize = 256 * 1024;
/// The largest revision a document may carry.
pub const MAX_REV: u64 = (1 << 53) - 1;
/// A file or node name, in bytes (`NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;
/// A path, in bytes (`PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// A message or other free text, in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024;
/// A short label (a version, a key, a MIME type), in bytes.
pub const MAX_SHORT_BYTES: usize = 256;

/// Text of at most `max` bytes, without NUL.
pub fn text(field: &str, value: &str, max: usize) -> Result<(), String> {
    if value.len() > max {
        return Err(format!("{field} is {} bytes (at most {max})", value.len()));
    }
    if value.contains('\0') {
        return Err(format!("{field} contains a NUL character"));
    }
    Ok(())
}

/// A name: 1–255 bytes, without NUL or `/`.
pub fn name(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field} is empty"));
    }
    text(field, value, MAX_NAME_BYTES)?;
    if value.contains('/') {
        return Err(format!("{field} contains '/'"));
    }
    Ok(())
}

/// A path: at most 4,096 bytes, without NUL.
pub fn path(field: &str, value: &str) -> Result<(), String> {
    text(field, value, MAX_PATH_BYTES)
}

/// A list of at most `max` entries.
pub fn list<T>(field: &str, items: &[T], max: usize) -> Result<(), String> {
    if items.len() > max {
        return Err(format!("{field} has {} entries (at most {max})", items.len()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_paths_and_text_are_bounded_and_free_of_nul() {
        assert!(name("name", "report.pdf").is_ok());
        assert!(name("name", &"é".repeat(127)).is_ok(), "254 bytes");
        assert!(name("name", &"x".repeat(256)).unwrap_err().contains("256 bytes"));
        assert!(name("name", &"x".repeat(5000)).is_err());
        assert!(name("name", "x\0y").unwrap_err().contains("NUL"));
        assert!(name("name", "a/b").unwrap_err().contains('/'));
        assert!(name("name", "").is_err());
        assert!(name("name", "line\nbreak").is_ok(), "control characters are legal in file names");
        assert!(path("path", &format!("/{}", "a/".repeat(2047))).is_ok());
        assert!(path("path", &"/a".repeat(2049)).is_err());
        assert!(text("t", "ok", 2).is_ok() && text("t", "long", 2).is_err());
        assert!(list("l", &[1, 2, 3], 2).is_err() && list("l", &[1, 2], 2).is_ok());
    }
}
