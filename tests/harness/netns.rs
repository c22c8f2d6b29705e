//! Two home networks behind NAT routers and a public network, in Linux network namespaces (root
//! only), as PLATFORM.md describes. Documentation addresses on the public side (203.0.113.0/24),
//! 10.x inside the homes; nothing leaves the namespaces this builds.
//!
//! ```text
//!  hA 10.1.0.2 ── rA (NAT) 203.0.113.10 ─┐
//!                                        ├─ pub bridge 203.0.113.1 (server, coturn)
//!  hB 10.2.0.2 ── rB (NAT) 203.0.113.20 ─┘
//! ```

use std::process::Command;

pub const PUBLIC: &str = "203.0.113.1";
pub const ROUTER_A: &str = "203.0.113.10";
pub const ROUTER_B: &str = "203.0.113.20";
pub const HOST_A: &str = "10.1.0.2";
pub const HOST_B: &str = "10.2.0.2";

pub struct Net {
    tag: String,
}

fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .output()
        .expect("ip (apt install iproute2)");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Net {
    /// Whether this machine lets the tests build namespaces (root, `ip`, `iptables`).
    pub fn available() -> bool {
        let root = Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| o.stdout.starts_with(b"0"));
        root && Command::new("iptables").arg("--version").output().is_ok()
    }

    pub fn build() -> Net {
        let tag = format!("{:04x}", rand::random::<u16>());
        let net = Net { tag };
        for n in ["pub", "ra", "ha", "rb", "hb"] {
            ip(&["netns", "add", &net.ns(n)]);
            ip(&["-n", &net.ns(n), "link", "set", "lo", "up"]);
        }
        let p = net.ns("pub");
        ip(&["-n", &p, "link", "add", "name", "br0", "type", "bridge"]);
        ip(&[
            "-n",
            &p,
            "addr",
            "add",
            &format!("{PUBLIC}/24"),
            "dev",
            "br0",
        ]);
        ip(&["-n", &p, "link", "set", "br0", "up"]);
        for (x, public, inner) in [("a", ROUTER_A, "10.1.0"), ("b", ROUTER_B, "10.2.0")] {
            let (r, h) = (net.ns(&format!("r{x}")), net.ns(&format!("h{x}")));
            let (vp, vr) = (format!("{x}p{}", net.tag), format!("{x}r{}", net.tag));
            ip(&["link", "add", &vp, "type", "veth", "peer", "name", &vr]);
            ip(&["link", "set", &vp, "netns", &p]);
            ip(&["link", "set", &vr, "netns", &r]);
            ip(&["-n", &p, "link", "set", &vp, "master", "br0"]);
            ip(&["-n", &p, "link", "set", &vp, "up"]);
            ip(&["-n", &r, "addr", "add", &format!("{public}/24"), "dev", &vr]);
            ip(&["-n", &r, "link", "set", &vr, "up"]);
            let (vh, vi) = (format!("{x}h{}", net.tag), format!("{x}i{}", net.tag));
            ip(&["link", "add", &vh, "type", "veth", "peer", "name", &vi]);
            ip(&["link", "set", &vh, "netns", &h]);
            ip(&["link", "set", &vi, "netns", &r]);
            ip(&[
                "-n",
                &r,
                "addr",
                "add",
                &format!("{inner}.1/24"),
                "dev",
                &vi,
            ]);
            ip(&["-n", &r, "link", "set", &vi, "up"]);
            ip(&[
                "-n",
                &h,
                "addr",
                "add",
                &format!("{inner}.2/24"),
                "dev",
                &vh,
            ]);
            ip(&["-n", &h, "link", "set", &vh, "up"]);
            ip(&[
                "-n",
                &h,
                "route",
                "add",
                "default",
                "via",
                &format!("{inner}.1"),
            ]);
            net.run(
                &format!("r{x}"),
                &["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"],
            );
            net.run(
                &format!("r{x}"),
                &[
                    "iptables",
                    "-t",
                    "nat",
                    "-A",
                    "POSTROUTING",
                    "-o",
                    &vr,
                    "-j",
                    "MASQUERADE",
                ],
            );
            // Like a home router, drop unsolicited UDP from outside. Without this each such packet
            // leaves a conntrack entry that makes the next outbound mapping take another port,
            // and hole punching never meets.
            net.run(
                &format!("r{x}"),
                &[
                    "iptables", "-A", "INPUT", "-i", &vr, "-p", "udp", "-j", "DROP",
                ],
            );
        }
        net
    }

    /// The real name of namespace `short` ("pub", "ra", "ha", "rb", "hb").
    pub fn ns(&self, short: &str) -> String {
        format!("ac{}{short}", self.tag)
    }

    /// The interface of home `x` ("a" or "b") towards its router, inside the home.
    pub fn home_if(&self, x: &str) -> String {
        format!("{x}h{}", self.tag)
    }

    /// A command prefix that runs a program inside namespace `short`.
    pub fn exec(&self, short: &str) -> Vec<String> {
        vec!["ip".into(), "netns".into(), "exec".into(), self.ns(short)]
    }

    /// Runs a command inside namespace `short`; it must succeed.
    pub fn run(&self, short: &str, cmd: &[&str]) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.ns(short)])
            .args(cmd)
            .output()
            .expect("ip netns exec");
        assert!(
            out.status.success(),
            "{short}: {}: {}",
            cmd.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Drops UDP between the two homes at both routers (TCP to the server still works), flows
    /// already under way included (the rules go first, before any "established" accept).
    pub fn block_udp_between_homes(&self) {
        for (r, other) in [("ra", ROUTER_B), ("rb", ROUTER_A)] {
            for chain in ["FORWARD", "OUTPUT", "INPUT"] {
                let flag = if chain == "INPUT" { "-s" } else { "-d" };
                self.run(
                    r,
                    &[
                        "iptables", "-I", chain, "-p", "udp", flag, other, "-j", "DROP",
                    ],
                );
            }
        }
    }

    /// Cuts home `x`'s router off the public network.
    pub fn cut(&self, x: &str) {
        ip(&[
            "-n",
            &self.ns(&format!("r{x}")),
            "link",
            "set",
            &format!("{x}r{}", self.tag),
            "down",
        ]);
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for n in ["pub", "ra", "ha", "rb", "hb"] {
            let _ = Command::new("ip")
                .args(["netns", "del", &self.ns(n)])
                .status();
        }
    }
}
