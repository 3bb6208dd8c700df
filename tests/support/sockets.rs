//! What the kernel knows about a loopback TCP connection, from
//! `/proc/net/tcp`. It lets a test wait for an event on the server's side of
//! a connection without touching the socket itself (reading would be
//! progress, which resets the very timeouts under test): the server has
//! read everything the client sent (its receive queue is empty), or it has
//! let go of the connection (its socket is closed or gone).

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use super::Client;

/// TCP state numbers as `/proc/net/tcp` prints them (`include/net/tcp_states.h`).
pub const TCP_ESTABLISHED: u8 = 1;

/// One line of `/proc/net/tcp`.
#[derive(Debug, Clone, PartialEq)]
pub struct TcpEntry {
    pub state: u8,
    /// Bytes sent and not yet acknowledged.
    pub tx_queue: u64,
    /// Bytes received and not yet read by the socket's owner.
    pub rx_queue: u64,
    /// The socket's inode; 0 while no process holds it (not accepted yet,
    /// or closed: lingering in the kernel, TIME_WAIT).
    pub inode: u64,
}

fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    // The address is the raw network-order word printed as a host integer.
    let ip = u32::from_str_radix(ip, 16).ok()?;
    let port = u16::from_str_radix(port, 16).ok()?;
    Some(SocketAddr::V4(SocketAddrV4::new(
        Ipv4Addr::from(ip.to_ne_bytes()),
        port,
    )))
}

/// A snapshot of the kernel's IPv4 TCP table (one read of `/proc/net/tcp`,
/// for tests that look up many connections at once).
pub struct TcpTable(HashMap<(SocketAddr, SocketAddr), TcpEntry>);

impl TcpTable {
    pub fn read() -> TcpTable {
        let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
        let mut entries = HashMap::new();
        for line in table.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            let (Some(local), Some(remote)) = (parse_addr(f[1]), parse_addr(f[2])) else {
                continue;
            };
            let Some((tx, rx)) = f[4].split_once(':') else {
                continue;
            };
            let entry = (|| {
                Some(TcpEntry {
                    state: u8::from_str_radix(f[3], 16).ok()?,
                    tx_queue: u64::from_str_radix(tx, 16).ok()?,
                    rx_queue: u64::from_str_radix(rx, 16).ok()?,
                    inode: f[9].parse().ok()?,
                })
            })();
            if let Some(entry) = entry {
                entries.insert((local, remote), entry);
            }
        }
        TcpTable(entries)
    }

    /// The entry for the socket bound to `local` and connected to `remote`.
    pub fn entry(&self, local: SocketAddr, remote: SocketAddr) -> Option<&TcpEntry> {
        self.0.get(&(local, remote))
    }

    /// See the free function `server_released`.
    pub fn server_released(&self, server: SocketAddr, client: SocketAddr) -> Result<(), String> {
        match self.entry(server, client) {
            None => Ok(()),
            Some(e) if e.inode == 0 => Ok(()),
            Some(e) => Err(format!(
                "the server still holds {client}'s connection: {e:?}"
            )),
        }
    }

    /// See the free function `server_holds`.
    pub fn server_holds(&self, server: SocketAddr, client: SocketAddr) -> Result<(), String> {
        match self.entry(server, client) {
            Some(e) if e.inode != 0 && e.state == TCP_ESTABLISHED => Ok(()),
            other => Err(format!(
                "the server's end of {client}'s connection: {other:?}"
            )),
        }
    }
}

/// The kernel's entry for the IPv4 socket bound to `local` and connected to
/// `remote`, if there is one.
pub fn tcp_entry(local: SocketAddr, remote: SocketAddr) -> Option<TcpEntry> {
    TcpTable::read().entry(local, remote).cloned()
}

/// The server's end of the connection whose client end is bound to `client`
/// and connected to `server`.
pub fn server_end_of(server: SocketAddr, client: SocketAddr) -> Option<TcpEntry> {
    tcp_entry(server, client)
}

impl Client {
    /// The kernel's entry for the server's end of this connection.
    pub fn server_end(&self) -> Option<TcpEntry> {
        let local = self.stream.local_addr().expect("local address");
        let peer = self.stream.peer_addr().expect("peer address");
        server_end_of(peer, local)
    }

    /// Ok when the server has read every byte sent on this connection (its
    /// receive queue is empty); Err describes the server's end otherwise.
    pub fn server_has_read_all(&self) -> Result<(), String> {
        match self.server_end() {
            Some(e) if e.rx_queue == 0 => Ok(()),
            other => Err(format!("server end of the connection: {other:?}")),
        }
    }
}

/// Ok when no process holds the server's end of the connection from
/// `client` (the server closed its socket, or the kernel has forgotten the
/// connection); Err describes it otherwise. A connection still waiting in
/// the accept queue is not held either: where the server may not have
/// accepted it yet, wait for `server_holds` first.
pub fn server_released(server: SocketAddr, client: SocketAddr) -> Result<(), String> {
    TcpTable::read().server_released(server, client)
}

/// Ok while the server holds the connection from `client` open (its socket
/// is established and owned by a process).
pub fn server_holds(server: SocketAddr, client: SocketAddr) -> Result<(), String> {
    TcpTable::read().server_holds(server, client)
}
