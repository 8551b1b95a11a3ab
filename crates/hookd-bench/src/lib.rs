//! What the benchmark (`hookd-bench`) and the drills (`hookd-drill`) share: starting `hookd serve`
//! nodes as child processes on SQLite or on a fresh PostgreSQL schema, getting an admin token,
//! waiting for health, and small figure helpers.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{ensure, Context};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Accepts the URLs hookd itself takes for PostgreSQL, so a typo fails here rather than making
/// hookd silently fall back to SQLite.
pub fn postgres_url(url: &str) -> Result<String, String> {
    match url.starts_with("postgres://") || url.starts_with("postgresql://") {
        true => Ok(url.to_string()),
        false => Err("expected a postgres:// or postgresql:// URL".into()),
    }
}

/// Where hookd keeps its data.
#[derive(Clone, Copy)]
pub enum Backend<'a> {
    /// The embedded database in the temp dir.
    Sqlite,
    /// `schema`, created for this run, in the PostgreSQL database at `url`; shared by every node.
    Postgres {
        /// The server.
        url: &'a str,
        /// The run's own schema.
        schema: &'a str,
    },
}

/// A hookd command with what every invocation needs: run in `dir`, on `backend`'s schema, allowed
/// to deliver to the receiver, and killed when dropped, so every early return stops it.
pub fn hookd_command(bin: &Path, dir: &Path, backend: Backend) -> Command {
    let mut cmd = Command::new(bin);
    cmd.current_dir(dir) // hookd reads ./hookd.toml when present: run it where there is none
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Backend::Postgres { schema, .. } = backend {
        // Set even over the caller's value: the fresh schema is the one dropped at the end.
        cmd.env("HOOKD_STORAGE__POSTGRES_SCHEMA", schema);
    }
    // The receiver is plain http on loopback, which hookd refuses unless told otherwise; an
    // explicit HOOKD_* setting from the caller still wins.
    for (var, value) in [
        ("HOOKD_DELIVERY__ALLOW_HTTP", "true"),
        ("HOOKD_DELIVERY__ALLOWED_SUBNETS", "127.0.0.1/32"),
    ] {
        if std::env::var_os(var).is_none() {
            cmd.env(var, value);
        }
    }
    // Deliveries must go straight to the loopback receiver, never through a proxy.
    for var in ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"] {
        cmd.env_remove(var).env_remove(var.to_lowercase());
    }
    cmd
}

/// Starts `hookd serve` node `node`, pinned to the CPUs `cpus` (a `taskset -c` list, e.g. `0`
/// or `0-1`) when given; returns the child, the API base URL and the admin token if hookd
/// printed one (it does at first start on SQLite only).
pub async fn start_node(
    bin: &Path,
    dir: &Path,
    backend: Backend<'_>,
    node: u64,
    cpus: Option<&str>,
) -> anyhow::Result<(Child, String, Option<String>)> {
    let mut cmd = match cpus {
        // taskset execs hookd, so the child's pid is hookd's (the CPU meter reads it).
        Some(cpus) => {
            let mut cmd = hookd_command(Path::new("taskset"), dir, backend);
            cmd.args(["-c", cpus]).arg(bin);
            cmd
        }
        None => hookd_command(bin, dir, backend),
    };
    // Port 0: the kernel picks a free port without a bind-then-release race; hookd prints it.
    cmd.args(["serve", "--listen", "127.0.0.1:0"]);
    match backend {
        Backend::Sqlite => cmd.arg("--data-dir").arg(dir.join("data")),
        Backend::Postgres { url, .. } => cmd.args(["--database", url]),
    };
    cmd.stdout(Stdio::piped())
        .stderr(std::fs::File::create(dir.join(format!("hookd-{node}.log")))?);
    let mut child = cmd.spawn().context("starting hookd")?;
    let mut lines = BufReader::new(child.stdout.take().context("no stdout")?).lines();
    let (mut token, mut addr) = (None, None);
    let read = async {
        while let Some(line) = lines.next_line().await? {
            if line.starts_with("hk_live_") {
                token = Some(line.trim().to_string()); // the live admin token, alone on its line
            } else if let Some(a) = line.strip_prefix("hookd: listening on http://") {
                addr = Some(a.trim().parse::<SocketAddr>()?);
                break;
            }
        }
        anyhow::Ok(())
    };
    let waited = tokio::time::timeout(Duration::from_secs(30), read).await;
    waited.with_context(|| format!("hookd node {node} did not print its address within 30 s"))??;
    let addr = addr.with_context(|| format!("hookd node {node} exited without printing its address"))?;
    // hookd prints nothing more today, but a full pipe would block it if it ever did.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok((child, format!("http://{addr}/api/v1"), token))
}

