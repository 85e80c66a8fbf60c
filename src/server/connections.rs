//! The open-connection table: a cap on open connections, shedding the
//! least useful ones beyond it, and the open-file limit the cap is kept
//! under.
//!
//! Every accepted connection is registered with its [`Activity`]. When the
//! table is full, the next accepted connection takes the place of one that
//! is not handling a request: first the oldest connection that never
//! started one (a client that connected and sent nothing, or is dribbling
//! a head), then the one idle the longest. A connection with a request in
//! progress is never shed; if every connection is busy, the new one is
//! refused (closed at once). The cap stays below the open-file limit by a
//! reserve, so files, the stores and the job store always find descriptors.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;
use tokio::time::Instant;

use super::idle::Activity;
use crate::metrics::{self, ShedReason};

/// Descriptors kept for everything but connections: a quarter of the
/// open-file limit, at least 256 and at most 4096.
pub fn descriptor_reserve(open_files: u64) -> u64 {
    (open_files / 4).clamp(256, 4096)
}

/// The most connections served when `limits.max_connections` is 0.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// The connection cap: the configured one (0: [`DEFAULT_MAX_CONNECTIONS`]),
/// lowered to the open-file limit less its [`descriptor_reserve`], and at
/// least 16.
pub fn connection_limit(configured: usize, open_files: Option<u64>) -> usize {
    let wanted = if configured == 0 {
        DEFAULT_MAX_CONNECTIONS
    } else {
        configured
    };
    let allowed = open_files.map_or(usize::MAX, |n| {
        usize::try_from(n.saturating_sub(descriptor_reserve(n))).unwrap_or(usize::MAX)
    });
    wanted.min(allowed).max(16)
}

/// The open-file limits before and after raising the soft one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimits {
    /// The soft limit found at start (`None`: unlimited).
    pub soft_before: Option<u64>,
    /// The soft limit now.
    pub soft: Option<u64>,
    /// The hard limit.
    pub hard: Option<u64>,
}

/// Raises the open-file soft limit to the hard limit (systemd gives
/// services 1024 by default, a few hundred idle clients' worth).
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimits> {
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    let found = getrlimit(Resource::Nofile);
    if found.current != found.maximum {
        setrlimit(
            Resource::Nofile,
            Rlimit {
                current: found.maximum,
                maximum: found.maximum,
            },
        )?;
    }
    let now = getrlimit(Resource::Nofile);
    Ok(OpenFileLimits {
        soft_before: found.current,
        soft: now.current,
        hard: now.maximum,
    })
}

/// The open-file soft limit now (`None`: unlimited).
pub fn open_file_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// Connections the kernel completes before they are accepted (capped by
/// `net.core.somaxconn`): a burst of connects beyond it has SYNs dropped,
/// and those clients retry a second later.
const LISTEN_BACKLOG: u32 = 4096;

