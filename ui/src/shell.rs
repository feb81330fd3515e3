//! The frame of every signed-in page: top bar, sidebar, the live-update connection.

use leptos::prelude::*;

use crate::assets;

/// What the frame shows around a page: whose hub, who is signed in, which page is open.
#[derive(Clone, Debug)]
pub struct Chrome {
    /// `[server] instance_name`, by default the hub's host name.
    pub instance_name: String,
    /// The signed-in credential's name.
    pub user: String,
    pub page: Page,
}

/// The pages of the sidebar.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Dashboard,
    Search,
    Nodes,
}

impl Page {
    pub const ALL: [Page; 3] = [Page::Dashboard, Page::Search, Page::Nodes];

    pub fn title(self) -> &'static str {
        match self {
            Page::Dashboard => "Dashboard",
            Page::Search => "Search",
            Page::Nodes => "Nodes",
        }
    }

    pub fn href(self) -> &'static str {
        match self {
            Page::Dashboard => "/",
            Page::Search => "/search",
            Page::Nodes => "/nodes",
        }
    }
}

/// The `<head>` every page shares: styles, icon, htmx and its SSE extension.
#[component]
pub fn Head(title: String) -> impl IntoView {
    view! {
        <head>
            <meta charset="utf-8"/>
            <meta name="viewport" content="width=device-width, initial-scale=1"/>
            <title>{title}</title>
            <link rel="stylesheet" href=assets::url("app.css")/>
            <link rel="icon" href=assets::url("icon.svg")/>
            <script src=assets::url("htmx.js") defer></script>
            <script src=assets::url("htmx-sse.js") defer></script>
            <script src=assets::url("app.js") defer></script>
        </head>
    }
}

/// A signed-in page. The body holds one Server-Sent Events connection (`/ui/events`) whose
/// events (`node`, `file`, …) make the regions that show such data fetch their fragment again.
#[component]
pub fn Shell(chrome: Chrome, children: Children) -> impl IntoView {
    let title = format!("{} · {}", chrome.page.title(), chrome.instance_name);
    let links = Page::ALL
        .into_iter()
        .map(|p| {
            let current = (p == chrome.page).then_some("page");
            view! { <li><a href=p.href() aria-current=current>{p.title()}</a></li> }
        })
        .collect_view();
    view! {
        <html lang="en">
            <Head title=title/>
            <body hx-ext="sse" sse-connect="/ui/events">
                <a class="skip" href="#main">"Skip to content"</a>
                <header class="topbar">
                    <span class="instance">{chrome.instance_name.clone()}</span>
                    <span class="muted" role="img" aria-label="Notifications: none yet" title="Notifications arrive with a later release">"🔔"</span>
                    <span class="hide-narrow">{chrome.user.clone()}</span>
                    <form method="post" action="/logout">
                        <button class="quiet" type="submit">"Log out"</button>
                    </form>
                </header>
                <div class="layout">
                    <nav class="sidebar" aria-label="Main">
                        <ul>{links}</ul>
                    </nav>
                    <main id="main">{children()}</main>
                </div>
            </body>
        </html>
    }
}