/// An admin token from `hookd token create`: on PostgreSQL `serve` prints none, since the
/// database may already be in use by other nodes. Also migrates the fresh schema.
pub async fn create_token(bin: &Path, dir: &Path, backend: Backend<'_>, url: &str) -> anyhow::Result<String> {
    let mut cmd = hookd_command(bin, dir, backend);
    cmd.args(["token", "create", "--database", url, "--description", "hookd-bench"]);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await;
    let out = out
        .context("hookd token create took over 30 s")?
        .context("running hookd token create")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(
        out.status.success(),
        "hookd token create: {}: {}",
        out.status,
        stderr.trim()
    );
    let token = String::from_utf8(out.stdout)?.trim().to_string();
    ensure!(!token.is_empty(), "hookd token create printed no token");
    Ok(token)
}

/// Runs one SQL statement with `psql`: two statements (create and drop the schema) do not
/// warrant a database driver in the harness. Bounded, so a DROP waiting on locks cannot hang it.
pub async fn psql(url: &str, sql: &str) -> anyhow::Result<()> {
    let mut cmd = Command::new("psql");
    // -X: ignore ~/.psqlrc, which could change the output or the session.
    cmd.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", sql])
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(30), cmd.output()).await;
    let out = out
        .with_context(|| format!("psql -c '{sql}' took over 30 s"))?
        .context("running psql")?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    ensure!(out.status.success(), "psql -c '{sql}': {}", stderr.trim());
    Ok(())
}

/// The server's write-ahead log position in bytes (`pg_current_wal_lsn()`), or `None` when
/// `psql` cannot tell. The difference of two readings is every byte of log the whole server
/// wrote between them, so a run measures it with nothing else using the server.
pub async fn wal_position(url: &str) -> Option<u64> {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-At", "-d", url, "-c"])
        .arg("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(10), cmd.output())
        .await
        .ok()?
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8(out.stdout).ok()?.trim().parse().ok()
}

/// POSTs `body` and expects `201 Created`.
pub async fn post(client: &reqwest::Client, url: &str, token: &str, body: Value) -> anyhow::Result<()> {
    let r = client.post(url).bearer_auth(token).json(&body);
    let r = r.send().await?;
    let (status, text) = (r.status(), r.text().await?);
    ensure!(status.as_u16() == 201, "POST {url}: {status} {text}");
    Ok(())
}

/// Nearest-rank percentile of sorted microseconds, in milliseconds.
pub fn percentile_ms(sorted: &[u64], p: f64) -> Option<f64> {
    let rank = ((p * sorted.len() as f64).ceil() as usize).max(1);
    sorted.get(rank - 1).map(|&us| round(us as f64 / 1000.0, 3))
}

pub fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

/// A fresh schema name, `<prefix>_<64 random bits in hex>`.
pub fn schema_name(prefix: &str) -> String {
    // RandomState is seeded from the OS: 64 random bits without a dependency for them.
    format!("{prefix}_{:016x}", RandomState::new().hash_one(std::process::id()))
}

/// Waits (at most 10 s) until `GET {base}/health` answers 200.
pub async fn wait_healthy(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    for tries in 1.. {
        let r = client.get(format!("{base}/health")).send().await;
        if r.is_ok_and(|r| r.status().as_u16() == 200) {
            break;
        }
        ensure!(tries < 100, "hookd at {base} did not become healthy within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

/// Serves `router` on a free port of 127.0.0.1 (the fake webhook consumers); returns its address.
pub async fn serve_on_loopback(router: axum::Router) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, router).await });
    Ok(addr)
}

