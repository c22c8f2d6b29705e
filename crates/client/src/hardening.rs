//! Process hardening every front-end applies first thing: no core dumps. A crash report or core
//! file of a chat client holds the chat (P3); crash collectors (apport, systemd-coredump) pick up
//! cores of packaged apps by themselves.

/// Makes this process non-dumpable (Linux: `PR_SET_DUMPABLE` 0, which also keeps other processes
/// of the same user from attaching a debugger or reading its memory through /proc) and sets its
/// core size limit to zero (inherited by child processes, such as WebKit's). Returns what could not
/// be done, so the front-end can say so.
pub fn forbid_core_dumps() -> Result<(), String> {
    #[cfg(unix)]
    {
        let zero = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: plain system calls on this process with a valid, initialized argument.
        if unsafe { libc::setrlimit(libc::RLIMIT_CORE, &zero) } != 0 {
            return Err(format!(
                "could not turn core dumps off: {}",
                std::io::Error::last_os_error()
            ));
        }
        #[cfg(target_os = "linux")]
        // SAFETY: PR_SET_DUMPABLE takes one integer argument; the rest are ignored.
        if unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) } != 0 {
            return Err(format!(
                "could not make the process non-dumpable: {}",
                std::io::Error::last_os_error()
            ));
        }
    }
    Ok(())
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn after_it_the_process_is_not_dumpable_and_has_no_core_limit() {
        // A child process, so the test runner itself stays dumpable.
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "hardening::tests::child",
                "--nocapture",
                "--ignored",
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("dumpable=0 core=0/0"), "{text}");
    }

    #[test]
    #[ignore = "run by the test above in its own process"]
    fn child() {
        super::forbid_core_dumps().unwrap();
        // SAFETY: reading this process's own settings.
        let dumpable = unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) };
        let mut lim = libc::rlimit {
            rlim_cur: 1,
            rlim_max: 1,
        };
        // SAFETY: `lim` is a valid out-pointer.
        unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) };
        println!("dumpable={dumpable} core={}/{}", lim.rlim_cur, lim.rlim_max);
    }
}
