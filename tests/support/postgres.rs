//! A throwaway PostgreSQL for the tests: a cluster of its own (`initdb` in a temp dir, on a
//! free port on 127.0.0.1), started the first time a test asks for it and shared by every
//! test of this run, with a fresh database per server (`CREATE DATABASE`: fast, isolated,
//! dropped when the server is).
//!
//! 1. **Which tests**: those under `postgres::` in `tests/tests.rs` (libtest names each test's
//!    thread after its path): `ServerBuilder::start` gives their servers a database here
//!    instead of a SQLite file (a server started from a thread the test spawned would get
//!    SQLite: start servers on the test's own thread). [`skip_on_postgres`] is for the few
//!    tests that read the SQLite file itself.
//! 2. **Who runs it**: PostgreSQL refuses to run as root, so as root (as in CI) the cluster
//!    belongs to the `postgres` OS user (Debian's package creates it); otherwise to the
//!    current user. The binaries come from `pg_config --bindir`, or
//!    `/usr/lib/postgresql/*/bin` (`.ci/run` installs the `postgresql` package).
//! 3. **Always removed**: statics have no destructors, and a test run may end in a panic or a
//!    kill. So every cluster has a guard, a tiny `sh` (in a process group of its own, deaf to
//!    the terminal's signals) that waits for end of file on its stdin, a pipe from this
//!    process; however this process ends, the kernel closes the pipe, and the guard stops the
//!    server (`pg_ctl stop -m immediate`) and deletes the directory. A cluster owned by a test
//!    (see [`Cluster::start_new`], for one that stops and restarts its server) closes the
//!    pipe when dropped and waits for the guard.
//! 4. **Speed over durability**: `fsync`, synchronous commit and full-page writes are off;
//!    the data lives only as long as the test run.

use std::fs;
use std::io::Write as _;
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use ::postgres::{Client as PgClient, Config, NoTls};

use super::run_with_deadline;

/// The module of `tests/tests.rs` whose tests run against PostgreSQL.
pub const MODULE_PREFIX: &str = "postgres::";
/// The superuser `initdb` creates (trust authentication, 127.0.0.1 only).
const SUPERUSER: &str = "postgres";
/// The file in a server's temp dir naming its database, so that a server restarted on the same
/// dir (`ServerBuilder::reuse_dir`) finds its data again.
const DATABASE_FILE: &str = "postgres-database";
/// `initdb`, `pg_ctl start` (which waits until connections are accepted) and `pg_ctl stop`.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// Admin connections (creating and dropping databases).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Ports tried when the free port found is taken before the server binds it.
const PORT_ATTEMPTS: usize = 3;

/// Whether the current test runs against PostgreSQL (it is under `postgres::`).
pub fn this_test_uses_postgres() -> bool {
    thread::current()
        .name()
        .is_some_and(|name| name.starts_with(MODULE_PREFIX))
}

/// For a test that cannot mean anything on PostgreSQL (it reads the SQLite file): true when
/// the current run is on PostgreSQL, after saying on stderr that the test is skipped and why.
pub fn skip_on_postgres(why: &str) -> bool {
    let skip = this_test_uses_postgres();
    if skip {
        eprintln!("skipped on PostgreSQL: {why}");
    }
    skip
}

/// The cluster every test of this run shares, started on first use.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start_new)
}

/// The database for a server whose temp dir is `dir`, on the shared cluster: the one an
/// earlier server in `dir` used (a restart), or a fresh one.
pub fn database_for_dir(dir: &Path) -> Database {
    let file = dir.join(DATABASE_FILE);
    match fs::read_to_string(&file) {
        Ok(name) => shared().database_named(name.trim()),
        Err(_) => {
            let database = shared().create_database();
            fs::write(&file, &database.name)
                .unwrap_or_else(|e| panic!("write {}: {e}", file.display()));
            database
        }
    }
}

/// A running PostgreSQL cluster in a temp dir of its own.
pub struct Cluster {
    /// Holds `data/` (the cluster), `log` (the server's) and the Unix socket.
    dir: PathBuf,
    bin: PathBuf,
    port: u16,
    /// (uid, gid) to run the server's commands as, when this process is root.
    owner: Option<(u32, u32)>,
    /// The write end of the guard's stdin: closing it removes the cluster.
    guard_pipe: Mutex<Option<ChildStdin>>,
    guard: Mutex<Child>,
}