/// Resident memory of process `pid` in KiB (Linux `/proc`), `None` once it is gone.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The peak resident set size of process `pid` so far (`VmHWM`), in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Clock ticks per second of `/proc`'s CPU times (`USER_HZ`, 100 on Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system) process `pid` has used so far; `None` for `self` when it cannot
/// be read.
pub fn cpu_secs(pid: Option<u32>) -> Option<f64> {
    let path = pid.map_or("/proc/self/stat".to_string(), |p| format!("/proc/{p}/stat"));
    let stat = std::fs::read_to_string(path).ok()?;
    let (_, ticks) = name_and_ticks(&stat)?;
    Some(ticks as f64 / TICKS_PER_SEC)
}

/// The name (`comm`) and CPU ticks (user + system) of a process's or thread's `/proc/…/stat`.
fn name_and_ticks(stat: &str) -> Option<(&str, u64)> {
    // The name is between the first '(' and the last ')': it may hold spaces and parentheses.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let name = stat.get(open + 1..close)?;
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some((name, ticks))
}

/// The CPU ticks so far of every thread of some processes, by process and thread id, with each
/// thread's name.
#[derive(Debug, Clone, Default)]
pub struct ThreadTicks(HashMap<(u32, u32), (String, u64)>);

impl ThreadTicks {
    /// The threads of `pids` alive now; a process that is gone has none.
    pub fn of(pids: &[u32]) -> ThreadTicks {
        let mut threads = HashMap::new();
        for &pid in pids {
            let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
                continue;
            };
            for task in tasks.flatten() {
                let Some(tid) = task.file_name().to_str().and_then(|t| t.parse::<u32>().ok()) else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                    continue; // ended meanwhile
                };
                if let Some((name, ticks)) = name_and_ticks(&stat) {
                    threads.insert((pid, tid), (name.to_string(), ticks));
                }
            }
        }
        ThreadTicks(threads)
    }

    /// The cores each thread name used from `self` to `later`, `secs` apart: the CPU time of
    /// every thread of that name, divided by `secs` (1.0 is one core busy throughout). A thread
    /// started in between counts from zero; one that ended in between is not counted. Names
    /// under 0.01 core are left out.
    pub fn cores_until(&self, later: &ThreadTicks, secs: f64) -> BTreeMap<String, f64> {
        let mut by_name: BTreeMap<String, u64> = BTreeMap::new();
        for (key, (name, ticks)) in &later.0 {
            let before = self.0.get(key).map_or(0, |(_, t)| *t);
            *by_name.entry(name.clone()).or_default() += ticks.saturating_sub(before);
        }
        by_name
            .into_iter()
            .map(|(name, ticks)| (name, round(ticks as f64 / TICKS_PER_SEC / secs.max(1e-9), 2)))
            .filter(|(_, cores)| *cores >= 0.01)
            .collect()
    }
}

/// hookd's CPU by thread name over a run, in cores: which of its threads did the work, and
/// whether one of them (SQLite's single writer, say) was a serial bound.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ThreadCores {
    /// Over the whole run.
    pub mean: BTreeMap<String, f64>,
    /// Each name's busiest window of [`ThreadMeter::WINDOW`]: a thread near 1.0 here was the
    /// bound while that window lasted, even if the run's mean hides it.
    pub peak: BTreeMap<String, f64>,
}

/// Samples the threads of hookd's nodes through a run (see [`ThreadCores`]), on a thread of
/// its own: reading `/proc` blocks, and the harness's runtime must not wait on it while it
/// times requests.
pub struct ThreadMeter {
    started: std::time::Instant,
    first: ThreadTicks,
    pids: Vec<u32>,
    peak: Arc<Mutex<BTreeMap<String, f64>>>,
    /// Dropped to stop the sampler.
    stop: std::sync::mpsc::Sender<()>,
    sampler: std::thread::JoinHandle<()>,
}

impl ThreadMeter {
    /// The span of each sample for the peaks.
    pub const WINDOW: Duration = Duration::from_millis(500);

    /// Starts sampling the threads of `pids`.
    pub fn start(pids: &[u32]) -> ThreadMeter {
        let first = ThreadTicks::of(pids);
        let peak = Arc::new(Mutex::new(BTreeMap::new()));
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let sampler = std::thread::spawn({
            let (pids, peak, mut last) = (pids.to_vec(), peak.clone(), first.clone());
            move || {
                let mut at = std::time::Instant::now();
                // Until the sender is dropped.
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(Self::WINDOW) {
                    let now = ThreadTicks::of(&pids);
                    let secs = at.elapsed().as_secs_f64();
                    at = std::time::Instant::now();
                    raise(&mut peak.lock().expect("peaks poisoned"), last.cores_until(&now, secs));
                    last = now;
                }
            }
        });
        ThreadMeter {
            started: std::time::Instant::now(),
            first,
            pids: pids.to_vec(),
            peak,
            stop,
            sampler,
        }
    }

