//! The app's processes and what their memory holds (`gcore` dumps searched for canaries).

use crate::bin;

fn proc_env_has(pid: &str, needle: &[u8]) -> bool {
    std::fs::read(format!("/proc/{pid}/environ"))
        .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle))
        .unwrap_or(false)
}

/// The pid of the `anonchat` process running `profile`.
pub fn app_pid(profile: &str) -> Option<u32> {
    let exe = bin("anonchat");
    let needle = format!("ANONCHAT_PROFILE={profile}");
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid = e.file_name().to_string_lossy().to_string();
        let is_app = std::fs::read_link(format!("/proc/{pid}/exe")).ok()? == exe;
        (is_app && proc_env_has(&pid, needle.as_bytes()))
            .then(|| pid.parse().ok())
            .flatten()
    })
}

/// Every process descended from `pid` (WebKit's web and network processes for the app, and any
/// they start in turn).
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: Vec<(u32, u32)> = dir
        .flatten()
        .filter_map(|e| {
            let p: u32 = e.file_name().to_string_lossy().parse().ok()?;
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            // Field 4 (after the parenthesised name) is the parent pid.
            let after = stat.rsplit_once(')')?.1;
            let ppid: u32 = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// How many times each of `needles` occurs in the memory of `pid`: every page that is present (or
/// swapped) in a readable mapping, read through `/proc/PID/mem` while the process runs. (`gcore`
/// would stop the app for about 20 s and write some 7 GB here, most of it address space WebKit's
/// JavaScript engine reserves but never touches; `/proc/PID/pagemap` says which pages exist.)
/// With `ANONCHAT_MEMDEBUG` set, each hit is printed with the bytes around it, to tell whose buffer
/// still holds it.
pub fn count_in_memory(pid: u32, needles: &[String]) -> Vec<usize> {
    use std::os::unix::fs::FileExt;
    const PAGE: u64 = 4096;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).expect("maps");
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("/proc/PID/mem");
    let pagemap = std::fs::File::open(format!("/proc/{pid}/pagemap")).expect("pagemap");
    let finders: Vec<_> = needles
        .iter()
        .map(|n| memchr::memmem::Finder::new(n.as_bytes()).into_owned())
        .collect();
    let mut counts = vec![0; needles.len()];
    // Runs of existing pages are read whole, so a match inside a run is found (chat strings are
    // far shorter than a page run boundary is likely to split).
    let mut scan = |bytes: &[u8]| {
        for (i, f) in finders.iter().enumerate() {
            for at in f.find_iter(bytes) {
                counts[i] += 1;
                if std::env::var_os("ANONCHAT_MEMDEBUG").is_some() {
                    eprint!("[pid {pid}] ");
                    let lo = at.saturating_sub(120);
                    let hi = (at + 80).min(bytes.len());
                    eprintln!(
                        "MEM {}",
                        String::from_utf8_lossy(&bytes[lo..hi]).escape_debug()
                    );
                }
            }
        }
    };
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(range), Some(perms)) = (fields.first(), fields.get(1)) else {
            continue;
        };
        let name = fields.get(5).copied().unwrap_or("");
        if !perms.starts_with('r') || name == "[vvar]" || name == "[vsyscall]" {
            continue;
        }
        let Some((a, b)) = range.split_once('-') else {
            continue;
        };
        let (Ok(start), Ok(end)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            continue;
        };
        let pages = ((end - start) / PAGE) as usize;
        let mut entries = vec![0u8; pages * 8];
        if pagemap
            .read_exact_at(&mut entries, start / PAGE * 8)
            .is_err()
        {
            continue;
        }
        let exists = |i: usize| {
            let e = u64::from_le_bytes(entries[i * 8..i * 8 + 8].try_into().unwrap_or([0; 8]));
            e & (3 << 62) != 0 // Present in RAM, or swapped out.
        };
        let mut i = 0;
        while i < pages {
            if !exists(i) {
                i += 1;
                continue;
            }
            let run_start = i;
            while i < pages && exists(i) {
                i += 1;
            }
            let mut run = vec![0u8; (i - run_start) * PAGE as usize];
            if mem
                .read_exact_at(&mut run, start + run_start as u64 * PAGE)
                .is_ok()
            {
                scan(&run);
            }
        }
    }
    counts
}

