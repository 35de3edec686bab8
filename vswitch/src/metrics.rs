//! The Prometheus endpoint: the text exposition format ([`Exposition`])
//! and a small HTTP/1.1 server ([`MetricsServer`]) that answers
//! `GET /metrics` with it.
//!
//! The server is deliberately tiny (no HTTP crate): one request per
//! connection, `Connection: close`, `Content-Length`, requests bounded to
//! [`MAX_REQUEST`] bytes and [`REQUEST_TIMEOUT`], 404 for other paths,
//! 405 for other methods. The accept loop runs on its own thread and
//! hands each connection to a short-lived thread (at most
//! [`MAX_CONNECTIONS`] at once), so a slow client delays nobody but
//! itself. The text comes from a [`Scrape`]: in the daemon, a read of
//! the per-PMD counters under the daemon's control lock (the lock the
//! control socket takes; the PMDs never take it).
//!
//! There is no authentication: bind it to loopback or a management
//! network.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Content type of the text exposition format.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Longest request head (request line and headers) read.
pub const MAX_REQUEST: usize = 8 * 1024;
/// A client must send its request head within this time.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 8;
/// How often the accept loop looks at its stop flag.
const TICK_MS: i32 = 100;

/// A metric family's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (resets at daemon start); its name ends in `_total`.
    Counter,
    /// Goes up and down.
    Gauge,
}

/// A sample value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An exact integer.
    Int(u64),
    /// A float (seconds).
    Float(f64),
}

impl From<u64> for Value {
    fn from(v: u64) -> Value {
        Value::Int(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Value {
        Value::Int(u64::from(v))
    }
}

impl From<f64> for Value {
    fn from(v: f64) -> Value {
        Value::Float(v)
    }
}

/// One metric family: name, help, type and its samples.
#[derive(Debug, Clone)]
pub struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<(Vec<(String, String)>, Value)>,
}

impl Family {
    /// Adds a sample with `labels` (name, value).
    pub fn add(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) -> &mut Family {
        self.samples.push((
            labels
                .iter()
                .map(|&(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            value.into(),
        ));
        self
    }
}

/// Metric families in the order they were first asked for, rendered in
/// the Prometheus text format (version 0.0.4).
#[derive(Debug, Clone, Default)]
pub struct Exposition {
    families: Vec<Family>,
}

impl Exposition {
    /// The counter family `name` (which must end in `_total`; a name
    /// without it gets it appended), created on first use.
    pub fn counter(&mut self, name: &str, help: &str) -> &mut Family {
        let name = if name.ends_with("_total") {
            name.to_string()
        } else {
            format!("{name}_total")
        };
        self.family(name, help, Kind::Counter)
    }

    /// The gauge family `name`, created on first use.
    pub fn gauge(&mut self, name: &str, help: &str) -> &mut Family {
        self.family(name.to_string(), help, Kind::Gauge)
    }

    fn family(&mut self, name: String, help: &str, kind: Kind) -> &mut Family {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help: help.to_string(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// The text: per family with samples, one `# HELP` and one `# TYPE`
    /// line, then its samples.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.families.iter().filter(|f| !f.samples.is_empty()) {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {kind}", f.name);
            for (labels, value) in &f.samples {
                out.push_str(&f.name);
                if !labels.is_empty() {
                    out.push('{');
                    for (i, (k, v)) in labels.iter().enumerate() {
                        if i > 0 {
                            out.push(',');
                        }
                        let _ = write!(out, "{k}=\"{}\"", escape_label(v));
                    }
                    out.push('}');
                }
                let _ = match value {
                    Value::Int(v) => writeln!(out, " {v}"),
                    Value::Float(v) if v.is_finite() => writeln!(out, " {v}"),
                    Value::Float(v) if v.is_nan() => writeln!(out, " NaN"),
                    Value::Float(v) if *v > 0.0 => writeln!(out, " +Inf"),
                    Value::Float(_) => writeln!(out, " -Inf"),
                };
            }
        }
        out
    }
}

/// A label value: backslash, double quote and line feed escaped.
pub fn escape_label(v: &str) -> String {
    let mut s = String::with_capacity(v.len());
    for c in v.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

/// HELP text: backslash and line feed escaped.
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// What the endpoint serves.
pub trait Scrape: Send + Sync + 'static {
    /// The exposition text; `None` when there is nothing to scrape any
    /// more (the daemon is gone), answered with 503.
    fn scrape(&self) -> Option<String>;
}

/// Opens the endpoint's listening socket (the daemon binds before it
/// commits to a configuration, so a taken address refuses the start or
/// the reload).
pub fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let l = TcpListener::bind(addr)?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// The running endpoint. Dropping it stops accepting and closes the
/// listening socket (it waits for the accept thread, at most a tick);
/// connections being served finish on their own.
#[derive(Debug)]
pub struct MetricsServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Serves `source` on `listener` (from [`bind`]).
    pub fn serve(listener: TcpListener, source: Arc<dyn Scrape>) -> std::io::Result<MetricsServer> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("metrics".into())
                .spawn(move || accept_loop(&listener, &source, &stop))?
        };
        tracing::info!(listen = %addr, "metrics endpoint listening (GET /metrics)");
        Ok(MetricsServer {
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("metrics accept thread panicked");
        }
        tracing::info!(listen = %self.addr, "metrics endpoint closed");
    }
}

fn accept_loop(listener: &TcpListener, source: &Arc<dyn Scrape>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, peer)) => {
                if active.load(Ordering::Relaxed) >= MAX_CONNECTIONS {
                    tracing::debug!(%peer, "metrics: too many connections, closing one");
                    continue;
                }
                active.fetch_add(1, Ordering::Relaxed);
                let (source, done) = (source.clone(), active.clone());
                let spawned = std::thread::Builder::new()
                    .name("metrics-conn".into())
                    .spawn(move || {
                        if let Err(e) = serve(stream, source.as_ref()) {
                            tracing::debug!(%peer, error = %e, "metrics: connection ended");
                        }
                        done.fetch_sub(1, Ordering::Relaxed);
                    });
                if let Err(e) = spawned {
                    active.fetch_sub(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "metrics: cannot start a connection thread");
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if let Err(e) = dataplane::sys::poll_readable(&[listener.as_raw_fd()], TICK_MS) {
                    tracing::warn!(error = %e, "metrics: poll failed");
                    std::thread::sleep(Duration::from_millis(TICK_MS as u64));
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics: accept failed");
                std::thread::sleep(Duration::from_millis(TICK_MS as u64));
            }
        }
    }
}

