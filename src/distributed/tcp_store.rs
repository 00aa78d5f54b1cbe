//! [`TcpStore`], like c10d's `TCPStore`: rank 0's process hosts the pairs on a server
//! thread listening on `MASTER_PORT`; every rank (rank 0 too) is a client with one
//! connection. A `get` waits on the server, which answers "not there" at the
//! request's deadline; the client's socket read timeout (a little longer) turns a
//! server that died into an `Err`, never a hang.
//!
//! Wire format, all integers little-endian: a request is an op byte, the key (`u32`
//! length, bytes), then for `SET` the value (ditto), for `GET` the wait in ms (`u64`).
//! The reply to `SET` is `0`; to `GET`, `0` and the value, or `1` when the key did
//! not appear in time.

use super::store::{put_field, Store};
use crate::{Error, Result};
use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

const SET: u8 = 0;
const GET: u8 = 1;
const FOUND: u8 = 0;
const MISSING: u8 = 1;
/// The longest key or value the server reads: a stray client cannot make it allocate
/// more.
const MAX_FIELD: usize = 64 << 20;
/// How much longer than a `GET`'s wait the client waits for the server's answer.
const REPLY_SLACK: Duration = Duration::from_secs(10);

/// A client of the rendezvous server on `addr:port`, and the server itself in the
/// process that hosts it; see the module docs.
#[derive(Debug)]
pub struct TcpStore {
    address: String,
    rank: usize,
    conn: Mutex<TcpStream>,
    _server: Option<Server>,
}

impl TcpStore {
    /// Connects `rank` to the store on `addr:port`, trying again until `timeout` has
    /// passed (the host may start later); with `host`, first starts the server on
    /// `port` of every interface of this machine. Err naming the rank and the address
    /// when the port is taken or the server cannot be reached in time.
    pub fn new(addr: &str, port: u16, host: bool, rank: usize, timeout: Duration) -> Result<Self> {
        let address = format!("{addr}:{port}");
        let server = if host {
            Some(Server::start(port).map_err(|e| Error::Distributed {
                rank,
                msg: format!("cannot host the rendezvous store on port {port} ({e}); is MASTER_PORT used by another program?"),
            })?)
        } else {
            None
        };
        let conn = connect(&address, timeout).map_err(|e| Error::Distributed {
            rank,
            msg: format!("cannot reach the rendezvous store at {address} (hosted by rank 0) within {timeout:?}: {e}"),
        })?;
        Ok(TcpStore {
            address,
            rank,
            conn: Mutex::new(conn),
            _server: server,
        })
    }

    /// Sends `request` and reads the reply with `reply`, waiting up to `wait` plus
    /// slack for it.
    fn exchange<T>(
        &self,
        request: &[u8],
        wait: Duration,
        reply: impl FnOnce(&mut TcpStream) -> std::io::Result<T>,
    ) -> Result<T> {
        let mut conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        let result = (|| {
            conn.set_read_timeout(Some(wait + REPLY_SLACK))?;
            conn.write_all(request)?;
            reply(&mut conn)
        })();
        result.map_err(|e| Error::Distributed {
            rank: self.rank,
            msg: format!(
                "the rendezvous store at {} (hosted by rank 0) stopped answering: {e}; rank 0 may have exited",
                self.address
            ),
        })
    }
}

