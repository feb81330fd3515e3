//! `GET /assets/{name}`: the UI's embedded files, cached for a year (their names change with
//! their bytes).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn serve(Path(name): Path<String>) -> Response {
    match ui::assets::get(&name) {
        Some(a) => (
            [(header::CONTENT_TYPE, a.content_type), (header::CACHE_CONTROL, ui::assets::CACHE_CONTROL)],
            a.bytes,
        )
            .into_response(),
        None => {
            (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no such asset").into_response()
        }
    }
}
