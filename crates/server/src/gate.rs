//! Who may reach whom (DESIGN §5), as a pure decision over facts the hub gathers with the same work
//! on every path. Every "no" is the same `not_found`.

use anonchat_proto::wire::Mode;

/// What the hub found out about a request's target.
#[derive(Debug, Clone, Copy, Default)]
pub struct Facts {
    pub exists: bool,
    pub is_self: bool,
    pub mode: Mode,
    pub always_require_code: bool,
    pub friends: bool,
    pub online: bool,
    /// The request carried the target's current code (± one step).
    pub code_ok: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The requester may know the account exists, and whether it is online.
    Reachable {
        online: bool,
    },
    NotFound,
}

pub fn decide(f: &Facts) -> Verdict {
    if !f.exists || f.is_self {
        return Verdict::NotFound;
    }
    // STRICT needs the code from strangers, and from friends too when the owner asks for that.
    let code_needed = f.mode == Mode::Strict && (!f.friends || f.always_require_code);
    if code_needed && !f.code_ok {
        return Verdict::NotFound;
    }
    // Only PUBLIC accounts and friends may learn that an account is offline.
    if f.online || f.mode == Mode::Public || f.friends {
        Verdict::Reachable { online: f.online }
    } else {
        Verdict::NotFound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(mode: Mode) -> Facts {
        Facts {
            exists: true,
            mode,
            ..Default::default()
        }
    }

    #[test]
    fn default_mode_reachable_only_online() {
        let f = facts(Mode::Default);
        assert_eq!(decide(&f), Verdict::NotFound, "offline stranger");
        assert_eq!(
            decide(&Facts { online: true, ..f }),
            Verdict::Reachable { online: true }
        );
        assert_eq!(
            decide(&Facts { friends: true, ..f }),
            Verdict::Reachable { online: false }
        );
        assert_eq!(
            decide(&Facts {
                exists: false,
                online: true,
                ..f
            }),
            Verdict::NotFound
        );
        assert_eq!(
            decide(&Facts {
                is_self: true,
                online: true,
                ..f
            }),
            Verdict::NotFound
        );
    }

    #[test]
    fn public_mode_tells_offline() {
        let f = facts(Mode::Public);
        assert_eq!(decide(&f), Verdict::Reachable { online: false });
        assert_eq!(
            decide(&Facts { online: true, ..f }),
            Verdict::Reachable { online: true }
        );
    }

    #[test]
    fn strict_mode_needs_the_code_and_online() {
        let f = Facts {
            online: true,
            ..facts(Mode::Strict)
        };
        assert_eq!(decide(&f), Verdict::NotFound, "no code");
        assert_eq!(
            decide(&Facts { code_ok: true, ..f }),
            Verdict::Reachable { online: true }
        );
        assert_eq!(
            decide(&Facts {
                code_ok: true,
                online: false,
                ..f
            }),
            Verdict::NotFound,
            "right code, offline"
        );
        // Friends bypass the code unless the owner wants it always.
        assert_eq!(
            decide(&Facts { friends: true, ..f }),
            Verdict::Reachable { online: true }
        );
        assert_eq!(
            decide(&Facts {
                friends: true,
                always_require_code: true,
                ..f
            }),
            Verdict::NotFound
        );
        assert_eq!(
            decide(&Facts {
                friends: true,
                always_require_code: true,
                code_ok: true,
                ..f
            }),
            Verdict::Reachable { online: true }
        );
    }
}