/// A listener on `address` with a deep accept backlog.
pub fn listen(address: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Open connections, at most `limit`.
#[derive(Debug)]
pub struct Connections {
    limit: usize,
    table: Mutex<Table>,
    /// Signalled whenever a connection ends (the accept loop waits on it
    /// when out of descriptors).
    ended: Notify,
}

#[derive(Debug, Default)]
struct Table {
    next: u64,
    open: HashMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    activity: Activity,
    shed: Arc<Notify>,
}

/// A registered connection: resolves [`Registered::shed`] when the table
/// sheds it; leaves the table when dropped.
#[derive(Debug)]
pub struct Registered {
    connections: Arc<Connections>,
    id: u64,
    shed: Arc<Notify>,
}

impl Registered {
    /// Resolves when the connection is to be closed to make room.
    pub async fn shed(&self) {
        self.shed.notified().await;
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let open = {
            let mut table = self.connections.table();
            table.open.remove(&self.id);
            table.open.len()
        };
        metrics::connections_open(open);
        self.connections.ended.notify_waiters();
    }
}

impl Connections {
    /// A table of at most `limit` connections.
    pub fn new(limit: usize) -> Arc<Self> {
        Arc::new(Self {
            limit,
            table: Mutex::new(Table::default()),
            ended: Notify::new(),
        })
    }

    /// The cap.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn table(&self) -> std::sync::MutexGuard<'_, Table> {
        // Entries are whole values; a panic elsewhere cannot tear one.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a new connection, shedding one beyond the cap; `None`
    /// (close the new one) when every open connection is busy.
    pub fn register(self: &Arc<Self>, activity: Activity) -> Option<Registered> {
        let (registered, open) = {
            let mut table = self.table();
            if table.open.len() >= self.limit {
                let victim = table.least_useful()?;
                if let Some(entry) = table.open.remove(&victim) {
                    entry.shed.notify_one();
                    metrics::connection_shed(ShedReason::Limit);
                }
            }
            table.next += 1;
            let id = table.next;
            let shed = Arc::new(Notify::new());
            table.open.insert(
                id,
                Entry {
                    activity,
                    shed: shed.clone(),
                },
            );
            let registered = Registered {
                connections: self.clone(),
                id,
                shed,
            };
            (registered, table.open.len())
        };
        metrics::connections_open(open);
        Some(registered)
    }

    /// Sheds the least useful connection (out of descriptors); whether
    /// there was one to shed.
    pub fn shed_one(&self, reason: ShedReason) -> bool {
        let mut table = self.table();
        let Some(victim) = table.least_useful() else {
            return false;
        };
        if let Some(entry) = table.open.remove(&victim) {
            entry.shed.notify_one();
            metrics::connection_shed(reason);
        }
        true
    }

    /// Resolves when a connection ends.
    pub async fn one_ended(&self) {
        self.ended.notified().await;
    }
}

impl Table {
    /// The connection to shed first: never used, oldest first; then idle
    /// the longest. Busy connections are never chosen.
    fn least_useful(&self) -> Option<u64> {
        self.open
            .iter()
            .filter(|(_, entry)| !entry.activity.busy())
            .min_by_key(|(id, entry)| {
                let used = entry.activity.ever_used();
                let since: Instant = if used {
                    entry.activity.last_active()
                } else {
                    entry.activity.opened()
                };
                (used, since, **id)
            })
            .map(|(id, _)| *id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cap_keeps_a_reserve_of_descriptors() {
        assert_eq!(descriptor_reserve(1024), 256);
        assert_eq!(descriptor_reserve(20_000), 4096);
        assert_eq!(connection_limit(0, Some(1024)), 768);
        assert_eq!(connection_limit(100, Some(1024)), 100);
        assert_eq!(connection_limit(5000, Some(1024)), 768);
        assert_eq!(connection_limit(0, Some(1 << 20)), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(connection_limit(0, None), DEFAULT_MAX_CONNECTIONS);
        assert_eq!(connection_limit(0, Some(100)), 16);
    }

    fn activity() -> Activity {
        let (_stream, activity) = super::super::idle::Tracked::new(());
        activity
    }

    #[tokio::test]
    async fn never_used_connections_are_shed_first() {
        let connections = Connections::new(3);
        let used_early = activity();
        let _early = connections.register(used_early.clone()).unwrap();
        drop(used_early.begin());
        tokio::time::sleep(Duration::from_millis(15)).await;
        let silent = connections.register(activity()).unwrap();
        tokio::time::sleep(Duration::from_millis(15)).await;
        let used_late = activity();
        let _late = connections.register(used_late.clone()).unwrap();
        drop(used_late.begin());
        // Full: the one that never sent a request goes, though it is not
        // the oldest.
        let _fourth = connections.register(activity()).unwrap();
        tokio::time::timeout(Duration::from_secs(1), silent.shed())
            .await
            .expect("the silent connection was shed");
    }

    #[tokio::test]
    async fn among_used_connections_the_longest_idle_is_shed() {
        let connections = Connections::new(2);
        let (a, b) = (activity(), activity());
        let first = connections.register(a.clone()).unwrap();
        let _second = connections.register(b.clone()).unwrap();
        drop(b.begin());
        tokio::time::sleep(Duration::from_millis(15)).await;
        drop(a.begin());
        tokio::time::sleep(Duration::from_millis(15)).await;
        let busy = b.begin();
        drop(busy);
        // b was used last: a has been idle longer.
        let _third = connections.register(activity()).unwrap();
        tokio::time::timeout(Duration::from_secs(1), first.shed())
            .await
            .expect("the longest idle connection was shed");
    }

    #[tokio::test]
    async fn out_of_descriptors_one_idle_connection_is_shed() {
        let connections = Connections::new(10);
        let (idle, working) = (activity(), activity());
        let idle_one = connections.register(idle).unwrap();
        let _busy_one = connections.register(working.clone()).unwrap();
        let _request = working.begin();
        assert!(connections.shed_one(ShedReason::Descriptors));
        tokio::time::timeout(Duration::from_secs(1), idle_one.shed())
            .await
            .expect("the idle connection was shed");
        // Only the busy one is left: nothing more to shed.
        assert!(!connections.shed_one(ShedReason::Descriptors));
    }

    #[tokio::test]
    async fn busy_connections_are_never_shed() {
        let connections = Connections::new(1);
        let working = activity();
        let _first = connections.register(working.clone()).unwrap();
        let _request = working.begin();
        assert!(connections.register(activity()).is_none());
        assert!(!connections.shed_one(ShedReason::Descriptors));
    }
}
