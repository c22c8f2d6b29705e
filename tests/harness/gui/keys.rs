//! Driving the app by keyboard alone: Tab to a control, and check that Tab reaches every visible
//! control of a screen and that each has a name a screen reader can say.

use super::{Desktop, Display};

/// Presses Tab until the focus is on `id`.
pub async fn tab_to(app: &Desktop, display: &Display, id: &str) {
    for _ in 0..80 {
        if app.focused().await == id {
            return;
        }
        display.key("Tab");
    }
    panic!("Tab never reached #{id}");
}

/// Walks the page with Tab and checks that every visible control was reached, and that each has
/// a name a screen reader can say.
pub async fn every_control_reachable(app: &Desktop, display: &Display, screen: &str) {
    let (want, unnamed) = app.controls().await;
    assert!(
        unnamed.is_empty(),
        "{screen}: controls without a name: {unnamed:?}"
    );
    let want: std::collections::BTreeSet<String> = want.into_iter().collect();
    let mut reached = std::collections::BTreeSet::new();
    for _ in 0..(want.len() * 2 + 4) {
        display.key("Tab");
        reached.insert(app.focused().await);
    }
    let missed: Vec<_> = want.difference(&reached).collect();
    assert!(missed.is_empty(), "{screen}: Tab never reaches {missed:?}");
    println!(
        "{screen}: all {} controls reached by Tab and named",
        want.len()
    );
}
