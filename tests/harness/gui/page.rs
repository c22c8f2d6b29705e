//! Named questions about the app's page. This is the one place that knows the page's ids and
//! selectors: a test asks for `pane("chat")` or `image_shown(id, 40)`, and a change to the page's
//! markup is a change here only. Each question is a JavaScript expression answered in the page;
//! `&` joins two into one that holds when both do.

use std::fmt::Write;

/// One question about the page, with the words a timeout names it by.
#[derive(Clone, Debug)]
pub struct Q {
    pub(super) what: String,
    pub(super) js: String,
}

impl std::ops::BitAnd for Q {
    type Output = Q;
    fn bitand(self, other: Q) -> Q {
        Q {
            what: format!("{}, {}", self.what, other.what),
            js: format!("({}) && ({})", self.js, other.js),
        }
    }
}

fn q(what: impl Into<String>, js: impl Into<String>) -> Q {
    Q {
        what: what.into(),
        js: js.into(),
    }
}

/// A JavaScript string literal (JSON's escaping is JavaScript's).
fn lit(s: &str) -> String {
    serde_json::Value::from(s).to_string()
}

fn by_id(id: &str) -> String {
    format!("document.getElementById({})", lit(id))
}

/// The element with `id` is on screen (not hidden).
pub fn shown(id: &str) -> Q {
    q(format!("#{id} shown"), format!("!{}.hidden", by_id(id)))
}

pub fn hidden(id: &str) -> Q {
    q(format!("#{id} hidden"), format!("{}.hidden", by_id(id)))
}

/// One of the app's screens: "lock", "onboard" or "main".
pub fn screen(name: &str) -> Q {
    shown(name)
}

/// One pane of the main screen: "welcome", "chat" or "settings".
pub fn pane(name: &str) -> Q {
    shown(name)
}

/// The incoming-call dialog.
pub fn ring_dialog() -> Q {
    shown("ring")
}

/// The main screen, connected to the server.
pub fn main_connected() -> Q {
    screen("main") & text_is("conn", "connected")
}

pub fn text_is(id: &str, text: &str) -> Q {
    q(
        format!("#{id} says {text:?}"),
        format!("{}.textContent === {}", by_id(id), lit(text)),
    )
}

pub fn text_has(id: &str, text: &str) -> Q {
    q(
        format!("#{id} mentions {text:?}"),
        format!("{}.textContent.includes({})", by_id(id), lit(text)),
    )
}

/// The element's text does not mention `text` (e.g. a status line moved on from "Checking…").
pub fn text_lacks(id: &str, text: &str) -> Q {
    q(
        format!("#{id} no longer mentions {text:?}"),
        format!("!{}.textContent.includes({})", by_id(id), lit(text)),
    )
}

pub fn text_starts(id: &str, text: &str) -> Q {
    q(
        format!("#{id} starts with {text:?}"),
        format!("{}.textContent.startsWith({})", by_id(id), lit(text)),
    )
}

/// The element's text is `n` characters long (e.g. a code shown).
pub fn text_len(id: &str, n: usize) -> Q {
    q(
        format!("#{id} {n} characters long"),
        format!("{}.textContent.length === {n}", by_id(id)),
    )
}

/// A checkbox or radio button is checked.
pub fn checked(id: &str) -> Q {
    q(format!("#{id} checked"), format!("{}.checked", by_id(id)))
}

/// The keyboard focus is on the element with `id`.
pub fn focus_on(id: &str) -> Q {
    q(
        format!("focus on #{id}"),
        format!("document.activeElement.id === {}", lit(id)),
    )
}

/// The window is visible again (after the tray brought it back).
pub fn window_visible() -> Q {
    q(
        "the window visible",
        "document.visibilityState === 'visible'",
    )
}

/// The document is a fresh one after a panic (`?locked=`), on the lock screen, and holds no text
/// containing `absent` anywhere.
pub fn fresh_lock_page_without(absent: &str) -> Q {
    q(
        "a fresh document after the panic",
        "location.search.startsWith('?locked=')",
    ) & screen("lock")
        & hidden("main")
        & q(
            format!("no {absent:?} in the page"),
            format!(
                "!document.documentElement.textContent.includes({})",
                lit(absent)
            ),
        )
}

/// The passcode field of the lock page is there.
pub fn lock_asks_passcode() -> Q {
    screen("lock") & shown("unlock-passcode")
}

/// The passcode prompt before a sensitive action.
pub fn passcode_prompt() -> Q {
    shown("passcode-ask")
}

/// `name` is among the friends.
pub fn friend_listed(name: &str) -> Q {
    q(
        format!("{name} among the friends"),
        format!(
            "!!document.querySelector('#friends li[data-user=' + {} + ']')",
            lit(&format!("\"{name}\""))
        ),
    )
}

/// Settings list `n` devices.
pub fn devices_listed(n: usize) -> Q {
    q(
        format!("{n} device(s) listed"),
        format!("document.querySelectorAll('#devices li').length === {n}"),
    )
}

/// Settings list at least one device (they have loaded).
pub fn devices_loaded() -> Q {
    q(
        "the device list",
        "document.querySelectorAll('#devices li').length > 0",
    )
}

/// The share QR code is drawn.
pub fn share_qr_drawn() -> Q {
    q(
        "the share QR drawn",
        "!!document.querySelector('#share-qr svg path')",
    )
}

/// The camera scan shows a live preview.
pub fn scan_previewing() -> Q {
    shown("scan")
        & q(
            "a preview frame",
            "document.getElementById('scan-preview').src.startsWith('blob:')",
        )
}

