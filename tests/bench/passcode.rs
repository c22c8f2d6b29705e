//! What the passcode costs at unlock (issue 35 item 5): opening the keychain record sealed under
//! it (Argon2id, 64 MiB, 3 passes, then XChaCha20-Poly1305) beside the 19 MiB Argon2id hash check
//! it replaced, in the same run. Medians of 7 on this machine's one core each; release build.

use std::time::{Duration, Instant};

use anonchat_client::{passcode, sealed};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2
    }
}

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    median(
        (0..runs)
            .map(|_| {
                let t0 = Instant::now();
                f();
                t0.elapsed()
            })
            .collect(),
    )
}

fn main() {
    let pass = "four words of passcode";
    let record = sealed::Sealer::new(pass)
        .expect("a sealer")
        .seal(&[7u8; 1600]);
    let phc = passcode::hash(pass).expect("a hash");
    let runs = 7;
    let before = time(runs, || assert!(passcode::verify(pass, &phc)));
    let unlock = time(runs, || assert!(record.open(pass).is_some()));
    let set = time(runs, || assert!(sealed::Sealer::new(pass).is_some()));
    println!("passcode: medians of {runs}");
    println!(
        "  unlock (open the sealed record, 64 MiB): {:.1} ms",
        unlock.as_secs_f64() * 1e3
    );
    println!(
        "  set (derive a new key, 64 MiB):          {:.1} ms",
        set.as_secs_f64() * 1e3
    );
    println!(
        "  baseline: the old 19 MiB hash check:     {:.1} ms",
        before.as_secs_f64() * 1e3
    );
    println!(
        "  ratio unlock / baseline: {:.2}",
        unlock.as_secs_f64() / before.as_secs_f64()
    );
}
