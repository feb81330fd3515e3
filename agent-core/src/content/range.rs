//! The `Range` request header (RFC 9110 §14.2), as both the transfer server and the hub read it:
//! one byte range (`bytes=a-b`, `bytes=a-`, `bytes=-n`). A header that is not one well-formed
//! byte range — several ranges, another unit, garbage, `last < first` — is ignored and the whole
//! file is sent, as RFC 9110 allows; a well-formed range that starts at or beyond the end (or a
//! zero-length suffix) is unsatisfiable: 416.

/// What to send of a file of `size` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wanted {
    /// The whole file (no usable `Range`).
    Whole,
    /// `[start, end)`, non-empty and within the file.
    Part(u64, u64),
    /// A well-formed range that lies outside the file: 416.
    Unsatisfiable,
}

pub fn parse(header: Option<&str>, size: u64) -> Wanted {
    let Some(spec) = header.and_then(|h| h.trim().strip_prefix("bytes=")) else { return Wanted::Whole };
    if spec.contains(',') {
        return Wanted::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else { return Wanted::Whole };
    let (a, b) = (a.trim(), b.trim());
    let range = match (a.is_empty(), b.is_empty()) {
        // bytes=-n: the last n bytes.
        (true, false) => match b.parse::<u64>() {
            Ok(0) => return Wanted::Unsatisfiable,
            Ok(n) => (size.saturating_sub(n), size),
            Err(_) => return Wanted::Whole,
        },
        (false, true) => match a.parse::<u64>() {
            Ok(start) => (start, size),
            Err(_) => return Wanted::Whole,
        },
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(start), Ok(last)) if last >= start => (start, last.saturating_add(1).min(size)),
            _ => return Wanted::Whole,
        },
        (true, true) => return Wanted::Whole,
    };
    if range.0 >= size {
        Wanted::Unsatisfiable
    } else {
        Wanted::Part(range.0, range.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_byte_range_in_its_three_forms() {
        assert_eq!(parse(Some("bytes=10-19"), 100), Wanted::Part(10, 20));
        assert_eq!(parse(Some("bytes=90-"), 100), Wanted::Part(90, 100));
        assert_eq!(parse(Some("bytes=-5"), 100), Wanted::Part(95, 100));
        assert_eq!(parse(Some("bytes=-500"), 100), Wanted::Part(0, 100), "more than the file");
        assert_eq!(parse(Some("bytes=95-200"), 100), Wanted::Part(95, 100), "clipped to the end");
        assert_eq!(parse(Some("bytes=0-0"), 1), Wanted::Part(0, 1));
    }

    #[test]
    fn outside_the_file_is_unsatisfiable_and_the_rest_is_ignored() {
        assert_eq!(parse(Some("bytes=100-"), 100), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=-0"), 100), Wanted::Unsatisfiable);
        assert_eq!(parse(Some("bytes=0-"), 0), Wanted::Unsatisfiable);
        for ignored in [
            None,
            Some("items=0-5"),
            Some("bytes=0-5,10-20"),
            Some("bytes=x-5"),
            Some("bytes=9-3"),
            Some("bytes=-"),
        ] {
            assert_eq!(parse(ignored, 100), Wanted::Whole, "{ignored:?}");
        }
    }
}