/// The app's WebKit web content processes (the ones that render the page).
pub fn web_processes(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|p| {
            std::fs::read_to_string(format!("/proc/{p}/comm"))
                .is_ok_and(|c| c.starts_with("WebKitWebProces"))
        })
        .collect()
}

/// The canaries in each process of the app `pid` — its own and every one it started — as
/// `(pid, name, count)`, printed with `when`.
pub fn canaries_by_process(pid: u32, canaries: &[String], when: &str) -> Vec<(u32, String, usize)> {
    let all: Vec<(u32, String, usize)> = std::iter::once(pid)
        .chain(children(pid))
        .map(|p| {
            let name = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let n = count_in_memory(p, canaries).iter().sum();
            (p, name.trim().to_string(), n)
        })
        .collect();
    println!("canaries {when}: {all:?}");
    all
}

/// Waits until none of the web processes `before` runs and another renders the page of the app
/// `pid`.
pub async fn web_process_replaced(pid: u32, before: &[u32]) {
    let t0 = std::time::Instant::now();
    loop {
        let now = web_processes(pid);
        if !now.is_empty() && now.iter().all(|p| !before.contains(p)) {
            println!(
                "web processes {before:?} → {now:?} after {:?}",
                t0.elapsed()
            );
            return;
        }
        assert!(
            t0.elapsed() < super::WAIT,
            "the web process {before:?} was not replaced: now {now:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every process started for `profile` (the app and the WebKit processes it started, which keep
/// its environment), wherever they were reparented.
pub fn processes_of(profile: &str) -> Vec<u32> {
    let needle = format!("ANONCHAT_PROFILE={profile}");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| proc_env_has(&p.to_string(), needle.as_bytes()))
        .collect()
}

/// The burner identities running (the app started with `--burner`).
pub fn burner_pids() -> Vec<u32> {
    let exe = bin("anonchat");
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_string_lossy().parse::<u32>().ok())
        .filter(|p| {
            std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|x| x == exe)
                && std::fs::read(format!("/proc/{p}/cmdline"))
                    .is_ok_and(|c| c.split(|b| *b == 0).any(|a| a == b"--burner"))
        })
        .collect()
}

/// What keeps freed memory scrubbed, as `/proc` shows it in each of the app's processes; the gaps
/// found, printed. The app's own process: WebKit's heap on the system allocator (its own heap
/// reserves a cage of ~70 GiB of address space as it starts, before `main`). WebKit's processes:
/// the environment they started with says the same, and glibc's free-time perturbation without its
/// per-thread cache (glibc splits its tunables' `:` into NULs in place).
pub fn scrubbing_gaps(pid: u32) -> Vec<String> {
    let mut gaps = Vec::new();
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let vm_kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmSize:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(u64::MAX);
    println!("the app's address space: {} MiB", vm_kib / 1024);
    if vm_kib > 32 << 20 {
        gaps.push(format!(
            "the app reserved {vm_kib} KiB: WebKit's own heap is on"
        ));
    }
    let want: [&[u8]; 3] = [
        b"Malloc=1",
        b"GLIBC_TUNABLES=glibc.malloc.perturb=90",
        b"glibc.malloc.tcache_count=0",
    ];
    for child in children(pid) {
        let p = child.to_string();
        for w in want {
            if !proc_env_has(&p, w) {
                gaps.push(format!(
                    "process {p} started without {}",
                    String::from_utf8_lossy(w)
                ));
            }
        }
    }
    gaps
}
