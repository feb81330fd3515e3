//! Synthetic file documents for benchmarks and load tests.
//!
//! [`DocGen`] produces valid [`FileDoc`]s shaped like the naive-ingest peer of the anchor
//! benchmarks (`shared/bench/sqlite_ingest_rs`): a few nodes (default 8), each with a fixed set of
//! directories (default 1,000) of the form `/home/user/{Top}/{year}/{month}/{leaf}`, files spread
//! uniformly over nodes and directories, and a uniform mix of eight extensions (`.jpg .pdf .txt
//! .mp4 .mp3 .png .md .docx`) with their MIME types. The store bulk-insert benchmark
//! (`mosaicfs-bench bulk-insert`) uses it, and so do later benchmarks and tests that need a hub or
//! a replica full of file documents.
//!
//! Determinism: with the same seed and options, document `i` always has the same node, path,
//! name, size, mtime and MIME type, whatever order documents are generated in (every document has
//! its own random stream derived from `(seed, i)`). Its `_id` (`FileId::generate`, UUID v7) and
//! inode (`Inode::generate`) are random by design, like a crawler's: ids generated one after the
//! other are ascending, as in a real crawl. `first_seen` is one timestamp for the whole generator
//! (the time it was built, unless [`GenOptions::first_seen`] fixes it).
//!
//! Every path is unique: the file name carries `i` (`file_{i:07}{ext}`).

use agent_core::doc::{Document, FileDoc, FileSource, FileStatus, Timestamp};
use agent_core::ids::{FileId, Inode, NodeId, Rev};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// The extension mix, each with its MIME type (the same eight as the naive-ingest peer).
pub const EXTENSIONS: [(&str, &str); 8] = [
    (".jpg", "image/jpeg"),
    (".pdf", "application/pdf"),
    (".txt", "text/plain"),
    (".mp4", "video/mp4"),
    (".mp3", "audio/mpeg"),
    (".png", "image/png"),
    (".md", "text/markdown"),
    (".docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
];

const TOPS: [&str; 4] = ["Photos", "Documents", "Music", "Videos"];
const LEAVES: [&str; 4] = ["raw", "edited", "misc", "shared"];

/// Modification times fall in `[MTIME_BASE, MTIME_BASE + MTIME_SPAN)` seconds since the epoch
/// (2017-07 to 2026-12).
const MTIME_BASE: i64 = 1_500_000_000;
const MTIME_SPAN: i64 = 300_000_000;
/// Sizes are uniform in `[0, 1 GiB)`.
const MAX_SIZE: u64 = 1 << 30;

/// The shape of the generated population (the seed is given separately to [`DocGen::new`]).
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Number of distinct nodes the files belong to (at least 1).
    pub nodes: usize,
    /// Directories per node that files are spread over (at least 1).
    pub dirs_per_node: usize,
    /// `first_seen` of every document; `None` means the time the generator is built.
    pub first_seen: Option<Timestamp>,
}

impl Default for GenOptions {
    fn default() -> Self {
        GenOptions { nodes: 8, dirs_per_node: 1000, first_seen: None }
    }
}

/// A seeded generator of file documents. See the module documentation.
#[derive(Clone, Debug)]
pub struct DocGen {
    seed: u64,
    nodes: Vec<NodeId>,
    /// `dirs[k]`: the directories of node `k`.
    dirs: Vec<Vec<String>>,
    first_seen: Timestamp,
}

