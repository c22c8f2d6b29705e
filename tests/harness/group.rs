//! Groups of CLI processes for the end-to-end tests: the admin first, each other member a friend
//! of the admin only, so the admin's signed roster is what introduces them.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cli::{befriend, Cli};
use crate::{canary, unique, TempDir};

pub struct Member {
    pub cli: Cli,
    pub name: String,
    /// The group's id on this member's device.
    pub group: String,
    /// Other member → the session that is this member's link to it.
    pub links: HashMap<String, String>,
}

pub struct Group {
    pub members: Vec<Member>,
    pub home: TempDir,
}

impl Group {
    pub fn by(&mut self, name: &str) -> &mut Member {
        self.members
            .iter_mut()
            .find(|m| m.name == name)
            .expect("a member of that name")
    }

    pub fn names(&self) -> Vec<String> {
        self.members.iter().map(|m| m.name.clone()).collect()
    }
}

/// Registered, connected clients: the admin first, each other one a friend of the admin only.
pub async fn people(url: &str, n: usize, env: &[(&str, &str)]) -> (Vec<(Cli, String)>, TempDir) {
    people_on(&[url.to_string()], n, env).await
}

/// As [`people`], member `i` on `urls[i % urls.len()]` (instances sharing Redis).
pub async fn people_on(
    urls: &[String],
    n: usize,
    env: &[(&str, &str)],
) -> (Vec<(Cli, String)>, TempDir) {
    people_wrapped(urls, n, env, &|_| Vec::new()).await
}

/// As [`people_on`], member `i` run under `wrap(i)` (e.g. `strace … --`).
pub async fn people_wrapped(
    urls: &[String],
    n: usize,
    env: &[(&str, &str)],
    wrap: &dyn Fn(usize) -> Vec<String>,
) -> (Vec<(Cli, String)>, TempDir) {
    let home = TempDir::new("group");
    let mut out: Vec<(Cli, String)> = Vec::new();
    for i in 0..n {
        let name = unique(&format!("m{i}"));
        let url = &urls[i % urls.len()];
        let mut cli = Cli::start_wrapped(&unique("pg"), &home.0, url, env, &wrap(i)).await;
        cli.register(&name).await;
        cli.connect().await;
        out.push((cli, name));
    }
    let (admin, rest) = out.split_first_mut().expect("an admin");
    for (cli, name) in rest {
        befriend(&mut admin.0, &admin.1, cli, name).await;
    }
    (out, home)
}

/// The admin starts a group with the others; returns once every member holds a link to every
/// other one.
pub async fn start(people: Vec<(Cli, String)>, home: TempDir) -> Group {
    let mut it = people.into_iter();
    let (mut admin, admin_name) = it.next().expect("an admin");
    let rest: Vec<(Cli, String)> = it.collect();
    let names: Vec<&String> = rest.iter().map(|(_, n)| n).collect();
    let started = admin
        .ok(json!({"cmd": "group_start", "members": names}))
        .await;
    let mut members = vec![Member {
        cli: admin,
        name: admin_name.clone(),
        group: started["group"].as_str().expect("group id").to_string(),
        links: HashMap::new(),
    }];
    for (mut cli, name) in rest {
        let ring = cli.expect_event("incoming_ring").await;
        assert_eq!(ring["invite"], true, "shown as an invite: {ring}");
        assert_eq!(ring["from"], admin_name.as_str());
        cli.ok(json!({"cmd": "answer", "ring_id": ring["ring_id"], "accept": true}))
            .await;
        let joined = cli.expect_event("group_joined").await;
        assert_eq!(joined["admin"], admin_name.as_str());
        members.push(Member {
            cli,
            name,
            group: joined["group"].as_str().expect("group id").to_string(),
            links: HashMap::new(),
        });
    }
    let n = members.len();
    for m in &mut members {
        while m.links.len() < n - 1 {
            let v = m
                .cli
                .expect("a member connected", |v| {
                    v["event"] == "group_member" && v["state"] == "connected"
                })
                .await;
            let who = v["username"].as_str().expect("member").to_string();
            let session = v["session"].as_str().expect("its session").to_string();
            assert_eq!(v["group"], m.group.as_str());
            m.links.insert(who, session);
        }
    }
    Group { members, home }
}

/// `from` sends a canary to the group; every other member gets exactly it on its link to `from`,
/// and `from` gets a receipt from each.
pub async fn say_to_all(g: &mut Group, from: &str) -> String {
    let text = canary();
    let sender = g.by(from);
    let gid = sender.group.clone();
    let sent = sender
        .cli
        .ok(json!({"cmd": "group_send", "group": gid, "text": text}))
        .await;
    let others: Vec<String> = g.names().into_iter().filter(|n| n != from).collect();
    assert_eq!(
        sent["sent"].as_object().map(|o| o.len()),
        Some(others.len()),
        "sealed once per member: {sent}"
    );
    for other in &others {
        let m = g.by(other);
        let session = m.links[from].clone();
        let want = text.clone();
        m.cli
            .expect("the group's text", move |v| {
                v["event"] == "message" && v["text"] == want.as_str() && v["session"] == session
            })
            .await;
    }
    let sender = g.by(from);
    for other in &others {
        let session = sender.links[other].clone();
        let id = sent["sent"][other]["id"].clone();
        sender
            .cli
            .expect("a receipt per member", move |v| {
                v["event"] == "receipt" && v["session"] == session && v["id"] == id
            })
            .await;
    }
    text
}

/// Waits (at most `within`) until `m` sees `who` gone from its group; returns how long it took.
pub async fn expect_gone(m: &mut Member, who: &str, within: Duration) -> Duration {
    let t0 = Instant::now();
    let who = who.to_string();
    let group = m.group.clone();
    m.cli
        .expect_within(within, "a member gone", move |v| {
            v["event"] == "group_member"
                && v["state"] == "gone"
                && v["username"] == who.as_str()
                && v["group"] == group.as_str()
        })
        .await;
    t0.elapsed()
}

/// Waits until `m`'s group ends, for `reason`.
pub async fn expect_ended(m: &mut Member, reason: &str) {
    let group = m.group.clone();
    let v = m
        .cli
        .expect("group_ended", move |v| {
            v["event"] == "group_ended" && v["group"] == group.as_str()
        })
        .await;
    assert_eq!(v["reason"], reason, "{}: {v}", m.name);
}
