//! The login page: an access key id and its secret.

use leptos::prelude::*;

use crate::shell::Head;

/// The login form; `message` says why the last attempt failed, `next` is where to go after.
#[component]
pub fn LoginPage(instance_name: String, next: String, message: Option<String>) -> impl IntoView {
    let title = format!("Log in · {instance_name}");
    view! {
        <html lang="en">
            <Head title=title/>
            <body>
                <main class="login panel" id="main">
                    <h1>{instance_name}</h1>
                    <p class="muted">"Log in with an admin credential (the first one is printed when the control plane starts for the first time)."</p>
                    {message.map(|m| view! { <div class="banner error" role="alert" id="login-error">{m}</div> })}
                    <form method="post" action="/login">
                        <input type="hidden" name="next" value=next/>
                        <label for="access_key_id">"Access key id"</label>
                        <input type="text" id="access_key_id" name="access_key_id" autocomplete="username" required autofocus/>
                        <label for="secret">"Secret"</label>
                        <input type="password" id="secret" name="secret" autocomplete="current-password" required/>
                        <button type="submit">"Log in"</button>
                    </form>
                </main>
            </body>
        </html>
    }
}