impl Cluster {
    /// Creates and starts a cluster of its own: for a test that stops and restarts the server
    /// (the others use [`shared`]). Dropping it stops the server and deletes the directory.
    pub fn start_new() -> Cluster {
        let bin = bin_dir();
        let owner = owner();
        // As root, the postgres user must be able to reach its directory: /tmp always lets it
        // (TMPDIR might not).
        let base = if owner.is_some() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("looplight-pg-")
            .tempdir_in(&base)
            .unwrap_or_else(|e| panic!("create a temp dir in {}: {e}", base.display()))
            .keep();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .unwrap_or_else(|e| panic!("chown {} to postgres: {e}", dir.display()));
        }

        // The guard first: from here on, however this process ends, the cluster goes with it.
        let mut guard = Command::new("/bin/sh");
        guard
            .args(["-c", GUARD_SCRIPT, "looplight-pg-guard"])
            .arg(bin.join("pg_ctl"))
            .arg(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .process_group(0);
        as_owner(&mut guard, owner);
        let mut guard = guard
            .spawn()
            .unwrap_or_else(|e| panic!("spawn the cluster's guard (/bin/sh): {e}"));
        let guard_pipe = guard.stdin.take();

        let mut cluster = Cluster {
            dir,
            bin,
            port: 0,
            owner,
            guard_pipe: Mutex::new(guard_pipe),
            guard: Mutex::new(guard),
        };
        cluster.init();
        let mut attempt = 1;
        loop {
            cluster.port = free_port();
            cluster.configure();
            match cluster.try_start() {
                Ok(()) => break,
                Err(e) if attempt < PORT_ATTEMPTS && e.contains("could not bind") => attempt += 1,
                Err(e) => panic!("{e}"),
            }
        }
        cluster
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `postgres://postgres@127.0.0.1:PORT/NAME`, the `--db` of a server using `database`.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://{SUPERUSER}@127.0.0.1:{}/{database}", self.port)
    }

    /// A new, empty database, dropped when the returned value is.
    pub fn create_database(&self) -> Database {
        static NEXT: AtomicU32 = AtomicU32::new(1);
        let name = format!("test_{}", NEXT.fetch_add(1, Ordering::Relaxed));
        self.admin()
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} on port {}: {e}", self.port));
        self.database_named(&name)
    }

    /// The existing database `name`, dropped when the returned value is.
    pub fn database_named(&self, name: &str) -> Database {
        Database {
            name: name.to_owned(),
            url: self.url(name),
            admin: self.admin_config(),
            keep: false,
        }
    }

    /// Stops the server (`pg_ctl stop -m fast`: clients are disconnected, as when an operator
    /// stops it), waiting until it is down. The data stays; [`Cluster::start`] brings it back.
    pub fn stop(&self) {
        self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", "60"])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the server again on the same port, waiting until it accepts connections.
    pub fn start(&self) {
        self.try_start().unwrap_or_else(|e| panic!("{e}"));
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }

    fn init(&self) {
        let mut initdb = Command::new(self.bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(self.dir.join("data"))
            .args(["-A", "trust", "-U", SUPERUSER, "-E", "UTF8"])
            .args(["--locale=C.UTF-8", "--no-sync", "--no-instructions"]);
        self.run(initdb).unwrap_or_else(|e| panic!("{e}"));
    }

    /// Appends this run's settings to `postgresql.conf` (a later line wins over an earlier).
    fn configure(&self) {
        let conf = self.dir.join("data/postgresql.conf");
        let settings = format!(
            "\n# looplight tests\nport = {}\nlisten_addresses = '127.0.0.1'\n\
             unix_socket_directories = '{}'\nmax_connections = 200\nshared_buffers = 32MB\n\
             fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n",
            self.port,
            self.dir.display()
        );
        fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut file| file.write_all(settings.as_bytes()))
            .unwrap_or_else(|e| panic!("append to {}: {e}", conf.display()));
    }

    fn try_start(&self) -> Result<(), String> {
        let log = self.dir.join("log");
        self.pg_ctl(&["start", "-w", "-t", "60", "-l", &log.to_string_lossy()])
            .map_err(|e| format!("{e}\nserver log:\n{}", self.log()))
    }

    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut pg_ctl = Command::new(self.bin.join("pg_ctl"));
        pg_ctl.arg("-D").arg(self.dir.join("data")).args(args);
        self.run(pg_ctl)
    }

    /// Runs a server command as the cluster's owner; Err says what it printed.
    fn run(&self, mut command: Command) -> Result<(), String> {
        as_owner(&mut command, self.owner);
        let shown = format!("{command:?}");
        let output = run_with_deadline(command, COMMAND_LIMIT);
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{shown}: {}\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    }

    fn admin_config(&self) -> Config {
        let mut config = Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user(SUPERUSER)
            .dbname("postgres")
            .connect_timeout(CONNECT_TIMEOUT);
        config
    }

    fn admin(&self) -> PgClient {
        self.admin_config()
            .connect(NoTls)
            .unwrap_or_else(|e| panic!("connect to the test cluster on port {}: {e}", self.port))
    }
}

