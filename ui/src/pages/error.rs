//! A failure as a page: what went wrong, in words, and a way on.

use leptos::prelude::*;

use crate::shell::Head;

#[component]
pub fn ErrorPage(title: String, message: String) -> impl IntoView {
    view! {
        <html lang="en">
            <Head title=title.clone()/>
            <body>
                <main class="login panel" id="main">
                    <h1>{title}</h1>
                    <p role="alert">{message}</p>
                    <p><a href="/">"Back to the dashboard"</a></p>
                </main>
            </body>
        </html>
    }
}

/// An error inside a page region (a fragment request that failed).
#[component]
pub fn ErrorBanner(message: String) -> impl IntoView {
    view! { <div class="banner error" role="alert">{message}</div> }
}
