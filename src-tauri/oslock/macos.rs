//! macOS: the screen lock comes as the distributed notification `com.apple.screenIsLocked`, sleep
//! as `NSWorkspaceWillSleepNotification` from the shared workspace's own notification center. Both
//! are delivered on the main thread's run loop, which the app runs anyway.

use std::ptr::NonNull;

use block2::RcBlock;
use objc2_app_kit::{NSWorkspace, NSWorkspaceWillSleepNotification};
use objc2_foundation::{NSDistributedNotificationCenter, NSNotification, NSString};

use super::{macos_meaning, OnSignal};

pub fn watch(on: OnSignal) {
    let block = RcBlock::new(move |note: NonNull<NSNotification>| {
        // SAFETY: the center passes a live notification for the duration of the call.
        let name = unsafe { note.as_ref() }.name().to_string();
        if let Some(signal) = macos_meaning(&name) {
            on(signal);
        }
    });
    let locked = NSString::from_str("com.apple.screenIsLocked");
    // SAFETY: no object filter, no queue (the posting thread), and the block only calls `on`,
    // which is `Send + Sync`. The observer tokens are kept for the life of the app.
    unsafe {
        let distributed = NSDistributedNotificationCenter::defaultCenter();
        let token = distributed.addObserverForName_object_queue_usingBlock(
            Some(&locked),
            None,
            None,
            &block,
        );
        std::mem::forget(token);
        let workspace = NSWorkspace::sharedWorkspace().notificationCenter();
        let token = workspace.addObserverForName_object_queue_usingBlock(
            Some(NSWorkspaceWillSleepNotification),
            None,
            None,
            &block,
        );
        std::mem::forget(token);
    }
}
