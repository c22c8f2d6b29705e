//! The tray menu, clicked over D-Bus as a tray host would.

use std::process::Command;

/// Clicks an item of the app's tray menu the way a tray host does: over D-Bus, through the menu the
/// app exports (`com.canonical.dbusmenu` of its StatusNotifierItem), found by the item's label.
pub fn tray_click(app_pid: u32, label: &str) {
    let path = "/org/ayatana/NotificationItem/tray_icon_tray_app_main/Menu";
    let gdbus = |args: &[&str]| -> String {
        let out = Command::new("gdbus")
            .arg("call")
            .arg("--session")
            .args(args)
            .output()
            .expect("gdbus");
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let names = gdbus(&[
        "--dest",
        "org.freedesktop.DBus",
        "--object-path",
        "/org/freedesktop/DBus",
        "--method",
        "org.freedesktop.DBus.ListNames",
    ]);
    for name in names
        .split('\'')
        .filter(|n| n.starts_with(':'))
        .map(str::to_string)
        .collect::<Vec<_>>()
    {
        let pid = gdbus(&[
            "--dest",
            "org.freedesktop.DBus",
            "--object-path",
            "/org/freedesktop/DBus",
            "--method",
            "org.freedesktop.DBus.GetConnectionUnixProcessID",
            &name,
        ]);
        if !pid.contains(&format!("uint32 {app_pid},")) {
            continue;
        }
        let layout = gdbus(&[
            "--dest",
            &name,
            "--object-path",
            path,
            "--method",
            "com.canonical.dbusmenu.GetLayout",
            // Other connections of the app (a blocking notification client, say) may never
            // answer; only the tray's matters.
            "--timeout",
            "2",
            "--",
            "0",
            "-1",
            "[]",
        ]);
        // Items look like `(2, {'label': <'Panic: wipe all chats'>, …}, [])`.
        let wanted = format!("'label': <'{label}'>");
        let Some(at) = layout.find(&wanted) else {
            continue;
        };
        let id: String = layout[..at]
            .rsplit('(')
            .next()
            .unwrap_or("")
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect();
        let out = gdbus(&[
            "--dest",
            &name,
            "--object-path",
            path,
            "--method",
            "com.canonical.dbusmenu.Event",
            "--",
            &id,
            "clicked",
            "<int32 0>",
            "0",
        ]);
        assert!(out.contains("()"), "dbusmenu Event: {out}");
        return;
    }
    panic!("the app exports no tray menu item labelled {label:?}");
}