    /// The cores by name since the start (call before the nodes are stopped).
    pub fn stop(self) -> ThreadCores {
        drop(self.stop);
        let _ = self.sampler.join();
        let mean = self
            .first
            .cores_until(&ThreadTicks::of(&self.pids), self.started.elapsed().as_secs_f64());
        let mut peak = std::mem::take(&mut *self.peak.lock().expect("peaks poisoned"));
        // A run shorter than a window has no sample: its mean is its only window.
        raise(&mut peak, mean.clone());
        ThreadCores { mean, peak }
    }
}

/// Raises each name's figure in `peak` to its figure in `sample` where that is higher.
fn raise(peak: &mut BTreeMap<String, f64>, sample: BTreeMap<String, f64>) {
    for (name, cores) in sample {
        let at = peak.entry(name).or_default();
        *at = at.max(cores);
    }
}

/// Bytes the process `pid` has caused to be written to storage so far (`write_bytes` in
/// `/proc/PID/io`). They are counted as pages are dirtied, so a log page rewritten by several
/// commits counts each time: the figure measures the writes asked of the disk.
pub fn written_bytes(pid: u32) -> Option<u64> {
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))?
        .trim()
        .parse()
        .ok()
}

/// The machine's CPU time so far, in clock ticks over all cores (from `/proc/stat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MachineTicks {
    /// Ticks not idle and not waiting for the disk: user, system, interrupts and steal.
    pub busy: u64,
    /// Every tick of the eight counted: user, nice, system, idle, iowait, irq, softirq, steal.
    pub total: u64,
    /// Ticks the hypervisor gave to another guest while this one had work to run.
    pub steal: u64,
}

/// The machine's CPU time so far; `None` where `/proc/stat` cannot be read.
pub fn machine_ticks() -> Option<MachineTicks> {
    parse_machine_ticks(&std::fs::read_to_string("/proc/stat").ok()?)
}

/// Reads the first line of `/proc/stat` (`cpu  user nice system idle iowait irq softirq steal
/// …`). A kernel without the steal column counts none.
fn parse_machine_ticks(stat: &str) -> Option<MachineTicks> {
    let cpu = stat.lines().next()?.strip_prefix("cpu ")?;
    let ticks: Vec<u64> = cpu.split_whitespace().map(|t| t.parse().ok()).collect::<Option<_>>()?;
    let total: u64 = ticks.iter().take(8).sum();
    // idle and iowait are not busy.
    let idle = ticks.get(3)? + ticks.get(4).copied().unwrap_or(0);
    Some(MachineTicks {
        busy: total - idle,
        total,
        steal: ticks.get(7).copied().unwrap_or(0),
    })
}

/// The shares of the machine's ticks between two readings that were busy and that were
/// stolen: `(machine, steal)`.
fn machine_shares(from: MachineTicks, to: MachineTicks) -> (f64, f64) {
    let total = to.total.saturating_sub(from.total).max(1) as f64;
    (
        to.busy.saturating_sub(from.busy) as f64 / total,
        to.steal.saturating_sub(from.steal) as f64 / total,
    )
}

/// How fast this machine is at the moment, in three ways that need neither hookd nor the
/// network: it tells a slow processor, slow memory and costly system calls apart, where the
/// limit baseline and the relay ceiling show only their sum. Each figure is the best of a few
/// tries, so that a try the scheduler interrupted does not count.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct MachineProbe {
    /// One core on a fixed integer workload (FNV-1a over a 64 KiB buffer, 4 MiB in all), in
    /// MiB/s: the processor alone.
    pub cpu_mib_s: f64,
    /// One load whose address depends on the last, over 32 MiB in a random cycle, in ns: a
    /// trip to memory past the caches.
    pub memory_ns: f64,
    /// One cheap system call (a byte written to a pipe, then read back: two calls), in ns:
    /// mostly the kernel's entry and exit, which hookd pays on every socket and file
    /// operation. `null` where no pipe could be made.
    pub syscall_ns: Option<f64>,
}