/// What a request head asks for.
#[derive(Debug, PartialEq, Eq)]
enum Route {
    /// `GET /metrics` (`head`: a HEAD request, no body).
    Metrics {
        head: bool,
    },
    NotFound,
    BadMethod,
    BadRequest,
}

/// Routes a request head (up to its blank line).
fn route(head: &[u8]) -> Route {
    let Ok(text) = std::str::from_utf8(head) else {
        return Route::BadRequest;
    };
    let line = text.lines().next().unwrap_or("");
    let mut parts = line.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Route::BadRequest;
    };
    if parts.next().is_some() || !version.starts_with("HTTP/1.") {
        return Route::BadRequest;
    }
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Route::BadMethod,
    };
    let path = target.split(['?', '#']).next().unwrap_or("");
    if path == "/metrics" {
        Route::Metrics { head }
    } else {
        Route::NotFound
    }
}

/// Reads one request head within [`REQUEST_TIMEOUT`] and [`MAX_REQUEST`]
/// bytes; `None` if it is too long.
fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + REQUEST_TIMEOUT;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(std::io::ErrorKind::TimedOut.into());
        }
        stream.set_read_timeout(Some(left))?;
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if let Some(end) = buf.windows(2).position(|w| w == b"\n\n") {
            buf.truncate(end);
            return Ok(Some(buf));
        }
        if buf.len() > MAX_REQUEST {
            return Ok(None);
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    extra: &str,
    body: &str,
    head: bool,
) -> std::io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    );
    if !head {
        out.push_str(body);
    }
    stream.write_all(out.as_bytes())?;
    stream.flush()?;
    // A lingering close: what the client sent beyond the head (or a
    // request cut short as too large) is read and dropped, so closing
    // does not reset the connection before the client read the answer.
    stream.shutdown(std::net::Shutdown::Write)?;
    stream.set_read_timeout(Some(Duration::from_millis(500)))?;
    let mut sink = [0u8; 4096];
    let mut left = 64 * 1024usize;
    while left > 0 {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => left = left.saturating_sub(n),
        }
    }
    Ok(())
}

