//! `/api/files`, `/api/search`: file documents, a page at a time, and filename search.

use serde::{Deserialize, Serialize};

use crate::doc::FileDoc;

/// `GET /api/files?limit=&cursor=`.
#[derive(Clone, Debug, Default, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Page size, 1-1000 (default 100).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
}

/// A page of file documents.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct FilesPage {
    pub files: Vec<FileDoc>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/files/by-path?node_id=&path=`.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ByPath {
    pub node_id: String,
    pub path: String,
}

/// A page of search hits.
#[derive(Clone, Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SearchPage {
    pub files: Vec<FileDoc>,
    pub next_cursor: Option<String>,
    /// With `count=true`: how many active files match the name query (when the index can count).
    pub total: Option<u64>,
}
