//! The profile folder's one writer: a thread of its own that writes the sealed contacts file, in
//! the order the engine made its changes, each write atomic (a temporary file, synced, renamed over
//! the old one). No async runtime thread waits on the disk, and a crash mid-write leaves the
//! previous profile whole. Deleting the folder goes through the same queue, so no write queued
//! before it can bring the folder back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::oneshot;

use super::CONTACTS_FILE;
use crate::error::ProfileError;
use crate::ClientError;

enum Op {
    Write(Vec<u8>),
    RemoveAll,
}

struct Job {
    op: Op,
    done: oneshot::Sender<Result<(), String>>,
}

pub struct Writer {
    /// `None` only while dropping (closing it ends the thread's loop).
    tx: Option<mpsc::Sender<Job>>,
    thread: Option<JoinHandle<()>>,
}

/// A change handed to the writer. `wait` until it is on disk (an API call that changed the profile
/// answers after that); or drop it where nobody waits (a key pinned while reading the server): the
/// write happens all the same, and a failure is logged.
#[must_use = "wait for the write, or drop it on purpose"]
pub struct Written(State);

enum State {
    Queued(oneshot::Receiver<Result<(), String>>),
    Failed(ClientError),
    /// Nothing changed, so nothing was written.
    Unchanged,
}

impl Written {
    pub fn failed(e: ClientError) -> Self {
        Self(State::Failed(e))
    }

    pub fn unchanged() -> Self {
        Self(State::Unchanged)
    }

    pub async fn wait(self) -> Result<(), ClientError> {
        match self.0 {
            State::Queued(rx) => match rx.await {
                Ok(r) => r.map_err(|e| ClientError::Profile(ProfileError::Storage(e))),
                Err(_) => Err(stopped()),
            },
            State::Failed(e) => Err(e),
            State::Unchanged => Ok(()),
        }
    }
}

fn stopped() -> ClientError {
    ClientError::Profile(ProfileError::Storage("the profile writer stopped".into()))
}

impl Writer {
    pub fn new(dir: PathBuf) -> Result<Self, ClientError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("anonchat-profile".into())
            .spawn(move || {
                for job in rx {
                    let r = match job.op {
                        Op::Write(bytes) => write_atomic(&dir, &bytes),
                        Op::RemoveAll => remove_all(&dir),
                    };
                    if let Err(e) = &r {
                        tracing::warn!(error = %e, "could not write the profile");
                    }
                    let _ = job.done.send(r);
                }
            })
            .map_err(|e| ClientError::Profile(ProfileError::Storage(e.to_string())))?;
        Ok(Self {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    fn queue(&self, op: Op) -> Written {
        let (done, rx) = oneshot::channel();
        match self.tx.as_ref().map(|tx| tx.send(Job { op, done })) {
            Some(Ok(())) => Written(State::Queued(rx)),
            _ => Written::failed(stopped()),
        }
    }

    /// Replaces the contacts file with `sealed` (already encrypted).
    pub fn write(&self, sealed: Vec<u8>) -> Written {
        self.queue(Op::Write(sealed))
    }

    /// Removes the whole profile folder, after every write queued before.
    pub fn remove_all(&self) -> Written {
        self.queue(Op::RemoveAll)
    }
}

impl Drop for Writer {
    /// Every queued write lands before the engine is gone.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn write_atomic(dir: &Path, bytes: &[u8]) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let tmp = dir.join(format!("{CONTACTS_FILE}.tmp"));
    let mut f = std::fs::File::create(&tmp).map_err(|e| e.to_string())?;
    f.write_all(bytes).map_err(|e| e.to_string())?;
    f.sync_all().map_err(|e| e.to_string())?;
    drop(f);
    std::fs::rename(&tmp, dir.join(CONTACTS_FILE)).map_err(|e| e.to_string())
}

fn remove_all(dir: &Path) -> Result<(), String> {
    match std::fs::remove_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("anonchat-writer-{name}-{}", std::process::id()))
    }

    #[tokio::test]
    async fn writes_land_in_order_and_whole_and_a_removal_waits_for_them() {
        let dir = temp("order");
        let w = Writer::new(dir.clone()).unwrap();
        for i in 0..50u8 {
            // Nobody waits for these: they still land, in order.
            drop(w.write(vec![i; 4096]));
        }
        w.write(b"last".to_vec()).wait().await.unwrap();
        assert_eq!(std::fs::read(dir.join(CONTACTS_FILE)).unwrap(), b"last");
        assert!(!dir.join(format!("{CONTACTS_FILE}.tmp")).exists());
        drop(w.write(b"before removal".to_vec()));
        w.remove_all().wait().await.unwrap();
        assert!(
            !dir.exists(),
            "a write queued before the removal did not bring it back"
        );
    }

    #[tokio::test]
    async fn dropping_the_writer_flushes_what_was_queued() {
        let dir = temp("flush");
        let w = Writer::new(dir.clone()).unwrap();
        drop(w.write(b"queued".to_vec()));
        drop(w);
        assert_eq!(std::fs::read(dir.join(CONTACTS_FILE)).unwrap(), b"queued");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[tokio::test]
    async fn a_failed_write_is_an_error_for_whoever_waits() {
        // A file where the folder should be: the folder cannot be made.
        let dir = temp("fail");
        std::fs::write(&dir, b"not a folder").unwrap();
        let w = Writer::new(dir.join("profile")).unwrap();
        let e = w.write(b"x".to_vec()).wait().await.unwrap_err();
        assert!(
            matches!(e, ClientError::Profile(ProfileError::Storage(_))),
            "{e}"
        );
        std::fs::remove_file(&dir).unwrap();
    }
}
