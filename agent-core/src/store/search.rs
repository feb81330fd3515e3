//! Filename search: substring or glob on the name of active files.
//!
//! A hub store keeps a trigram index of names (`name_fts`, SQLite FTS5, kept by triggers on
//! `files`; schema.rs): a substring of 3 or more characters is a phrase query on it, and a glob
//! is narrowed by its literal runs of 3 or more characters (all of which a match must contain)
//! and then checked exactly. Shorter terms, and agent stores (no index), scan `files`.
//! Hits come in index order (first indexed first) and page by the index row.

use rusqlite::{params, Connection};

use super::query::bodies_of_files;
use super::{Result, Store};
use crate::doc::{FileDoc, FileStatus};

/// A filename query.
#[derive(Clone, Debug)]
pub enum NameQuery {
    /// Case-insensitive substring of the name.
    Substring(String),
    /// A glob on the name (`*.pdf`, `IMG_??42.*`), case-insensitive.
    Glob {
        matcher: globset::GlobMatcher,
        /// Literal runs outside brackets and braces, each of which every match contains.
        literals: Vec<String>,
    },
}

impl NameQuery {
    /// A glob when the term has glob metacharacters, otherwise a substring.
    pub fn parse(term: &str) -> Result<NameQuery, globset::Error> {
        if term.contains(['*', '?', '[', '{']) {
            let glob =
                globset::GlobBuilder::new(term).case_insensitive(true).literal_separator(true).build()?;
            Ok(NameQuery::Glob { matcher: glob.compile_matcher(), literals: glob_literals(term) })
        } else {
            Ok(NameQuery::Substring(term.to_owned()))
        }
    }

    fn matches(&self, name: &str) -> bool {
        match self {
            NameQuery::Substring(t) => name.to_lowercase().contains(&t.to_lowercase()),
            NameQuery::Glob { matcher, .. } => matcher.is_match(name),
        }
    }

    /// The FTS5 query (an AND of quoted phrases, each of 3 or more characters), if the index
    /// can answer this query.
    fn fts_query(&self) -> Option<String> {
        let quote = |t: &str| format!("\"{}\"", t.replace('"', "\"\""));
        let long = |t: &&String| t.chars().count() >= 3;
        match self {
            NameQuery::Substring(t) if t.chars().count() >= 3 => Some(quote(t)),
            NameQuery::Substring(_) => None,
            NameQuery::Glob { literals, .. } => {
                let parts: Vec<String> = literals.iter().filter(long).map(|l| quote(l)).collect();
                (!parts.is_empty()).then(|| parts.join(" "))
            }
        }
    }
}

/// The literal runs of a glob outside `[...]` and `{...}` (escaped characters end a run).
fn glob_literals(glob: &str) -> Vec<String> {
    let (mut out, mut run, mut brackets, mut braces) = (Vec::new(), String::new(), 0u32, 0u32);
    let mut flush = |run: &mut String| {
        if !run.is_empty() {
            out.push(std::mem::take(run));
        }
    };
    for c in glob.chars() {
        match c {
            '[' => brackets += 1,
            ']' if brackets > 0 => brackets -= 1,
            '{' if brackets == 0 => braces += 1,
            '}' if brackets == 0 && braces > 0 => braces -= 1,
            '*' | '?' | '\\' => {}
            c if brackets == 0 && braces == 0 => {
                run.push(c);
                continue;
            }
            _ => {}
        }
        flush(&mut run);
    }
    flush(&mut run);
    out
}

/// One page of search hits.
#[derive(Clone, Debug, Default)]
pub struct NameHits {
    pub files: Vec<FileDoc>,
    /// Where the next page starts (`after` of the next call); `None` when this was the last
    /// page or the query scanned without the index (such queries return one page).
    pub next: Option<i64>,
}

impl Store {
    /// Active files (all nodes) whose name matches, at most `limit`.
    pub fn search_names(&self, query: &NameQuery, limit: usize) -> Result<Vec<FileDoc>> {
        Ok(self.search_page(query, None, limit, &|_| true)?.files)
    }

    /// Whether searches use the trigram index (a hub store).
    pub fn has_name_index(&self) -> bool {
        self.inner.name_index
    }

