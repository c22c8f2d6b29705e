//! The deploy files in docs/deploy hold: every metric the alert rules and the dashboard use is one a
//! running server exports (with the right suffix for its type), the dashboard is valid JSON, and
//! systemd accepts the unit without a warning.

use std::collections::HashMap;

use anonchat_e2e::nginx::free_port;
use anonchat_e2e::server::{Server, ServerOpts};
use anonchat_e2e::TempDir;

fn deploy_file(name: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/deploy")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `anonchat_…` name in a text.
fn names(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(i) = rest.find("anonchat_") {
        let tail = &rest[i..];
        let end = tail
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .unwrap_or(tail.len());
        out.push(tail[..end].to_string());
        rest = &tail[end..];
    }
    out
}

/// The sample names a family of each exported type has.
fn series(exposition: &str) -> Vec<String> {
    let types: HashMap<&str, &str> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .collect();
    types
        .iter()
        .flat_map(|(name, kind)| {
            let suffixes: &[&str] = match *kind {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_count", "_sum"],
                _ => &[""],
            };
            suffixes.iter().map(move |s| format!("{name}{s}"))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_and_dashboard_use_only_exported_metrics() {
    let port = free_port();
    let opts = ServerOpts {
        extra: vec!["--metrics-listen".into(), format!("127.0.0.1:{port}")],
        ..ServerOpts::default()
    };
    let _server = Server::start_with(opts, TempDir::new("server")).await;
    let exposition = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("body");
    let exported = series(&exposition);
    assert!(
        exported.contains(&"anonchat_answers_total".to_string()),
        "{exposition}"
    );

    let dashboard = deploy_file("grafana-dashboard.json");
    let parsed: serde_json::Value = serde_json::from_str(&dashboard).expect("valid JSON");
    assert!(parsed["panels"].as_array().is_some_and(|p| p.len() >= 6));
    for (file, text) in [
        (
            "prometheus-alerts.yml",
            deploy_file("prometheus-alerts.yml"),
        ),
        ("grafana-dashboard.json", dashboard),
    ] {
        let used = names(&text);
        assert!(used.len() >= 5, "{file} names too few metrics");
        for name in used {
            assert!(
                exported.contains(&name),
                "{file} uses {name}, which the server does not export:\n{exposition}"
            );
        }
    }
}

#[test]
fn systemd_accepts_the_unit() {
    let Ok(probe) = std::process::Command::new("systemd-analyze")
        .arg("--version")
        .output()
    else {
        eprintln!("systemd-analyze is not installed: skipped");
        return;
    };
    assert!(probe.status.success());
    // The unit as installed, with ExecStart pointing at the binary built here.
    let unit = deploy_file("anonchat-server.service").replace(
        "/usr/local/bin/anonchat-server",
        &anonchat_e2e::bin("anonchat-server").display().to_string(),
    );
    for required in [
        "DynamicUser=yes",
        "ProtectSystem=strict",
        "LimitCORE=0",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.contains(required), "the unit lacks {required}");
    }
    let dir = TempDir::new("unit");
    let path = dir.0.join("anonchat-server.service");
    std::fs::write(&path, unit).expect("write the unit");
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stderr.trim().is_empty(),
        "systemd-analyze verify: {stderr}"
    );
}

/// The compose file's server flags are ones the server has, its Redis runs without persistence
/// (which the server would refuse otherwise), and nginx loads the balancer configuration.
#[test]
fn the_compose_file_and_balancer_config_hold() {
    let compose = deploy_file("compose.yaml");
    let help = std::process::Command::new(anonchat_e2e::bin("anonchat-server"))
        .arg("--help")
        .output()
        .expect("anonchat-server --help");
    let help = String::from_utf8_lossy(&help.stdout);
    let flags: Vec<&str> = compose
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- --"))
        .collect();
    for flag in ["database-url", "redis-url", "secret-file", "public-url"] {
        assert!(flags.contains(&flag), "compose.yaml gives no --{flag}");
    }
    let redis_flags = ["save", "appendonly", "maxmemory", "maxmemory-policy"];
    for flag in flags.iter().filter(|f| !redis_flags.contains(f)) {
        assert!(
            help.contains(&format!("--{flag}")),
            "compose.yaml passes --{flag}, which the server does not know"
        );
    }
    assert!(
        compose.contains("- --save\n      - \"\""),
        "redis without RDB"
    );
    assert!(
        compose.contains("- --appendonly\n      - \"no\""),
        "redis without AOF"
    );

    // The balancer's server block under a minimal main configuration, the instances' names
    // pointed at loopback (compose resolves them; here nothing would).
    let dir = TempDir::new("balancer");
    let site = deploy_file("nginx-balancer.conf")
        .replace("anonchat-1:", "127.0.0.1:")
        .replace("anonchat-2:", "127.0.0.2:")
        .replace("listen 80;", &format!("listen 127.0.0.1:{};", free_port()));
    let d = dir.0.display();
    let conf = format!(
        "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
         events {{}}\nhttp {{\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
         fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
         {site}\n}}\n"
    );
    let path = dir.0.join("nginx.conf");
    std::fs::write(&path, conf).expect("write nginx.conf");
    let out = std::process::Command::new("nginx")
        .arg("-t")
        .arg("-p")
        .arg(&dir.0)
        .arg("-c")
        .arg(&path)
        .output()
        .expect("nginx (Debian package nginx-light)");
    assert!(
        out.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