/// Measures [`MachineProbe`] on the calling thread (about a second).
pub fn machine_probe() -> MachineProbe {
    MachineProbe {
        cpu_mib_s: cpu_probe_mib_s(),
        memory_ns: memory_probe_ns(),
        syscall_ns: syscall_probe_ns().ok(),
    }
}

/// The shortest of `tries` runs of `work`, in seconds.
fn best_of(tries: usize, mut work: impl FnMut()) -> f64 {
    (0..tries)
        .map(|_| {
            let started = std::time::Instant::now();
            work();
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
        .max(1e-9)
}

fn cpu_probe_mib_s() -> f64 {
    const PASSES: usize = 64;
    let buffer: Vec<u8> = (0..64 * 1024).map(|i| (i % 251) as u8).collect();
    let seconds = best_of(5, || {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for _ in 0..PASSES {
            for &byte in std::hint::black_box(&buffer[..]) {
                hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
            }
        }
        std::hint::black_box(hash);
    });
    round((PASSES * buffer.len()) as f64 / (1024.0 * 1024.0) / seconds, 1)
}

/// A random cycle through `slots` slots: `next[i]` is the slot after `i`, and following it from
/// any slot visits every slot once before coming back (Sattolo's shuffle).
fn single_cycle(slots: usize, seed: u64) -> Vec<u32> {
    use rand::{Rng, SeedableRng};
    let mut next: Vec<u32> = (0..slots as u32).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    for i in (1..slots).rev() {
        next.swap(i, rng.gen_range(0..i));
    }
    next
}

fn memory_probe_ns() -> f64 {
    const SLOTS: usize = 8 * 1024 * 1024; // 32 MiB of u32
    const STEPS: usize = 1 << 20;
    // One cycle through every slot, so the chase never settles in a cache.
    let next = single_cycle(SLOTS, 7);
    let seconds = best_of(3, || {
        let mut at = 0u32;
        for _ in 0..STEPS {
            at = next[at as usize];
        }
        std::hint::black_box(at);
    });
    round(seconds * 1e9 / STEPS as f64, 1)
}

fn syscall_probe_ns() -> std::io::Result<f64> {
    use std::io::{Read, Write};
    const ROUNDS: usize = 20_000;
    let (mut reader, mut writer) = std::io::pipe()?;
    let mut byte = [0u8; 1];
    let mut failed = None;
    let seconds = best_of(3, || {
        for _ in 0..ROUNDS {
            if let Err(e) = writer.write_all(&[1]).and_then(|()| reader.read_exact(&mut byte)) {
                failed = Some(e);
                return;
            }
        }
    });
    match failed {
        Some(e) => Err(e),
        None => Ok(round(seconds * 1e9 / (2 * ROUNDS) as f64, 1)),
    }
}

/// Where the CPU went during a run, so the harness is never a hidden ceiling.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct CpuShare {
    /// Wall-clock seconds measured.
    pub wall_s: f64,
    /// Cores on the machine.
    pub cores: usize,
    /// Share of the machine's CPU capacity (cores × wall) used by hookd (every node).
    pub hookd: f64,
    /// Share used by this harness (publishers and receiver).
    pub harness: f64,
    /// Share busy on the whole machine (anything else included, and `steal`).
    pub machine: f64,
    /// Share the hypervisor gave to other guests while this machine had work to run: time the
    /// run wanted and could not have, on a virtual machine whose host is busy.
    pub steal: f64,
}

/// hookd's CPU time and storage writes over a run.
#[derive(Debug, Clone, Copy)]
pub struct Work {
    /// CPU seconds, every node's.
    pub cpu_s: f64,
    /// Bytes written to storage ([`written_bytes`]); `None` where `/proc` does not tell.
    pub written: Option<u64>,
}

/// A CPU meter started at one instant; [`CpuMeter::stop`] gives the shares and the work since.
pub struct CpuMeter {
    started: std::time::Instant,
    hookd: Vec<(u32, f64)>,
    /// Each node's storage writes at the start.
    written: Vec<(u32, Option<u64>)>,
    harness: f64,
    machine: MachineTicks,
}

impl CpuMeter {
    /// Starts measuring, with hookd's node processes `pids`.
    pub fn start(pids: &[u32]) -> CpuMeter {
        CpuMeter {
            started: std::time::Instant::now(),
            hookd: pids.iter().map(|&p| (p, cpu_secs(Some(p)).unwrap_or(0.0))).collect(),
            written: pids.iter().map(|&p| (p, written_bytes(p))).collect(),
            harness: cpu_secs(None).unwrap_or(0.0),
            machine: machine_ticks().unwrap_or_default(),
        }
    }

    /// The shares since the start, and hookd's work in absolute terms (call before the nodes
    /// are stopped).
    pub fn stop(&self) -> (CpuShare, Work) {
        let wall = self.started.elapsed().as_secs_f64();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let capacity = wall * cores as f64;
        let hookd: f64 = (self.hookd.iter())
            .map(|&(p, at)| cpu_secs(Some(p)).unwrap_or(at) - at)
            .sum();
        let written = (self.written.iter())
            .map(|&(p, at)| Some(written_bytes(p)?.saturating_sub(at?)))
            .sum();
        let harness = cpu_secs(None).unwrap_or(self.harness) - self.harness;
        let (machine, steal) = machine_shares(self.machine, machine_ticks().unwrap_or(self.machine));
        let share = CpuShare {
            wall_s: round(wall, 3),
            cores,
            hookd: round(hookd / capacity, 3),
            harness: round(harness / capacity, 3),
            machine: round(machine, 3),
            steal: round(steal, 3),
        };
        (share, Work { cpu_s: hookd, written })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The busy ticks count everything but idle and iowait, steal among them; steal is also
    /// given on its own, and a kernel that has no steal column counts none.
    #[test]
    fn a_proc_stat_line_gives_busy_total_and_stolen_ticks() {
        let stat = "cpu  100 5 20 400 10 1 4 30 0 0\ncpu0 50 2 10 200 5 0 2 15 0 0\n";
        let ticks = parse_machine_ticks(stat).unwrap();
        assert_eq!(
            ticks,
            MachineTicks {
                busy: 160,
                total: 570,
                steal: 30
            }
        );
        let older = parse_machine_ticks("cpu  100 5 20 400 10 1 4\n").unwrap();
        assert_eq!(
            older,
            MachineTicks {
                busy: 130,
                total: 540,
                steal: 0
            }
        );
        assert_eq!(parse_machine_ticks("cpu0 1 2 3 4\n"), None, "not the machine's line");
        assert_eq!(parse_machine_ticks("cpu  1 x 3 4\n"), None, "not a number");
    }

    /// The memory probe's chase goes through every slot once before it comes back to the
    /// first, whatever the seed: no short loop that a cache could hold.
    #[test]
    fn the_memory_probes_chase_is_one_cycle_through_every_slot() {
        for seed in [1, 7, 42] {
            let next = single_cycle(1_000, seed);
            let mut seen = vec![false; next.len()];
            let mut at = 0usize;
            for step in 0..next.len() {
                assert!(!seen[at], "slot {at} seen twice by step {step} (seed {seed})");
                seen[at] = true;
                at = next[at] as usize;
            }
            assert_eq!(at, 0, "back at the start after every slot (seed {seed})");
        }
    }

    /// Over a span, a quarter of the ticks busy of which a tenth of the whole stolen.
    #[test]
    fn the_shares_between_two_readings_are_of_the_ticks_in_between() {
        let from = MachineTicks {
            busy: 1_000,
            total: 10_000,
            steal: 50,
        };
        let to = MachineTicks {
            busy: 1_250,
            total: 11_000,
            steal: 150,
        };
        assert_eq!(machine_shares(from, to), (0.25, 0.1));
        assert_eq!(machine_shares(to, to), (0.0, 0.0), "no ticks in between");
    }

    /// A name may hold spaces and parentheses: the ticks are read after the last ')'.
    #[test]
    fn a_stat_line_gives_its_name_and_its_user_and_system_ticks() {
        let stat = "4242 (odd (name) x) S 1 4242 4242 0 -1 4194560 901 0 0 0 1234 56 0 0 20 0 7 0";
        assert_eq!(name_and_ticks(stat), Some(("odd (name) x", 1234 + 56)));
        assert_eq!(name_and_ticks("4242 (cut"), None);
    }

    /// A thread that spins for a tenth of a second of CPU shows under its name with at least
    /// that much; an idle one started in between, and the figures of threads that used
    /// nothing, are left out.
    #[test]
    fn a_busy_thread_shows_its_cpu_under_its_name() {
        let own = [std::process::id()];
        let own_ticks = || {
            let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
            name_and_ticks(&stat).unwrap().1
        };
        let before = ThreadTicks::of(&own);
        let started = std::time::Instant::now();
        let (spun_tx, spun_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let spin = std::thread::Builder::new()
            .name("bench-spin".into())
            .spawn(move || {
                let from = own_ticks();
                while own_ticks() < from + 10 {
                    std::hint::spin_loop();
                }
                spun_tx.send(()).unwrap();
                let _ = done_rx.recv(); // alive until measured
            })
            .unwrap();
        let idle = std::thread::Builder::new()
            .name("bench-idle".into())
            .spawn(std::thread::park)
            .unwrap();
        spun_rx.recv().unwrap();
        let after = ThreadTicks::of(&own);
        let secs = started.elapsed().as_secs_f64();
        done_tx.send(()).unwrap();
        idle.thread().unpark();
        spin.join().unwrap();
        idle.join().unwrap();

        let cores = before.cores_until(&after, secs);
        let spun = cores.get("bench-spin").copied().expect("the spinning thread is named");
        // Figures are rounded to 0.01 core, so up to 0.005 may be lost.
        assert!(
            (spun + 0.005) * secs >= 0.1,
            "{spun} cores over {secs} s is at least 10 ticks"
        );
        assert!(!cores.contains_key("bench-idle"), "{cores:?}");
        assert!(cores.values().all(|c| *c >= 0.01), "{cores:?}");
    }

    /// The meter's peak for a name is never below its mean, and a run shorter than a window
    /// still has its peaks.
    #[tokio::test]
    async fn a_meter_reports_each_name_s_mean_and_a_peak_at_least_as_high() {
        let meter = ThreadMeter::start(&[std::process::id()]);
        let (spun_tx, spun_rx) = tokio::sync::oneshot::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let spin = std::thread::Builder::new()
            .name("bench-meter".into())
            .spawn(move || {
                let own_ticks = || {
                    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
                    name_and_ticks(&stat).unwrap().1
                };
                let from = own_ticks();
                while own_ticks() < from + 5 {
                    std::hint::spin_loop();
                }
                spun_tx.send(()).unwrap();
                let _ = done_rx.recv();
            })
            .unwrap();
        spun_rx.await.unwrap();
        let cores = meter.stop();
        done_tx.send(()).unwrap();
        spin.join().unwrap();
        let mean = cores.mean.get("bench-meter").copied().expect("measured while alive");
        assert!(mean > 0.0);
        assert!(cores.peak["bench-meter"] >= mean, "{cores:?}");
        for (name, peak) in &cores.peak {
            assert!(
                *peak >= cores.mean.get(name).copied().unwrap_or(0.0),
                "{name}: {cores:?}"
            );
        }
    }

    /// The log position is read from a live server and grows when something is written; a
    /// server that does not answer (nothing listens on loopback port 1) gives `None`, which a
    /// run reports as `null` rather than failing.
    #[tokio::test]
    async fn the_log_position_grows_with_a_write_and_is_none_without_a_server() {
        assert_eq!(wal_position("postgres://postgres@127.0.0.1:1/test").await, None);
        let Ok(url) = std::env::var("HOOKD_TEST_POSTGRES_URL") else {
            eprintln!("HOOKD_TEST_POSTGRES_URL is not set; the log position is not read from a server");
            return;
        };
        let before = wal_position(&url).await.expect("a position");
        let schema = schema_name("hookd_bench_wal");
        psql(
            &url,
            &format!("CREATE TABLE {schema} AS SELECT generate_series(1, 1000) AS n"),
        )
        .await
        .unwrap();
        let after = wal_position(&url).await.expect("a position");
        psql(&url, &format!("DROP TABLE {schema}")).await.unwrap();
        assert!(after > before, "the log grew: {before} → {after}");
    }
}