/// The camera scan is closed and its preview dropped.
pub fn scan_closed() -> Q {
    hidden("scan")
        & q(
            "the preview dropped",
            "!document.getElementById('scan-preview').hasAttribute('src')",
        )
}

/// A line from the peer is in the chat.
pub fn peer_line() -> Q {
    q(
        "a line from the peer",
        "!!document.querySelector('#messages li.theirs')",
    )
}

/// This side's first line shows the receipt `state` ("sent", "delivered").
pub fn my_receipt(state: &str) -> Q {
    q(
        format!("the receipt says {state}"),
        format!(
            "(document.querySelector('#messages li.mine .receipt') || {{}}).textContent === {}",
            lit(state)
        ),
    )
}

/// The chat item with the engine's id `id`, as a CSS selector (for clicks).
pub fn item(id: u64) -> String {
    format!("#messages li[data-id=\"{id}\"]")
}

fn item_js(id: u64) -> String {
    format!("document.querySelector({})", lit(&item(id)))
}

/// Item `id` shows its image, decoded from an object URL, `width` pixels wide.
pub fn image_shown(id: u64, width: u32) -> Q {
    q(
        format!("item {id}'s image shown"),
        format!(
            "(() => {{ const i = {}; const img = i && i.querySelector('img'); \
             return !!img && img.src.startsWith('blob:') && img.complete && img.naturalWidth === {width}; }})()",
            item_js(id)
        ),
    )
}

/// Item `id` shows no image.
pub fn no_image(id: u64) -> Q {
    q(
        format!("item {id} without an image"),
        format!(
            "!document.querySelector({})",
            lit(&format!("{} img", item(id)))
        ),
    )
}

/// Item `id` has a button (e.g. "Open once").
pub fn item_button(id: u64) -> Q {
    q(
        format!("item {id}'s button"),
        format!(
            "!!document.querySelector({})",
            lit(&format!("{} button", item(id)))
        ),
    )
}

/// Item `id` counts down and shows one of `seconds` left.
pub fn countdown(id: u64, seconds: &[u32]) -> Q {
    let mut js = format!(
        "(() => {{ const e = document.querySelector({}); const t = e ? e.textContent : ''; return false",
        lit(&format!("{} .expires", item(id)))
    );
    for s in seconds {
        let _ = write!(js, " || t === 'disappears in {s} s'");
    }
    js.push_str("; })()");
    q(format!("item {id} counting down from {seconds:?}"), js)
}

/// Item `id` is gone from the chat.
pub fn item_gone(id: u64) -> Q {
    q(format!("item {id} gone"), format!("!{}", item_js(id)))
}

/// The view-once viewer shows its image.
pub fn viewer_open() -> Q {
    shown("viewer")
        & q(
            "the viewer's image",
            "document.getElementById('viewer-img').src.startsWith('blob:')",
        )
}

/// The viewer is closed and emptied.
pub fn viewer_closed() -> Q {
    hidden("viewer")
        & q(
            "the viewer emptied",
            "!document.getElementById('viewer-img').hasAttribute('src')",
        )
}

/// The group pane lists `name` as a member in `state` (`connected`, `connecting`, `gone`, `me`).
pub fn group_member(name: &str, state: &str) -> Q {
    q(
        format!("{name} {state} in the group"),
        format!(
            "document.querySelector('#group-members li[data-user=' + {} + ']')?.dataset.state === {}",
            lit(&format!("\"{name}\"")),
            lit(state)
        ),
    )
}

/// `name` is no longer listed among the group's members (removed from the roster).
pub fn not_in_group(name: &str) -> Q {
    q(
        format!("{name} not in the group"),
        format!(
            "document.querySelector('#group-members li[data-user=' + {} + ']') === null",
            lit(&format!("\"{name}\""))
        ),
    )
}

/// The group's newest line mentions `text`.
pub fn last_group_line_has(text: &str) -> Q {
    q(
        format!("the group's last line mentions {text:?}"),
        format!(
            "(document.querySelector('#group-messages li:last-child')?.textContent || '').includes({})",
            lit(text)
        ),
    )
}

/// A member's image shows in the group, decoded from an object URL, `width` pixels wide.
pub fn group_image(width: u32) -> Q {
    q(
        format!("an image {width} px wide in the group"),
        format!(
            "[...document.querySelectorAll('#group-messages img')].some((img) => \
             img.src.startsWith('blob:') && img.complete && img.naturalWidth === {width})"
        ),
    )
}

/// The field `id` holds `value`.
pub fn value_is(id: &str, value: &str) -> Q {
    q(
        format!("#{id} holds {value:?}"),
        format!("{}.value === {}", by_id(id), lit(value)),
    )
}

/// The page is at most `px` wide and nothing sticks out sideways: no horizontal scrolling, and
/// the panic button inside the window.
pub fn fits_width(px: u32) -> Q {
    q(
        format!("the page {px} px wide at most, nothing sticking out"),
        format!(
            "window.innerWidth <= {px} && document.documentElement.scrollWidth <= window.innerWidth \
             && document.getElementById('panic-button').getBoundingClientRect().right <= window.innerWidth"
        ),
    )
}

/// The page is drawn in its dark (or light) colours: the OS's choice reached the page
/// (`prefers-color-scheme`) and the body's background follows it.
pub fn colour_scheme(dark: bool) -> Q {
    let bg = if dark {
        "rgb(21, 23, 27)"
    } else {
        "rgb(247, 247, 248)"
    };
    q(
        format!(
            "the page in its {} colours",
            if dark { "dark" } else { "light" }
        ),
        format!(
            "window.matchMedia('(prefers-color-scheme: dark)').matches === {dark} \
             && getComputedStyle(document.body).backgroundColor === {}",
            lit(bg)
        ),
    )
}
