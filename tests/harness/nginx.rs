//! A real nginx (Debian's) on loopback as the documented reverse proxy in front of the server:
//! WebSocket upgrades passed through, `X-Forwarded-For` appended. Stopped when dropped.

use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::TempDir;

pub struct Nginx {
    child: Child,
    pub port: u16,
    _dir: TempDir,
}

/// A port nothing listens on now (bound and released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Nginx {
    /// Listens on 127.0.0.1:`port` and proxies everything to `upstream`.
    pub fn start(port: u16, upstream: SocketAddr) -> Nginx {
        Self::balance(port, &[upstream])
    }

    /// Listens on 127.0.0.1:`port` and spreads connections over `upstreams` in turn (nginx's
    /// fewest open connections first, so concurrent WebSockets land on different instances; an
    /// upstream that refuses is skipped, as a balancer in front of instances does).
    pub fn balance(port: u16, upstreams: &[SocketAddr]) -> Nginx {
        let dir = TempDir::new("nginx");
        let servers: String = upstreams
            .iter()
            .map(|u| format!("    server {u} max_fails=1 fail_timeout=2s;\n"))
            .collect();
        let conf = format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
             events {{ worker_connections 4096; }}\n\
             http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
               upstream anonchat {{\n    least_conn;\n{servers}  }}\n\
               server {{\n    listen 127.0.0.1:{port};\n    location / {{\n\
                 proxy_pass http://anonchat;\n      proxy_http_version 1.1;\n\
                 proxy_set_header Upgrade $http_upgrade;\n      proxy_set_header Connection \"upgrade\";\n\
                 proxy_set_header Host $host;\n\
                 proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;\n\
                 proxy_connect_timeout 2s;\n\
                 proxy_read_timeout 120s;\n    }}\n  }}\n}}\n",
            d = dir.0.display()
        );
        let path = dir.0.join("nginx.conf");
        std::fs::write(&path, conf).expect("nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir.0)
            .arg("-c")
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx (Debian package nginx-light)");
        // Ready when it accepts connections.
        let t0 = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "nginx did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Nginx {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
