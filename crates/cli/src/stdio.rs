//! Standard input and output carry chat text (typed lines, received messages): they are read and
//! written without any buffer this process cannot wipe. Lines are read in chunks larger than std's
//! own stdin buffer (which it then bypasses) into zeroized buffers; each line is printed with one
//! write of a whole line (which std's line-buffered stdout passes straight through).

use std::io::{Read, Write};

use tokio::sync::mpsc;
use zeroize::{Zeroize, Zeroizing};

/// Larger than std's 8 KiB stdin buffer, so reads go around it.
const CHUNK: usize = 64 * 1024;
/// A longer line is cut off here, wiped, and the rest of it dropped (a JSON command is far
/// shorter; this only bounds memory against a stream with no newline).
const MAX_LINE: usize = 1024 * 1024;

/// The lines of stdin, without their line ending, until it ends. Read on a thread of its own.
pub fn lines() -> mpsc::Receiver<Zeroizing<String>> {
    let (tx, rx) = mpsc::channel(16);
    std::thread::spawn(move || {
        let mut chunk = Zeroizing::new(vec![0u8; CHUNK]);
        let mut pending = Pending::default();
        let stdin = std::io::stdin();
        loop {
            let n = match stdin.lock().read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            pending.push(&chunk[..n]);
            chunk[..n].zeroize();
            while let Some(line) = pending.next_line() {
                if tx.blocking_send(line).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

/// Bytes read but not yet handed out as a line. Each line is wiped where it was as it is handed
/// out; what is left moves to the front once per read, and the tail it left is wiped too.
#[derive(Default)]
struct Pending {
    buf: Zeroizing<Vec<u8>>,
    /// Where the bytes not yet handed out begin (all before it is zeroes).
    start: usize,
    /// The current line grew past `MAX_LINE`: drop it through its newline.
    skipping: bool,
}

impl Pending {
    fn push(&mut self, bytes: &[u8]) {
        self.compact();
        // Growing moves the buffer; the allocator wipes the old one.
        self.buf.extend_from_slice(bytes);
    }

    fn rest(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn next_line(&mut self) -> Option<Zeroizing<String>> {
        loop {
            let Some(end) = self.rest().iter().position(|b| *b == b'\n') else {
                if self.rest().len() > MAX_LINE {
                    self.buf.zeroize();
                    self.start = 0;
                    self.skipping = true;
                }
                return None;
            };
            let at = self.start;
            let mut line = Zeroizing::new(self.buf[at..at + end].to_vec());
            self.buf[at..=at + end].zeroize();
            self.start = at + end + 1;
            if std::mem::take(&mut self.skipping) {
                continue;
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            // Not UTF-8: replaced rather than refused, like a terminal shows it.
            return Some(Zeroizing::new(String::from_utf8_lossy(&line).into_owned()));
        }
    }

    /// Moves what is left to the front and wipes the tail it leaves behind.
    fn compact(&mut self) {
        if self.start == 0 {
            return;
        }
        let rest = self.buf.len() - self.start;
        self.buf.copy_within(self.start.., 0);
        self.buf[rest..].zeroize();
        self.buf.truncate(rest);
        self.start = 0;
    }
}

/// Prints `line` and a newline in one write.
pub fn print_line(line: &str) {
    let mut whole = Zeroizing::new(String::with_capacity(line.len() + 1));
    whole.push_str(line);
    whole.push('\n');
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(whole.as_bytes());
    let _ = out.flush();
}

/// `println!` for anything that may hold chat text: formatted into a buffer that is wiped, then
/// printed in one write.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::stdio::print_line(&zeroize::Zeroizing::new(format!($($arg)*)))
    };
}

#[cfg(test)]
mod tests {
    use super::{Pending, MAX_LINE};

    fn lines(p: &mut Pending) -> Vec<String> {
        std::iter::from_fn(|| p.next_line().map(|l| l.to_string())).collect()
    }

    #[test]
    fn lines_come_whole_across_reads_and_the_bytes_handed_out_are_wiped() {
        let mut p = Pending::default();
        p.push(b"one\r\ntw");
        assert_eq!(lines(&mut p), ["one"]);
        assert_eq!(p.rest(), b"tw");
        assert!(
            p.buf[..p.start].iter().all(|b| *b == 0),
            "handed out, wiped"
        );
        p.push(b"o\n\nthree");
        assert_eq!(lines(&mut p), ["two", ""]);
        assert_eq!(p.rest(), b"three");
        assert!(p.buf[..p.start].iter().all(|b| *b == 0));
        // Moving the rest to the front leaves nothing of it behind in the capacity.
        p.push(b"");
        assert_eq!(p.buf.as_slice(), b"three");
        // SAFETY: reads initialized bytes of the vector's own allocation (written by `push`, then
        // wiped), up to the longest length it had.
        let spare = unsafe { std::slice::from_raw_parts(p.buf.as_ptr(), 10) };
        assert_eq!(&spare[5..], &[0u8; 5][..]);
    }

    #[test]
    fn a_line_without_end_is_dropped_through_its_newline_and_memory_stays_bounded() {
        let mut p = Pending::default();
        p.push(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(lines(&mut p), Vec::<String>::new());
        assert!(p.rest().is_empty());
        p.push(b"still the long one\nnext\n");
        assert_eq!(lines(&mut p), ["next"]);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced() {
        let mut p = Pending::default();
        p.push(b"a\xffb\n");
        assert_eq!(lines(&mut p), ["a\u{fffd}b"]);
    }
}