    /// One page of matching active files that also pass `keep` (for example a label filter),
    /// after the position `after` returned by the previous page.
    pub fn search_page(
        &self,
        query: &NameQuery,
        after: Option<i64>,
        limit: usize,
        keep: &dyn Fn(&FileDoc) -> bool,
    ) -> Result<NameHits> {
        match query.fts_query().filter(|_| self.inner.name_index) {
            Some(fts) => self.read(|c| indexed_page(c, query, &fts, after.unwrap_or(0), limit, keep)),
            None => self.read(|c| scanned_page(c, query, limit, keep)),
        }
    }

    /// How many active files match, when the index can count them exactly (an indexed
    /// substring query); `None` otherwise.
    pub fn count_names(&self, query: &NameQuery) -> Result<Option<u64>> {
        match (query, query.fts_query().filter(|_| self.inner.name_index)) {
            (NameQuery::Substring(_), Some(fts)) => self.read(|c| {
                let n: i64 = c
                    .prepare_cached("SELECT count(*) FROM name_fts WHERE name_fts MATCH ?1")?
                    .query_row([&fts], |r| r.get(0))?;
                Ok(Some(n as u64))
            }),
            _ => Ok(None),
        }
    }
}

fn indexed_page(
    c: &Connection,
    query: &NameQuery,
    fts: &str,
    mut after: i64,
    limit: usize,
    keep: &dyn Fn(&FileDoc) -> bool,
) -> Result<NameHits> {
    let mut st = c.prepare_cached(
        "SELECT n.rowid, r.file_id FROM name_fts n JOIN name_rows r ON r.row = n.rowid
         WHERE name_fts MATCH ?1 AND n.rowid > ?2 ORDER BY n.rowid LIMIT ?3",
    )?;
    let chunk = (limit * 2).clamp(64, 4096);
    let mut hits = NameHits::default();
    loop {
        let rows: Vec<(i64, String)> = st
            .query_map(params![fts, after, chunk as i64], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let exhausted = rows.len() < chunk;
        for (row, id) in rows {
            after = row;
            let Some(f) = bodies_of_files(c, [id])?.pop() else { continue };
            if f.status == FileStatus::Active && query.matches(&f.name) && keep(&f) {
                hits.files.push(f);
                if hits.files.len() == limit {
                    hits.next = Some(row);
                    return Ok(hits);
                }
            }
        }
        if exhausted {
            return Ok(hits);
        }
    }
}

fn scanned_page(
    c: &Connection,
    query: &NameQuery,
    limit: usize,
    keep: &dyn Fn(&FileDoc) -> bool,
) -> Result<NameHits> {
    let mut st = c.prepare_cached(
        "SELECT id, name FROM files WHERE status = 0 ORDER BY node_id, export_parent, name",
    )?;
    let mut rows = st.query([])?;
    let mut hits = NameHits::default();
    while let Some(r) = rows.next()? {
        let name: String = r.get(1)?;
        if !query.matches(&name) {
            continue;
        }
        if let Some(f) = bodies_of_files(c, [r.get::<_, String>(0)?])?.pop() {
            if keep(&f) {
                hits.files.push(f);
                if hits.files.len() == limit {
                    break;
                }
            }
        }
    }
    Ok(hits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glob_literals_skip_classes_and_alternatives() {
        assert_eq!(glob_literals("*2019*.pdf"), vec!["2019", ".pdf"]);
        assert_eq!(glob_literals("IMG_00??.jpg"), vec!["IMG_00", ".jpg"]);
        assert_eq!(glob_literals("report[0-9]{abc,def}.txt"), vec!["report", ".txt"]);
        assert_eq!(glob_literals("*"), Vec::<String>::new());
    }

    #[test]
    fn fts_queries_quote_and_need_three_characters() {
        assert_eq!(NameQuery::parse("ab").unwrap().fts_query(), None);
        assert_eq!(NameQuery::parse("a\"bc").unwrap().fts_query().unwrap(), "\"a\"\"bc\"");
        assert_eq!(NameQuery::parse("*ab*.pdf").unwrap().fts_query().unwrap(), "\".pdf\"");
        assert_eq!(NameQuery::parse("*?").unwrap().fts_query(), None);
    }
}