/// splitmix64: turns `(seed, i)` into well-spread per-document seeds.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl DocGen {
    /// A generator for `seed`. `opts.nodes` and `opts.dirs_per_node` are raised to 1 if 0.
    pub fn new(seed: u64, opts: GenOptions) -> DocGen {
        let mut rng = StdRng::seed_from_u64(seed);
        let n_nodes = opts.nodes.max(1);
        let n_dirs = opts.dirs_per_node.max(1);
        let nodes: Vec<NodeId> = (0..n_nodes)
            .map(|k| {
                let s = format!("node-{k:02}-{:08x}", rng.random::<u32>());
                s.parse::<NodeId>().expect("generated node ids are valid")
            })
            .collect();
        let dirs: Vec<Vec<String>> = (0..n_nodes)
            .map(|_| {
                (0..n_dirs)
                    .map(|_| {
                        format!(
                            "/home/user/{}/{}/{:02}/{}",
                            TOPS[rng.random_range(0..TOPS.len())],
                            2010 + rng.random_range(0..15u32),
                            1 + rng.random_range(0..12u32),
                            LEAVES[rng.random_range(0..LEAVES.len())],
                        )
                    })
                    .collect::<Vec<String>>()
            })
            .collect();
        DocGen { seed, nodes, dirs, first_seen: opts.first_seen.unwrap_or_else(agent_core::doc::now) }
    }

    /// The node ids documents are spread over (deterministic for a seed).
    pub fn nodes(&self) -> &[NodeId] {
        &self.nodes
    }

    /// Document number `i`: a new, active file (`_rev` 0, i.e. not yet stored).
    pub fn file_doc(&mut self, i: u64) -> FileDoc {
        let mut r = StdRng::seed_from_u64(mix(mix(self.seed) ^ i));
        let k = r.random_range(0..self.nodes.len());
        let dir = &self.dirs[k][r.random_range(0..self.dirs[k].len())];
        let (ext, mime) = EXTENSIONS[r.random_range(0..EXTENSIONS.len())];
        let size = r.random_range(0..MAX_SIZE);
        let secs = MTIME_BASE + r.random_range(0..MTIME_SPAN);
        // Microsecond precision, like `agent_core::doc::now()`.
        let nanos = r.random_range(0..1_000_000u32) * 1000;
        let mtime = Timestamp::from_timestamp(secs, nanos).unwrap_or_default();
        let path = format!("{dir}/file_{i:07}{ext}");
        let source = FileSource::new(self.nodes[k].clone(), &path)
            .expect("generated paths are absolute and normalized");
        FileDoc {
            id: FileId::generate(),
            rev: Rev::NONE,
            name: source.name().to_owned(),
            source,
            size,
            mtime,
            mime: Some(mime.to_owned()),
            inode: Inode::generate(),
            status: FileStatus::Active,
            first_seen: self.first_seen,
            deleted_at: None,
            received_at: None,
        }
    }

    /// Documents `start .. start + n`, as store documents.
    pub fn batch(&mut self, start: u64, n: usize) -> Vec<Document> {
        (start..start + n as u64).map(|i| Document::File(self.file_doc(i))).collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn generated_docs_are_valid_and_paths_unique() {
        let mut g = DocGen::new(7, GenOptions::default());
        let docs = g.batch(0, 5000);
        assert_eq!(docs.len(), 5000);
        let mut paths = HashSet::new();
        let mut ids = HashSet::new();
        for d in &docs {
            d.validate().expect("generated document is valid");
            let f = d.as_file().expect("a file document");
            assert_eq!(f.rev, Rev::NONE);
            assert!(f.inode.is_assigned());
            assert!(paths.insert(f.source.export_path.clone()), "duplicate path {}", f.source.export_path);
            assert!(ids.insert(f.id.clone()), "duplicate id {}", f.id);
            // What the store keeps must read back as the same document.
            let json = serde_json::to_string(d).expect("serializes");
            let back: Document = serde_json::from_str(&json).expect("parses back");
            assert_eq!(&back, d);
        }
        let nodes: HashSet<_> =
            docs.iter().filter_map(|d| d.as_file()).map(|f| f.source.node_id.clone()).collect();
        assert_eq!(nodes.len(), 8, "files are spread over every node");
    }

    #[test]
    fn same_seed_same_population_in_any_order() {
        let opts = GenOptions { nodes: 3, dirs_per_node: 50, first_seen: None };
        let mut a = DocGen::new(42, opts.clone());
        let mut b = DocGen::new(42, opts);
        let shape = |f: FileDoc| (f.source, f.size, f.mtime, f.mime);
        for i in [0u64, 1, 17, 999] {
            assert_eq!(shape(a.file_doc(i)), shape(b.file_doc(i)));
        }
        // Out of order gives the same document for the same `i`.
        assert_eq!(shape(a.file_doc(5)), shape(b.file_doc(5)));
        let mut c = DocGen::new(43, GenOptions::default());
        assert_ne!(a.nodes(), c.nodes());
        assert_ne!(shape(a.file_doc(3)).0, shape(c.file_doc(3)).0);
    }
}