/// Serves one connection: one request, one response, close.
fn serve(mut stream: TcpStream, source: &dyn Scrape) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    let text = "text/plain; charset=utf-8";
    let Some(head) = read_head(&mut stream)? else {
        return respond(
            &mut stream,
            "431 Request Header Fields Too Large",
            text,
            "",
            "request too large\n",
            false,
        );
    };
    match route(&head) {
        Route::Metrics { head } => match source.scrape() {
            Some(body) => respond(&mut stream, "200 OK", CONTENT_TYPE, "", &body, head),
            None => respond(
                &mut stream,
                "503 Service Unavailable",
                text,
                "",
                "shutting down\n",
                head,
            ),
        },
        Route::NotFound => respond(
            &mut stream,
            "404 Not Found",
            text,
            "",
            "not found; metrics are at /metrics\n",
            false,
        ),
        Route::BadMethod => respond(
            &mut stream,
            "405 Method Not Allowed",
            text,
            "Allow: GET, HEAD\r\n",
            "only GET and HEAD\n",
            false,
        ),
        Route::BadRequest => respond(
            &mut stream,
            "400 Bad Request",
            text,
            "",
            "bad request\n",
            false,
        ),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn renders_help_type_once_per_family_and_escapes_labels() {
        let mut e = Exposition::default();
        e.counter("vswitch_port_rx_packets_total", "Frames received.")
            .add(&[("switch", "sw0"), ("port", "vm\"0")], 5u64);
        e.gauge("vswitch_mac_table_entries", "Entries.\nSecond line \\ end")
            .add(&[("switch", "a\\b\nc")], 3u64);
        // Asked for again: the same family, one more sample.
        e.counter("vswitch_port_rx_packets", "ignored the second time")
            .add(&[("switch", "sw0"), ("port", "vm1")], 7u64);
        e.gauge("vswitch_empty", "no samples: not rendered");
        e.counter("vswitch_pmd_cpu_seconds", "CPU.")
            .add(&[], 1.5f64)
            .add(&[("pmd", "1")], f64::INFINITY);
        let text = e.render();
        assert_eq!(
            text,
            "# HELP vswitch_port_rx_packets_total Frames received.\n\
             # TYPE vswitch_port_rx_packets_total counter\n\
             vswitch_port_rx_packets_total{switch=\"sw0\",port=\"vm\\\"0\"} 5\n\
             vswitch_port_rx_packets_total{switch=\"sw0\",port=\"vm1\"} 7\n\
             # HELP vswitch_mac_table_entries Entries.\\nSecond line \\\\ end\n\
             # TYPE vswitch_mac_table_entries gauge\n\
             vswitch_mac_table_entries{switch=\"a\\\\b\\nc\"} 3\n\
             # HELP vswitch_pmd_cpu_seconds_total CPU.\n\
             # TYPE vswitch_pmd_cpu_seconds_total counter\n\
             vswitch_pmd_cpu_seconds_total 1.5\n\
             vswitch_pmd_cpu_seconds_total{pmd=\"1\"} +Inf\n"
        );
        let checked = check_exposition(&text);
        assert_eq!(checked.len(), 3);
        assert_eq!(checked["vswitch_port_rx_packets_total"], 2);
    }

    /// Checks `text` the way a strict parser would: every sample belongs
    /// to the family of the `# TYPE` line before it, every family has one
    /// `# HELP` and one `# TYPE`, counters end in `_total`, no family
    /// appears twice; returns the samples per family.
    pub fn check_exposition(text: &str) -> BTreeMap<String, usize> {
        let mut families: BTreeMap<String, usize> = BTreeMap::new();
        let mut current: Option<String> = None;
        let mut helped: Option<String> = None;
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let name = rest.split(' ').next().unwrap_or("").to_string();
                assert!(!families.contains_key(&name), "family {name} twice");
                helped = Some(name);
            } else if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut p = rest.split(' ');
                let name = p.next().unwrap_or("").to_string();
                let kind = p.next().unwrap_or("");
                assert_eq!(helped.as_deref(), Some(name.as_str()), "HELP before TYPE");
                assert!(matches!(kind, "counter" | "gauge"), "{line}");
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "counter {name} without _total");
                }
                assert!(families.insert(name.clone(), 0).is_none(), "{name} twice");
                current = Some(name);
            } else {
                let fam = current.as_deref().expect("a sample before any TYPE");
                let name = line.split(['{', ' ']).next().unwrap_or("");
                assert_eq!(name, fam, "{line}");
                let value = line.rsplit(' ').next().unwrap_or("");
                assert!(
                    value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
                    "{line}"
                );
                *families.entry(fam.to_string()).or_default() += 1;
            }
        }
        families
    }

    #[test]
    fn routes_requests() {
        assert_eq!(
            route(b"GET /metrics HTTP/1.1\r\nHost: x"),
            Route::Metrics { head: false }
        );
        assert_eq!(
            route(b"HEAD /metrics?x=1 HTTP/1.0"),
            Route::Metrics { head: true }
        );
        assert_eq!(route(b"GET / HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"GET /metricsx HTTP/1.1"), Route::NotFound);
        assert_eq!(route(b"POST /metrics HTTP/1.1"), Route::BadMethod);
        assert_eq!(route(b"GET /metrics"), Route::BadRequest);
        assert_eq!(route(b"\xff\xfe"), Route::BadRequest);
    }

    struct Fixed;

    impl Scrape for Fixed {
        fn scrape(&self) -> Option<String> {
            Some("up 1\n".into())
        }
    }

    fn get(addr: SocketAddr, request: &[u8]) -> String {
        let mut s = TcpStream::connect(addr).expect("connects");
        s.set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        s.write_all(request).expect("writes");
        let mut out = String::new();
        s.read_to_string(&mut out).expect("reads");
        out
    }

    #[test]
    fn serves_metrics_404_and_bounds_requests() {
        let l = bind("127.0.0.1:0".parse().expect("addr")).expect("binds");
        let server = MetricsServer::serve(l, Arc::new(Fixed)).expect("serves");
        let addr = server.addr();
        let ok = get(addr, b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n");
        assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
        assert!(
            ok.contains("Content-Type: text/plain; version=0.0.4"),
            "{ok}"
        );
        assert!(ok.contains("Content-Length: 5\r\n"), "{ok}");
        assert!(ok.contains("Connection: close\r\n"), "{ok}");
        assert!(ok.ends_with("\r\n\r\nup 1\n"), "{ok}");
        let nf = get(addr, b"GET /other HTTP/1.1\r\n\r\n");
        assert!(nf.starts_with("HTTP/1.1 404 "), "{nf}");
        let big = vec![b'a'; MAX_REQUEST + 2048];
        let too_big = get(
            addr,
            &[b"GET /metrics HTTP/1.1\r\nX: ".as_slice(), &big].concat(),
        );
        assert!(too_big.starts_with("HTTP/1.1 431 "), "{too_big}");
        // A client that sends nothing does not keep others waiting.
        let idle = TcpStream::connect(addr).expect("connects");
        let t = Instant::now();
        let again = get(addr, b"GET /metrics HTTP/1.1\r\n\r\n");
        assert!(again.ends_with("up 1\n"), "{again}");
        assert!(t.elapsed() < REQUEST_TIMEOUT, "{:?}", t.elapsed());
        drop(idle);
        drop(server);
        assert!(TcpStream::connect(addr).is_err(), "closed after drop");
    }
}
