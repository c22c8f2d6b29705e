//! What WebKit's web process still holds of chats that ended: their lines stay in its DOM, its
//! JavaScript heap, its script cache and its editing history after the page has closed them, and
//! no script can scrub that. So when the last open chat or group ends, the page is replaced by a
//! fresh one in a new process (as a panic does, but the window stays and the user lands on the
//! contacts with a note saying the chat ended). Before that, the page is asked to hand over what
//! the user was in the middle of (the notes, the pane), which the new page takes back.
//!
//! A pure machine — events and time passed in, what to do returned — driven by `page_wipe.rs`.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anonchat_client::events::GroupEndReason;
use anonchat_client::{EndReason, Event};

/// How long the page has to hand over before it is replaced anyway (a page that hangs or was
/// changed to never answer must not keep the chat).
pub const HANDOVER: Duration = Duration::from_millis(800);

/// What the new page says happened, read from its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Note {
    Chat,
    Flooded,
    Group(GroupEnd),
}

/// `GroupEndReason`, ordered so the note can keep the most telling of several endings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum GroupEnd {
    Empty,
    Removed,
    Left,
}

impl Note {
    pub fn as_str(self) -> &'static str {
        match self {
            Note::Chat => "chat",
            Note::Flooded => "flooded",
            Note::Group(GroupEnd::Left) => "group_left",
            Note::Group(GroupEnd::Removed) => "group_removed",
            Note::Group(GroupEnd::Empty) => "group_empty",
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum Do {
    /// Ask the page for what it carries over; replace it when it answers or at `deadline`.
    AskHandover { deadline: Instant },
    /// Replace the page now, saying `Note`.
    Replace(Note),
    /// A chat opened while the page was asked: it stays, and gets what was held back from it.
    Release,
}

#[derive(Default)]
pub struct Residue {
    /// Chats (one-to-one, and each link of a group) open in the page.
    open: HashSet<String>,
    groups: HashSet<String>,
    /// The page showed a chat or a group since it was fresh.
    dirty: bool,
    note: Option<Note>,
    /// The page was asked to hand over, until then.
    asked: Option<Instant>,
    /// The app is quitting: no page is started again.
    quitting: bool,
}

impl Residue {
    pub fn event(&mut self, ev: &Event, now: Instant) -> Option<Do> {
        match ev {
            Event::SessionOpen { session, .. } => {
                self.open.insert(session.clone());
                self.opened()
            }
            Event::GroupJoined { group, .. } => {
                self.groups.insert(group.clone());
                self.opened()
            }
            // A panic replaces the page itself (`replaced`): these are its echo.
            Event::SessionEnded {
                session,
                reason: EndReason::Panic,
                ..
            } => {
                self.open.remove(session);
                None
            }
            Event::SessionEnded {
                session, reason, ..
            } => {
                if self.open.remove(session) {
                    let note = match reason {
                        EndReason::Flooded => Note::Flooded,
                        _ => Note::Chat,
                    };
                    self.note = self.note.max(Some(note));
                }
                self.settle(now)
            }
            Event::GroupEnded { group, reason } => {
                if self.groups.remove(group) {
                    let end = match reason {
                        GroupEndReason::Left => GroupEnd::Left,
                        GroupEndReason::Removed => GroupEnd::Removed,
                        GroupEndReason::Empty => GroupEnd::Empty,
                    };
                    self.note = self.note.max(Some(Note::Group(end)));
                }
                self.settle(now)
            }
            _ => None,
        }
    }

    /// A chat opened: a replacement on its way is called off (it would take the new chat away).
    fn opened(&mut self) -> Option<Do> {
        self.dirty = true;
        self.asked.take().map(|_| Do::Release)
    }

    /// Everything the page showed is over: ask for the handover, once.
    fn settle(&mut self, now: Instant) -> Option<Do> {
        let over = self.dirty && self.open.is_empty() && self.groups.is_empty();
        if self.quitting || !over || self.asked.is_some() {
            return None;
        }
        let deadline = now + HANDOVER;
        self.asked = Some(deadline);
        Some(Do::AskHandover { deadline })
    }

    /// The page handed over: replace it now (an answer nobody asked for changes nothing).
    pub fn handed_over(&mut self) -> Option<Do> {
        self.asked.take()?;
        Some(self.replace())
    }

    /// The handover's deadline came: replace the page unless that already happened.
    pub fn tick(&mut self, now: Instant) -> Option<Do> {
        match self.asked {
            Some(deadline) if now >= deadline => {
                self.asked = None;
                Some(self.replace())
            }
            _ => None,
        }
    }

    fn replace(&mut self) -> Do {
        let note = self.note.take().unwrap_or(Note::Chat);
        self.dirty = false;
        Do::Replace(note)
    }

    /// The page was replaced by a panic or a lock (every chat is ending): start from a fresh page.
    pub fn replaced(&mut self) {
        let quitting = self.quitting;
        *self = Self {
            quitting,
            ..Self::default()
        };
    }

    /// The app is quitting: its page ends with it, none is started again.
    pub fn quit(&mut self) {
        self.quitting = true;
        self.asked = None;
    }
}

#[cfg(test)]
mod tests;