impl Drop for Cluster {
    /// Closes the guard's pipe and waits for it to stop the server and delete the directory.
    fn drop(&mut self) {
        drop(self.guard_pipe.lock().unwrap().take());
        let mut guard = self.guard.lock().unwrap();
        let deadline = Instant::now() + COMMAND_LIMIT;
        while Instant::now() < deadline {
            if !matches!(guard.try_wait(), Ok(None)) {
                return;
            }
            thread::sleep(Duration::from_millis(10));
        }
        if !thread::panicking() {
            panic!(
                "the cluster in {} was not removed in time",
                self.dir.display()
            );
        }
    }
}

/// A database on a cluster: `url` is its `--db`. Dropped with the value unless kept.
pub struct Database {
    pub name: String,
    pub url: String,
    admin: Config,
    keep: bool,
}

impl Database {
    /// Leaves the database in place (for a server restarted on it); it goes with the cluster.
    pub fn keep(mut self) {
        self.keep = true;
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        // Best effort: the cluster may be stopped, or gone.
        if let Ok(mut admin) = self.admin.connect(NoTls) {
            let _ = admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// Waits for end of file on stdin (this process has exited, or dropped the cluster), then
/// stops the server and deletes the cluster's directory. `$1` is pg_ctl, `$2` the directory.
const GUARD_SCRIPT: &str = r#"trap '' HUP INT QUIT TERM
while read -r _; do :; done
"$1" -D "$2/data" stop -m immediate >/dev/null 2>&1
rm -rf "$2""#;

/// The directory of `initdb`, `pg_ctl` and `postgres`.
fn bin_dir() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| PathBuf::from(String::from_utf8_lossy(&output.stdout).trim()));
    let mut candidates: Vec<PathBuf> = from_pg_config.into_iter().collect();
    // Debian: /usr/lib/postgresql/<major>/bin, newest first.
    if let Ok(entries) = fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort_by_key(|p| {
            let major = p.parent().and_then(|v| v.file_name());
            std::cmp::Reverse(major.and_then(|m| m.to_str()?.parse::<u32>().ok()))
        });
        candidates.extend(versions);
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
        .unwrap_or_else(|| {
            panic!(
                "PostgreSQL's server binaries (initdb, pg_ctl) not found via pg_config --bindir \
                 or in /usr/lib/postgresql/*/bin: install the postgresql package \
                 (apt-get install postgresql; .ci/run installs it)"
            )
        })
}

/// As root: the `postgres` user's (uid, gid) from /etc/passwd. Otherwise None (run as self).
fn owner() -> Option<(u32, u32)> {
    if !rustix::process::getuid().is_root() {
        return None;
    }
    let passwd = fs::read_to_string("/etc/passwd").unwrap_or_default();
    let ids = passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.len() > 3 && fields[0] == SUPERUSER)
            .then(|| Some((fields[2].parse().ok()?, fields[3].parse().ok()?)))
            .flatten()
    });
    Some(ids.unwrap_or_else(|| {
        panic!(
            "running as root, but there is no `postgres` user to own the test cluster \
             (PostgreSQL refuses to run as root; the postgresql package creates the user)"
        )
    }))
}

fn as_owner(command: &mut Command, owner: Option<(u32, u32)>) {
    if let Some((uid, gid)) = owner {
        // std drops the supplementary groups when it changes the uid as root.
        command
            .uid(uid)
            .gid(gid)
            .env("HOME", "/tmp")
            .current_dir("/tmp");
    }
}

/// Where cluster ports come from: below the kernel's ephemeral range (32768–60999 on Linux),
/// from which every looplight under test (`127.0.0.1:0`) and every client socket gets its
/// port. A cluster stopped mid-test (the outage test) leaves its port unused for a while; were
/// it an ephemeral one, another test's server could be given it, and the instances waiting for
/// PostgreSQL would connect to that server instead (seen once: two tests failing together).
const CLUSTER_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port nobody listens on right now on 127.0.0.1, outside the ephemeral range. The search
/// starts at a place that differs per process and per call, so that clusters of parallel test
/// binaries rarely probe the same ports.
fn free_port() -> u16 {
    static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let calls = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let span = u32::from(CLUSTER_PORTS.end - CLUSTER_PORTS.start);
    let start = (std::process::id().wrapping_mul(7919) + calls.wrapping_mul(104_729)) % span;
    (0..span)
        .map(|offset| CLUSTER_PORTS.start + ((start + offset) % span) as u16)
        .find(|&port| TcpListener::bind(("127.0.0.1", port)).is_ok())
        .expect("a free port for a PostgreSQL test cluster")
}
