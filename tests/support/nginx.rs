//! A real balancer in front of several servers: Debian's `nginx` (`.ci/run` installs it),
//! round robin over the given upstreams, started on a free port on 127.0.0.1 with its own
//! configuration in a temp dir (`daemon off`; pid file, logs and temp paths inside the temp
//! dir, so it never touches /etc/nginx, /var/log or a system nginx), stopped (workers and
//! all) when dropped.
//!
//! Every response carries `X-Upstream: <the instance's address>` (`$upstream_addr`), set by
//! nginx: which instance answered is the balancer's knowledge, not a feature of looplight.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::{Client, IO_TIMEOUT};

/// How long nginx may take to accept connections.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long nginx may take to stop its workers and exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// Ports tried when the free port found is taken before nginx binds it.
const PORT_ATTEMPTS: usize = 3;

/// A running nginx balancing over some servers. Dropping it stops it.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    dir: TempDir,
}

impl Nginx {
    /// Starts nginx balancing round robin over `upstreams`.
    pub fn balance(upstreams: &[SocketAddr]) -> Nginx {
        let bin = binary();
        let dir = tempfile::tempdir().expect("create temp dir");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|listener| listener.local_addr())
                .expect("find a free port")
                .port();
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            std::fs::write(
                dir.path().join("nginx.conf"),
                config(dir.path(), addr, upstreams),
            )
            .expect("write nginx.conf");
            let mut child = Command::new(&bin)
                .arg("-p")
                .arg(dir.path())
                .arg("-c")
                .arg(dir.path().join("nginx.conf"))
                // The log for errors before the configuration is read (nginx ≥ 1.19.5).
                .arg("-e")
                .arg(dir.path().join("error.log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", bin.display()));
            let deadline = Instant::now() + STARTUP_TIMEOUT;
            loop {
                if TcpStream::connect_timeout(&addr, IO_TIMEOUT).is_ok() {
                    return Nginx { child, addr, dir };
                }
                if let Ok(Some(status)) = child.try_wait() {
                    let log =
                        std::fs::read_to_string(dir.path().join("error.log")).unwrap_or_default();
                    if attempt < PORT_ATTEMPTS && log.contains("Address already in use") {
                        break;
                    }
                    panic!("nginx exited ({status}) at start:\n{log}");
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("nginx did not accept connections on {addr} within {STARTUP_TIMEOUT:?}");
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        unreachable!("the last attempt returns or panics")
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// nginx's access log so far, in its default `combined` format.
    pub fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default()
    }

    /// nginx's error log so far, for failure messages.
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// SIGTERM, so that the master stops its workers too (killed, it would leave them behind),
    /// then waits; SIGKILL if it takes too long.
    fn drop(&mut self) {
        let pid = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw);
        if let Some(pid) = pid {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
        let deadline = Instant::now() + STOP_TIMEOUT;
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> PathBuf {
    ["/usr/sbin/nginx", "/usr/bin/nginx"]
        .into_iter()
        .map(PathBuf::from)
        .find(|path| path.is_file())
        .unwrap_or_else(|| {
            panic!("nginx not found: install the nginx package (apt-get install nginx; .ci/run installs it)")
        })
}

fn config(dir: &Path, addr: SocketAddr, upstreams: &[SocketAddr]) -> String {
    let dir = dir.display();
    let servers: String = upstreams
        .iter()
        .map(|upstream| format!("        server {upstream};\n"))
        .collect();
    // As root, the workers would switch to `nobody`, who cannot use the temp dir.
    let user = if rustix::process::getuid().is_root() {
        "user root;\n"
    } else {
        ""
    };
    format!(
        r#"{user}daemon off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections 512;
}}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream looplight {{
{servers}    }}
    server {{
        listen {addr};
        location / {{
            proxy_pass http://looplight;
            proxy_http_version 1.1;
            proxy_set_header Host $host;
            proxy_set_header Connection "";
            # Event streams: pass every byte on at once.
            proxy_buffering off;
            # Round robin, and an answer is the instance's answer: never try the other one.
            proxy_next_upstream off;
            # The instance's own Server and Date, as without a balancer.
            proxy_pass_header Server;
            proxy_pass_header Date;
            add_header X-Upstream $upstream_addr always;
        }}
    }}
}}
"#
    )
}
