//! The UI's static files, embedded in the binary (nothing is fetched at build or run time).
//! Each is served at `/assets/{name}` under a name that carries a hash of its bytes, so a
//! browser may keep it for a year: a new build with other bytes gets another URL.

use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

/// One embedded file.
pub struct Asset {
    /// The name pages link to (with its content hash), e.g. `app.1f2e3d4c.css`.
    pub name: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

/// `(stem, extension, content type, bytes)` of every asset. htmx and its SSE extension are
/// vendored from npm (`htmx.org@2.0.11`, `htmx-ext-sse@2.2.4`, both 0BSD).
const FILES: &[(&str, &str, &str, &[u8])] = &[
    ("htmx", "js", "text/javascript; charset=utf-8", include_bytes!("../assets/htmx-2.0.11.min.js")),
    (
        "htmx-sse",
        "js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/htmx-ext-sse-2.2.4.min.js"),
    ),
    ("app", "js", "text/javascript; charset=utf-8", include_bytes!("../assets/app.js")),
    ("app", "css", "text/css; charset=utf-8", include_bytes!("../assets/app.css")),
    ("icon", "svg", "image/svg+xml", include_bytes!("../assets/icon.svg")),
];

/// How long a browser may keep an asset (its URL changes with its bytes).
pub const CACHE_CONTROL: &str = "public, max-age=31536000, immutable";

fn all() -> &'static [Asset] {
    static ALL: OnceLock<Vec<Asset>> = OnceLock::new();
    ALL.get_or_init(|| {
        FILES
            .iter()
            .map(|(stem, ext, content_type, bytes)| {
                // SipHash with fixed keys: stable for one build, which is all a cache key needs.
                #[allow(deprecated)]
                let mut h = std::hash::SipHasher::new();
                bytes.hash(&mut h);
                Asset { name: format!("{stem}.{:08x}.{ext}", h.finish() as u32), content_type, bytes }
            })
            .collect()
    })
}

/// The asset served under `name`, if any.
pub fn get(name: &str) -> Option<&'static Asset> {
    all().iter().find(|a| a.name == name)
}

/// The URL of the asset `stem.ext` (e.g. `url("app.css")`). Panics on a name not in [`FILES`]:
/// a programming error the page tests catch.
pub fn url(file: &str) -> String {
    let (stem, ext) = file.rsplit_once('.').unwrap_or((file, ""));
    let found = FILES.iter().position(|(s, e, _, _)| *s == stem && *e == ext);
    match found {
        Some(i) => format!("/assets/{}", all()[i].name),
        None => panic!("no embedded asset {file}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_is_served_under_its_hashed_url() {
        for (stem, ext, _, bytes) in FILES {
            let url = url(&format!("{stem}.{ext}"));
            let name = url.strip_prefix("/assets/").unwrap();
            assert_eq!(get(name).unwrap().bytes, *bytes);
            assert!(name.starts_with(stem) && name.ends_with(ext), "{name}");
        }
        assert!(get("app.css").is_none(), "only hashed names are served");
        assert!(get("../Cargo.toml").is_none());
    }
}