/// A connection to `address`, retried until `timeout` has passed.
fn connect(address: &str, timeout: Duration) -> std::io::Result<TcpStream> {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = address.to_socket_addrs().and_then(|mut addrs| {
            let first = addrs.next().ok_or_else(|| {
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "the address resolves to nothing",
                )
            })?;
            let left = deadline.saturating_duration_since(Instant::now());
            TcpStream::connect_timeout(&first, left.max(Duration::from_millis(1)))
        });
        match attempt {
            Ok(conn) => {
                conn.set_nodelay(true)?;
                return Ok(conn);
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

impl Store for TcpStore {
    fn set(&self, key: &str, value: &[u8]) -> Result<()> {
        let mut request = vec![SET];
        put_field(&mut request, key.as_bytes(), "key")?;
        put_field(&mut request, value, "value")?;
        self.exchange(&request, Duration::ZERO, |conn| read_u8(conn).map(drop))
    }

    fn try_get(&self, key: &str, wait: Duration) -> Result<Option<Vec<u8>>> {
        let mut request = vec![GET];
        put_field(&mut request, key.as_bytes(), "key")?;
        let ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        request.extend_from_slice(&ms.to_le_bytes());
        self.exchange(&request, wait, |conn| match read_u8(conn)? {
            FOUND => read_field(conn).map(Some),
            _ => Ok(None),
        })
    }

    fn address(&self) -> String {
        format!("tcp://{}", self.address)
    }
}

/// The pairs, and the condition variable `GET`s wait on.
#[derive(Default)]
struct Pairs {
    map: Mutex<HashMap<String, Vec<u8>>>,
    changed: Condvar,
}

/// The server thread's handle: dropping it stops the accept loop (connections end
/// when their clients close them).
#[derive(Debug)]
struct Server {
    stop: Arc<AtomicBool>,
    local: SocketAddr,
}

impl Server {
    /// Listens on `port` of every interface and serves each client on its own thread.
    fn start(port: u16) -> std::io::Result<Server> {
        let listener = TcpListener::bind(("0.0.0.0", port))?;
        let local = SocketAddr::from(([127, 0, 0, 1], listener.local_addr()?.port()));
        let stop = Arc::new(AtomicBool::new(false));
        let pairs = Arc::new(Pairs::default());
        let stopped = stop.clone();
        std::thread::Builder::new()
            .name("kiln-store-server".into())
            .spawn(move || {
                for conn in listener.incoming() {
                    if stopped.load(Ordering::Acquire) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let pairs = pairs.clone();
                    // A client that cannot get a thread is refused; it sees an error.
                    let _ = std::thread::Builder::new()
                        .name("kiln-store-client".into())
                        .spawn(move || serve(conn, &pairs));
                }
            })?;
        Ok(Server { stop, local })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        // Wakes the accept loop so that it sees the flag.
        let _ = TcpStream::connect_timeout(&self.local, Duration::from_secs(1));
    }
}

/// Answers one client's requests until it disconnects or sends garbage.
fn serve(conn: TcpStream, pairs: &Pairs) {
    let _ = conn.set_nodelay(true);
    let Ok(mut out) = conn.try_clone() else {
        return;
    };
    let mut input = BufReader::new(conn);
    while let Ok(op) = read_u8(&mut input) {
        let answered = read_field(&mut input)
            .and_then(|key| {
                let key = String::from_utf8_lossy(&key).into_owned();
                match op {
                    SET => {
                        let value = read_field(&mut input)?;
                        let mut map = pairs.map.lock().unwrap_or_else(PoisonError::into_inner);
                        map.insert(key, value);
                        pairs.changed.notify_all();
                        Ok(vec![FOUND])
                    }
                    GET => {
                        let mut ms = [0; 8];
                        input.read_exact(&mut ms)?;
                        wait_for(pairs, &key, Duration::from_millis(u64::from_le_bytes(ms)))
                    }
                    _ => Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "unknown op",
                    )),
                }
            })
            .and_then(|reply| out.write_all(&reply));
        if answered.is_err() {
            return;
        }
    }
}

/// The reply to a `GET` of `key` that waits up to `wait`.
fn wait_for(pairs: &Pairs, key: &str, wait: Duration) -> std::io::Result<Vec<u8>> {
    let deadline = Instant::now().checked_add(wait);
    let mut map = pairs.map.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        if let Some(value) = map.get(key) {
            let mut reply = vec![FOUND];
            put_field(&mut reply, value, "value").map_err(std::io::Error::other)?;
            return Ok(reply);
        }
        let left = match deadline {
            Some(d) => d.saturating_duration_since(Instant::now()),
            None => Duration::from_secs(3600),
        };
        if left.is_zero() {
            return Ok(vec![MISSING]);
        }
        map = pairs
            .changed
            .wait_timeout(map, left)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
}

fn read_u8(r: &mut impl Read) -> std::io::Result<u8> {
    let mut b = [0; 1];
    r.read_exact(&mut b)?;
    Ok(b[0])
}

/// A `u32`-length-prefixed field, at most [`MAX_FIELD`] bytes.
fn read_field(r: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0; 4];
    r.read_exact(&mut len)?;
    let len = usize::try_from(u32::from_le_bytes(len)).unwrap_or(usize::MAX);
    if len > MAX_FIELD {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "field too long",
        ));
    }
    let mut field = vec![0; len];
    r.read_exact(&mut field)?;
    Ok(field)
}
